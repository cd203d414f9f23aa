"""Every preset builds for every keypoint set with the right outputs."""

from __future__ import annotations

import pytest
import torch

from occlupose.models import PRESETS, create_model, hrgr_small
from occlupose.structures import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("keypoint_set", [COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS])
def test_preset_outputs(name, keypoint_set):
    size = PRESETS[name].input_size
    with torch.device("meta"):  # full-size presets: check shapes without computing
        model = create_model(name, keypoint_set=keypoint_set)
        out = model(torch.empty(1, 3, size, size))
    j, q = keypoint_set.num_keypoints, size // 4
    assert [tuple(h.shape) for h in out.heatmaps] == [(1, j, q, q), (1, j, 2 * q, 2 * q)]
    assert tuple(out.tags.shape) == (1, j, q, q)
    if name.startswith("hrgr"):
        assert tuple(out.limbs.shape) == (1, 2 * keypoint_set.num_limbs, q, q)
        assert [tuple(h.shape) for h in out.completed] == [tuple(h.shape) for h in out.heatmaps]
    else:
        assert out.limbs is None and out.completed is None


def test_hrgr_parameter_overhead_over_higherhrnet_is_small():
    with torch.device("meta"):
        base = create_model("higherhrnet_w32_512")
        hrgr = create_model("hrgr_w32_512")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(hrgr) <= 1.15 * count(base)


def test_small_preset_runs_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    model = hrgr_small()
    out = model(torch.randn(2, 3, 256, 256))
    loss = sum(h.mean() for h in out.final_heatmaps) + out.limbs.mean() + out.tags.mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert torch.isfinite(loss)


def test_custom_keypoint_set():
    hand = KeypointSet(
        name="three_point_arm",
        keypoint_names=("shoulder", "elbow", "wrist"),
        limbs=((0, 1), (1, 2)),
        sigmas=(0.08, 0.07, 0.06),
    )
    model = hrgr_small(hand, attention="none")
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 64, 64))
    assert out.heatmaps[0].shape[1] == 3 and out.limbs.shape[1] == 4


def test_overrides_and_unknown_preset():
    model = create_model("hrgr_small", completion=False, multi_scale_fusion=False)
    assert model.generator is None and model.multi_scale_fusion is None
    with pytest.raises(KeyError, match="unknown model preset"):
        create_model("hrnet_w1000")
