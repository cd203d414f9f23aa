"""The published HigherHRNet training geometry, against numbers of the official code.

``reference/official_pipeline_reference.npz`` holds, for three photos and four fixed
parameter sets each, the matrices and joints that HRNet/HigherHRNet's
``RandomAffineTransform`` + ``RandomHorizontalFlip`` produce (documented in
tests/data/README.md). The expected targets below are written from the definitions
of the official target generators (a Gaussian of sigma 2 on the pixel ``int(x),
int(y)``, 15 x 15 window; joints counted when ``v > 0`` and ``0 <= int(x), int(y) < R``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from occlupose.data.augment import (
    OfficialAffine,
    OfficialAffineSample,
    RandomAffine,
    official_affine,
)
from occlupose.data.bottom_up import BottomUpPoseDataset
from occlupose.data.datasets import load_coco_keypoints
from occlupose.data.masks import ignore_mask
from occlupose.engine.losses import associative_embedding_loss
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

HERE = Path(__file__).parent
REFERENCE = HERE / "reference" / "official_pipeline_reference.npz"
PHOTOS = HERE / "reference" / "official_pipeline_photos"
ANNOTATIONS = HERE / "coco_keypoints_4images" / "person_keypoints_4images.json"
IMAGE_IDS = (40083, 196141, 197388)
CASES = [(image_id, n) for image_id in IMAGE_IDS for n in range(4)]
SIGMA = 2.0


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def records():
    dataset = load_coco_keypoints(ANNOTATIONS, PHOTOS)
    return {record.image_id: record for record in dataset}


def _params(ref, image_id, n):
    aug_scale, aug_rot, dx, dy, flip = ref[f"train_{image_id}_params"][n]
    return float(aug_scale), float(aug_rot), int(dx), int(dy), bool(flip)


def _sample(ref, record, n) -> OfficialAffineSample:
    aug_scale, aug_rot, dx, dy, flip = _params(ref, record.image_id, n)
    return OfficialAffineSample(record.width, record.height, 512, aug_scale, aug_rot, dx, dy, flip)


def test_reference_covers_the_documented_cases(ref, records):
    assert tuple(ref["train_image_ids"]) == IMAGE_IDS
    for image_id in IMAGE_IDS:
        record = records[image_id]
        # The photos' annotations as the loader reads them are the file's joints.
        np.testing.assert_array_equal(record.annotation_ids, ref[f"train_{image_id}_ann_ids"])
        np.testing.assert_array_equal(record.keypoints, ref[f"train_{image_id}_joints_image"])


@pytest.mark.parametrize(("image_id", "n"), CASES)
def test_official_affine_reproduces_the_official_matrices(ref, records, image_id, n):
    record = records[image_id]
    aug_scale, aug_rot, dx, dy, _ = _params(ref, image_id, n)
    for size, key in ((512, "input"), (128, "128"), (256, "256")):
        matrix = official_affine(record.width, record.height, aug_scale, aug_rot, dx, dy, size)
        assert matrix.shape == (2, 3)
        np.testing.assert_allclose(matrix, ref[f"train_{image_id}_mat_{key}"][n], rtol=0, atol=1e-6)
        # Same order of operations as the official code: the very same numbers.
        np.testing.assert_array_equal(matrix, ref[f"train_{image_id}_mat_{key}"][n])
    # Centre and scale as documented: (w/2 + dx, h/2 + dy), short side * aug_scale / 200.
    np.testing.assert_array_equal(
        ref[f"train_{image_id}_center"][n], (record.width / 2 + dx, record.height / 2 + dy)
    )
    assert ref[f"train_{image_id}_scale"][n] == pytest.approx(
        min(record.width, record.height) / 200 * aug_scale, abs=1e-12
    )


@pytest.mark.parametrize(("image_id", "n"), CASES)
def test_joints_after_the_affine_and_the_flip_are_the_official_ones(ref, records, image_id, n):
    record = records[image_id]
    drawn = _sample(ref, record, n)
    unflipped = OfficialAffineSample(**{**drawn.__dict__, "flipped": False})
    for size in (128, 256):
        affine_only = unflipped.transform_keypoints(
            record.keypoints, size, COCO_KEYPOINTS.flip_index
        )
        np.testing.assert_allclose(
            affine_only, ref[f"train_{image_id}_joints_affine_{size}"][n], rtol=0, atol=1e-6
        )
        final = drawn.transform_keypoints(record.keypoints, size, COCO_KEYPOINTS.flip_index)
        np.testing.assert_allclose(
            final, ref[f"train_{image_id}_joints_{size}"][n], rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(final, ref[f"train_{image_id}_joints_{size}"][n])


def test_the_reference_includes_flipped_and_unflipped_samples(ref):
    flips = [_params(ref, i, n)[4] for i, n in CASES]
    assert 0 < sum(flips) < len(flips)


class _ReplayedDraws:
    """Stands in for numpy's Generator: returns the official code's recorded draws."""

    def __init__(self, draws):
        u_scale, u_rot, dx, dy, u_flip = draws
        self.uniforms = [u_scale, u_rot, u_flip]
        self.integers_ = [int(dx), int(dy)]
        self.bounds = []

    def random(self):
        return self.uniforms.pop(0)

    def integers(self, low, high):
        self.bounds.append((low, high))
        return self.integers_.pop(0)


@pytest.mark.parametrize(("image_id", "n"), CASES)
def test_draws_become_the_official_parameters(ref, records, image_id, n):
    record = records[image_id]
    rng = _ReplayedDraws(ref["train_draws"][n])
    drawn = OfficialAffine().sample(rng, (record.height, record.width), 512)
    aug_scale, aug_rot, dx, dy, flip = _params(ref, image_id, n)
    assert drawn.aug_scale == pytest.approx(aug_scale, abs=1e-12)
    assert drawn.aug_rot == pytest.approx(aug_rot, abs=1e-9)
    assert (drawn.dx, drawn.dy, drawn.flipped) == (dx, dy, flip)
    # dx and dy come from numpy's randint with the float bounds +-40 * scale, which it
    # truncates towards zero (upper bound exclusive).
    low, high = ref[f"train_{image_id}_dxdy_bounds"][n]
    assert rng.bounds == [(int(low), int(high))] * 2
    scale = min(record.width, record.height) / 200 * aug_scale
    assert (low, high) == pytest.approx((-40 * scale, 40 * scale))


def test_translation_draws_cover_the_truncated_range():
    augment = OfficialAffine(scale_range=(1.0, 1.0))
    rng = np.random.default_rng(0)
    drawn = [augment.sample(rng, (333, 500), 512) for _ in range(4000)]
    dx = np.array([d.dx for d in drawn])
    dy = np.array([d.dy for d in drawn])
    # 40 * 333 / 200 = 66.6: numpy's randint(-66.6, 66.6) draws -66 .. 65.
    assert augment.translation_bounds((333, 500), 1.0) == (-66, 66)
    for values in (dx, dy):
        assert values.min() == -66 and values.max() == 65
        assert values.dtype.kind == "i"
    rotations = np.array([d.aug_rot for d in drawn])
    assert -30 <= rotations.min() < -29 and 29 < rotations.max() <= 30
    assert 0.45 < np.mean([d.flipped for d in drawn]) < 0.55
    # The image centre moves by up to 66 image pixels, 66 * 512 / 333 = 101.5 input pixels
    # (at 512 input, about 102 whatever the image size).
    unrotated = [OfficialAffineSample(**{**d.__dict__, "aug_rot": 0.0}) for d in drawn]
    shifts = [np.abs(d.affine(512) @ (250, 166.5, 1) - 256).max() for d in unrotated]
    assert max(shifts) == pytest.approx(66 * 512 / 333)


def test_no_translation_draws_no_shift():
    drawn = OfficialAffine(max_translation=0.0).sample(np.random.default_rng(0), (100, 80), 512)
    assert (drawn.dx, drawn.dy) == (0, 0)


def test_the_crop_is_relative_to_the_short_side():
    # A 640 x 320 image at aug_scale 1: the 320-pixel short side fills the input, the
    # long side is cut (occlupose's own geometry fits the long side instead).
    matrix = official_affine(640, 320, 1.0, 0.0, 0, 0, 512)
    np.testing.assert_allclose(matrix[:, :2], np.eye(2) * 512 / 320)
    np.testing.assert_allclose(matrix @ [320, 160, 1], [256, 256])
    rotated = official_affine(640, 320, 1.0, 90.0, 0, 0, 512)
    # Counter-clockwise on screen: the point right of the centre goes up.
    np.testing.assert_allclose(rotated @ [420, 160, 1], [256, 256 - 160], atol=1e-9)


def _official_heatmaps(joints: np.ndarray, size: int) -> np.ndarray:
    """The official HeatmapGenerator's definition, pixel by pixel."""
    maps = np.zeros((joints.shape[1], size, size), np.float32)
    rows, cols = np.mgrid[0:size, 0:size]
    for person in joints:
        for j, (x, y, v) in enumerate(person):
            px, py = int(x), int(y)
            if v <= 0 or not (0 <= px < size and 0 <= py < size):
                continue
            window = (np.abs(cols - px) <= 3 * SIGMA + 1) & (np.abs(rows - py) <= 3 * SIGMA + 1)
            gauss = np.exp(-((cols - px) ** 2 + (rows - py) ** 2) / (2 * SIGMA**2))
            maps[j] = np.maximum(maps[j], np.where(window, gauss, 0).astype(np.float32))
    return maps


def _official_joint_indices(joints: np.ndarray, size: int, max_people: int) -> np.ndarray:
    """Which joints the official JointsGenerator keeps, at which flat pixel."""
    out = np.zeros((max_people, joints.shape[1], 2), np.int64)
    for p, person in enumerate(joints):
        for j, (x, y, v) in enumerate(person):
            px, py = int(x), int(y)
            if v > 0 and 0 <= px < size and 0 <= py < size:
                out[p, j] = (py * size + px, 1)
    return out


class _Fixed:
    """An augmentation that always returns the same drawn transform."""

    def __init__(self, drawn):
        self.drawn = drawn

    def sample(self, rng, image_hw, input_size):
        return self.drawn


def _dataset(records, drawn, **kwargs):
    return BottomUpPoseDataset(
        [records], COCO_KEYPOINTS, input_size=512, augment=_Fixed(drawn), with_limbs=False, **kwargs
    )


@pytest.mark.parametrize(("image_id", "n"), CASES)
def test_dataset_in_official_geometry_makes_the_official_targets(ref, records, image_id, n):
    record = records[image_id]
    drawn = _sample(ref, record, n)
    sample = _dataset(record, drawn, heatmap_centres="integer")[0]
    for r, size in enumerate((128, 256)):
        joints = ref[f"train_{image_id}_joints_{size}"][n]
        expected = _official_heatmaps(joints, size)
        assert expected.max() == 1.0  # some joints are inside the map
        np.testing.assert_allclose(sample["heatmaps"][r].numpy(), expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(
            sample["complete_heatmaps"][r].numpy(), sample["heatmaps"][r].numpy()
        )
    np.testing.assert_array_equal(
        sample["joints"].numpy(),
        _official_joint_indices(ref[f"train_{image_id}_joints_128"][n], 128, 30),
    )
    # The image: warped with the official input matrix, then mirrored.
    photo = record.read_image()
    expected_image = cv2.warpAffine(photo, ref[f"train_{image_id}_mat_input"][n], (512, 512))
    if drawn.flipped:
        expected_image = expected_image[:, ::-1]
    dataset = _dataset(record, drawn, compact=True)
    np.testing.assert_array_equal(dataset[0]["image"].numpy().transpose(1, 2, 0), expected_image)
    # People rows in file order, as the official joints arrays.
    assert int(sample["num_people"]) == len(ref[f"train_{image_id}_ann_ids"])


@pytest.mark.parametrize(("image_id", "n"), CASES)
def test_official_masks_ignore_padding_and_unlabelled_people(ref, records, image_id, n):
    record = records[image_id]
    drawn = _sample(ref, record, n)
    sample = _dataset(record, drawn)[0]
    for r, size in enumerate((128, 256)):
        warped = cv2.warpAffine(
            ignore_mask(record) * 255, ref[f"train_{image_id}_mat_{size}"][n], (size, size)
        )
        expected = (warped / 255 > 0.5).astype(np.float32)
        if drawn.flipped:
            expected = expected[:, ::-1]
        np.testing.assert_array_equal(sample["masks"][r].numpy(), expected)


def test_padding_is_ignored_in_the_official_geometry_only(ref, records):
    record = records[197388]  # nobody to ignore: the mask is the image's footprint
    drawn = _sample(ref, record, 3)  # aug_scale 1.5, 30 degrees: a lot of padding
    official = _dataset(record, drawn)[0]["masks"][0].numpy()
    footprint = cv2.warpAffine(
        np.full((record.height, record.width), 255, np.uint8), drawn.affine(128), (128, 128)
    )[:, ::-1]
    np.testing.assert_array_equal(official, footprint > 127)
    assert 0.2 < 1 - official.mean() < 0.8  # a good part of the map is padding
    ours = BottomUpPoseDataset(
        [record], COCO_KEYPOINTS, input_size=512, augment=RandomAffine(scale_range=(0.6, 0.6))
    )[0]["masks"][0].numpy()
    assert ours.min() == 1.0  # occlupose's geometry: the padding's target (0) counts


def test_subpixel_centres_in_the_official_geometry(ref, records):
    record = records[40083]
    drawn = _sample(ref, record, 1)
    sample = _dataset(record, drawn, heatmap_centres="subpixel")[0]
    joints = ref["train_40083_joints_128"][1]
    # Pixel u spans [u, u + 1) of the official coordinates: its centre is u + 1/2, so
    # the Gaussian peaks at x - 1/2 in pixel-centre units (radius ceil(3 sigma)).
    expected = np.zeros((17, 128, 128), np.float32)
    rows, cols = np.mgrid[0:128, 0:128]
    for person in joints:
        for j, (x, y, v) in enumerate(person):
            cx, cy = x - 0.5, y - 0.5
            px, py = int(np.floor(cx + 0.5)), int(np.floor(cy + 0.5))
            if v <= 0 or not (0 <= px < 128 and 0 <= py < 128):
                continue
            window = (np.abs(cols - px) <= 6) & (np.abs(rows - py) <= 6)
            gauss = np.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * SIGMA**2))
            expected[j] = np.maximum(expected[j], np.where(window, gauss, 0).astype(np.float32))
    assert expected.max() > 0.9
    # (keypoints are float32 at this point: 1e-5)
    np.testing.assert_allclose(sample["heatmaps"][0].numpy(), expected, rtol=0, atol=1e-5)
    integer = _dataset(record, drawn, heatmap_centres="integer")[0]["heatmaps"][0].numpy()
    assert not np.array_equal(sample["heatmaps"][0].numpy(), integer)


def test_an_image_without_labelled_people_trains_on_its_mask_only(ref, records):
    # HigherHRNet keeps such images: their targets are empty and their loss masks
    # cut out the people nobody labelled.
    full = records[40083]
    only = full.annotation_ids == 1202706  # a person without keypoints
    record = dataclasses.replace(
        full,
        keypoints=full.keypoints[only],
        boxes=full.boxes[only],
        areas=full.areas[only],
        iscrowd=full.iscrowd[only],
        segmentations=[s for s, keep in zip(full.segmentations, only, strict=True) if keep],
        annotation_ids=full.annotation_ids[only],
    )
    sample = _dataset(record, _sample(ref, record, 0))[0]
    assert all(float(h.abs().max()) == 0 for h in sample["heatmaps"])
    assert int(sample["joints"][..., 1].sum()) == 0
    assert int(sample["num_people"]) == 1  # the official joints array has its row
    mask = sample["masks"][0]
    assert 0 < float((mask == 0).float().mean()) < 0.5
    push, pull = associative_embedding_loss(torch.randn(1, 17, 128, 128), sample["joints"][None])
    assert float(push) == 0 and float(pull) == 0


def test_official_flipped_targets_sit_left_of_the_mirrored_content(ref, records):
    # A published quirk, reproduced: x -> R - 1 - x where map pixel u spans [u, u + 1)
    # puts flipped targets (S / R - 1) / (S / R) map pixels left of the mirrored image.
    record = records[40083]
    drawn = _sample(ref, record, 2)
    assert drawn.flipped
    flip_index = COCO_KEYPOINTS.flip_index
    in_input = drawn.transform_keypoints(record.keypoints, 512, flip_index)  # x -> 511 - x
    for size, offset in ((128, 0.75), (256, 0.5)):
        on_map = drawn.transform_keypoints(record.keypoints, size, flip_index)
        np.testing.assert_allclose(in_input[..., 0] * size / 512 - on_map[..., 0], offset)
