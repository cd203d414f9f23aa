"""HigherHRNet is the published architecture, parameter for parameter."""

from __future__ import annotations

import pytest
import torch

from occlupose.models import HigherHRNet, create_model


def test_tiny_reference_loads_strictly_and_reproduces_outputs(tiny_reference, reference_tolerance):
    model = HigherHRNet(**tiny_reference["config"])
    model.load_state_dict(tiny_reference["state_dict"], strict=True)
    model.eval()
    with torch.no_grad():
        outputs = model(tiny_reference["input"]).as_higherhrnet()
    assert len(outputs) == len(tiny_reference["outputs"]) == 2
    for ours, theirs in zip(outputs, tiny_reference["outputs"], strict=True):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, **reference_tolerance)


def test_outputs_split_into_heatmaps_and_tags(tiny_reference, reference_tolerance):
    model = HigherHRNet(**tiny_reference["config"]).eval()
    model.load_state_dict(tiny_reference["state_dict"])
    with torch.no_grad():
        out = model(tiny_reference["input"])
    ref_first, ref_half = tiny_reference["outputs"]
    torch.testing.assert_close(out.heatmaps[0], ref_first[:, :17], **reference_tolerance)
    torch.testing.assert_close(out.tags, ref_first[:, 17:], **reference_tolerance)
    torch.testing.assert_close(out.heatmaps[1], ref_half, **reference_tolerance)
    assert out.limbs is None and out.completed is None
    assert out.final_heatmaps is out.heatmaps


@pytest.mark.parametrize(
    ("preset", "keypoints", "reference_key"),
    [
        ("higherhrnet_w32_512", "coco", "higherhrnet_w32_512_coco"),
        ("higherhrnet_w48_640", "coco", "higherhrnet_w48_640_coco"),
        ("higherhrnet_w32_512", "crowdpose", "higherhrnet_w32_512_crowdpose"),
    ],
)
def test_presets_match_official_state_dict_layout(
    official_state_dicts, preset, keypoints, reference_key
):
    reference = official_state_dicts[reference_key]
    with torch.device("meta"):  # shapes only; no memory, no initialisation
        model = create_model(preset, keypoint_set=keypoints)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == reference["state_dict_shapes"]
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]


def test_hrgr_presets_contain_the_higherhrnet_layout(official_state_dicts):
    """HRGR presets add modules but keep every HigherHRNet tensor, so checkpoints load."""
    reference = official_state_dicts["higherhrnet_w32_512_coco"]["state_dict_shapes"]
    with torch.device("meta"):
        model = create_model("hrgr_w32_512")
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    for key, shape in reference.items():
        assert shapes[key] == shape, key
    extra = set(shapes) - set(reference)
    prefixes = model.added_module_prefixes()
    assert extra and all(any(k.startswith(p + ".") for p in prefixes) for k in extra)
