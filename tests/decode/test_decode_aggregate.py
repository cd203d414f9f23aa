"""Test-time aggregation: resize, average, stack tags, undo flips."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from occlupose.data.targets import render_heatmaps, render_limb_fields
from occlupose.decode import (
    aggregate_heatmaps,
    concat_tags,
    flip_back,
    flip_back_limb_fields,
    limb_flip_permutation,
    resize_maps,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet


def _mirror(keypoints: np.ndarray, width: int, keypoint_set: KeypointSet) -> np.ndarray:
    """Keypoints of the horizontally flipped image (pixel centres at integers)."""
    flipped = keypoints[:, list(keypoint_set.flip_index)].copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return flipped


@pytest.fixture
def two_people(synth):
    # Off the half-pixel grid: a joint at c + 0.5 rounds to different pixels once
    # mirrored, which shifts its truncated Gaussian window.
    return np.stack([synth.person(40.13, 64.2, 56), synth.person(90.13, 60.2, 50, missing=(9,))])


def test_flip_back_recovers_heatmaps_of_the_unflipped_image(two_people):
    size = (128, 96)
    original = render_heatmaps(two_people, size, 2.0)
    of_flipped_image = render_heatmaps(_mirror(two_people, 96, COCO_KEYPOINTS), size, 2.0)
    restored = flip_back(of_flipped_image, COCO_KEYPOINTS.flip_index)
    np.testing.assert_allclose(restored, original, atol=1e-6)
    # Tensors in, tensors out, with a batch axis.
    batch = torch.from_numpy(of_flipped_image)[None]
    restored_t = flip_back(batch, COCO_KEYPOINTS.flip_index)
    assert isinstance(restored_t, torch.Tensor) and restored_t.shape == batch.shape
    np.testing.assert_allclose(restored_t[0].numpy(), original, atol=1e-6)


@pytest.mark.parametrize("keypoint_set", [COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS])
def test_flip_back_limb_fields_recovers_the_unflipped_fields(keypoint_set):
    rng = np.random.default_rng(3)
    people = np.concatenate(
        [rng.uniform(10, 80, (3, keypoint_set.num_keypoints, 2)),
         np.ones((3, keypoint_set.num_keypoints, 1))], axis=2,
    )  # fmt: skip
    size = (90, 100)
    original = render_limb_fields(people, keypoint_set.limbs, size, 1.5)
    flipped = render_limb_fields(_mirror(people, 100, keypoint_set), keypoint_set.limbs, size, 1.5)
    restored = flip_back_limb_fields(flipped, keypoint_set)
    np.testing.assert_allclose(restored, original, atol=1e-5)
    assert np.abs(original).max() > 0.9  # the fields are not empty


def test_limb_flip_permutation_of_coco():
    index, sign = limb_flip_permutation(COCO_KEYPOINTS)
    limbs = COCO_KEYPOINTS.limbs
    left_knee_to_hip = limbs.index((13, 11))
    assert limbs[index[left_knee_to_hip]] == (14, 12) and sign[left_knee_to_hip] == 1
    shoulders = limbs.index((5, 6))
    assert index[shoulders] == shoulders and sign[shoulders] == -1  # (6, 5) stored as (5, 6)


def test_resize_matches_torch_bilinear_and_keeps_type():
    maps = np.random.default_rng(0).random((2, 17, 16, 12)).astype(np.float32)
    for size in [(32, 24), (8, 6), (21, 5)]:  # up, down, uneven factors
        resized = resize_maps(maps, size)
        expected = F.interpolate(
            torch.from_numpy(maps), size=size, mode="bilinear", align_corners=False
        )
        assert isinstance(resized, np.ndarray) and resized.shape == (2, 17, *size)
        np.testing.assert_allclose(resized, expected.numpy(), atol=1e-5)
        torch_resized = resize_maps(torch.from_numpy(maps), size)
        assert isinstance(torch_resized, torch.Tensor)
        np.testing.assert_allclose(torch_resized.numpy(), expected.numpy(), atol=1e-6)
    assert resize_maps(maps, (16, 12)) is maps
    half = resize_maps(torch.from_numpy(maps).half(), (8, 6))
    assert half.dtype == torch.float16 and half.shape == (2, 17, 8, 6)


def test_aggregate_heatmaps_averages_resolutions():
    low = np.full((17, 8, 8), 0.2, np.float32)
    high = np.full((17, 16, 16), 0.6, np.float32)
    mean = aggregate_heatmaps([low, high])
    assert mean.shape == (17, 16, 16)
    np.testing.assert_allclose(mean, 0.4, atol=1e-6)
    np.testing.assert_allclose(aggregate_heatmaps([low, high], (4, 4)), 0.4, atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        aggregate_heatmaps([])


def test_concat_tags_stacks_embeddings_last():
    a = torch.zeros(1, 17, 8, 8)
    b = torch.ones(1, 17, 16, 16)
    tags = concat_tags([a, b])
    assert tags.shape == (1, 17, 16, 16, 2)
    assert float(tags[..., 0].max()) == 0.0 and float(tags[..., 1].min()) == 1.0
    with pytest.raises(ValueError, match="leading shape"):
        concat_tags([a, torch.zeros(2, 17, 8, 8)])


def test_bad_channel_counts_are_rejected():
    with pytest.raises(ValueError, match="J = 17"):
        flip_back(np.zeros((14, 4, 4)), COCO_KEYPOINTS.flip_index)
    with pytest.raises(ValueError, match="L = 19"):
        flip_back_limb_fields(np.zeros((17, 4, 4)), COCO_KEYPOINTS)
    with pytest.raises(TypeError, match="list"):
        resize_maps([[0.0]], (2, 2))
