"""Merging passes: flipped outputs map back exactly; views of several scales align."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occlupose.decode import NetworkPass, flip_back_outputs, merge_passes
from occlupose.structures import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, PoseOutputs

H, W = 24, 32


def _peaks(points: np.ndarray, h: int = H, w: int = W, sigma: float = 1.0) -> torch.Tensor:
    ys, xs = np.mgrid[0:h, 0:w]
    maps = [np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in points]
    return torch.tensor(np.stack(maps), dtype=torch.float32)[None]


def _outputs(heatmaps, tags=None, limbs=None) -> PoseOutputs:
    return PoseOutputs([heatmaps], tags, limbs, None, torch.zeros(1, 1, H, W))


def _mirror(points: np.ndarray) -> np.ndarray:
    return np.stack([W - 1 - points[:, 0], points[:, 1]], axis=1)


@pytest.mark.parametrize("kps", [COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS])
def test_flipped_heatmaps_and_tags_map_back(kps):
    rng = np.random.default_rng(0)
    points = rng.uniform(3, 20, size=(kps.num_keypoints, 2)).round()
    # In the mirrored image joint k stands where the mirror of joint flip_index[k] was.
    mirrored = _mirror(points)[list(kps.flip_index)]
    tag_values = torch.arange(kps.num_keypoints, dtype=torch.float32)
    tags_mirrored = tag_values[list(kps.flip_index)].view(1, -1, 1, 1).expand(1, -1, H, W)
    back = flip_back_outputs(_outputs(_peaks(mirrored), tags_mirrored), kps)
    torch.testing.assert_close(back.heatmaps[0], _peaks(points))
    torch.testing.assert_close(back.tags[0, :, 0, 0], tag_values)


@pytest.mark.parametrize("kps", [COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS])
def test_flipped_limb_fields_map_back(kps):
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 20, size=(kps.num_keypoints, 2))

    def fields(p: np.ndarray) -> torch.Tensor:
        # Constant unit-vector field a -> b for every limb (direction is what matters).
        vectors = []
        for a, b in kps.limbs:
            d = p[b] - p[a]
            vectors.append(d / np.linalg.norm(d))
        v = torch.tensor(np.concatenate(vectors), dtype=torch.float32)
        return v.view(1, -1, 1, 1).expand(1, -1, H, W).contiguous()

    mirrored = _mirror(points)[list(kps.flip_index)]
    back = flip_back_outputs(_outputs(_peaks(mirrored), limbs=fields(mirrored)), kps)
    torch.testing.assert_close(back.limbs, fields(points))


def test_merge_averages_resolutions_and_aligns_zoomed_views():
    point = np.array([[10.0, 6.0]])
    base = _outputs(_peaks(point))  # a 1/2 map of a 48-pixel-high input: stride 2
    # The same scene seen twice as large (zoom 2): 48 map rows for a 96-pixel input.
    zoomed = _outputs(_peaks(point * 2 + 0.5, h=2 * H, w=2 * W, sigma=2.0))
    merged = merge_passes(
        [NetworkPass(base, input_height=2 * H), NetworkPass(zoomed, 4 * H, zoom=2.0)],
        size=(H, W),
        stride=2.0,
    )
    assert merged.heatmaps.shape == (1, H, W)
    y, x = np.unravel_index(int(merged.heatmaps[0].argmax()), (H, W))
    assert (x, y) == (10, 6)
    assert merged.tags is None and merged.limbs is None


def test_merge_stacks_tags_per_pass():
    heat = _peaks(np.array([[4.0, 4.0]] * 3))
    tags_a, tags_b = torch.full((1, 3, H, W), 1.0), torch.full((1, 3, H, W), 2.0)
    merged = merge_passes(
        [NetworkPass(_outputs(heat, tags_a), 2 * H), NetworkPass(_outputs(heat, tags_b), 2 * H)],
        size=(H, W),
        stride=2.0,
    )
    assert merged.tags.shape == (3, H, W, 2)
    assert merged.tags[0, 0, 0].tolist() == [1.0, 2.0]
