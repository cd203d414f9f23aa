"""Validation decoding: coordinates back to the original image, AP of perfect outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occlupose.data.augment import fit_matrix, stride_matrix, transform_points
from occlupose.data.bottom_up import BottomUpPoseDataset
from occlupose.data.datasets import load_coco_keypoints
from occlupose.decode import DecodeSettings
from occlupose.engine.validation import PoseValidator, decode_batch, metrics_for_logging
from occlupose.structures import PoseOutputs
from occlupose.structures.keypoint_set import COCO_KEYPOINTS


def _gaussians(points: np.ndarray, size: int, sigma: float = 2.0) -> np.ndarray:
    """(J, size, size) maps with a Gaussian of peak 1 at each of the (P, J, 2) points."""
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-((grid[None, None, :] - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (P, J, W)
    gy = np.exp(-((grid[None, None, :] - points[..., 1:2]) ** 2) / (2 * sigma**2))  # (P, J, H)
    return (gy[..., :, None] * gx[..., None, :]).max(axis=0).astype(np.float32)


def _outputs(heatmaps: list[np.ndarray], tags=None, limbs=None) -> PoseOutputs:
    def batch(a):
        return None if a is None else torch.from_numpy(np.asarray(a, np.float32))[None]

    maps = [batch(h) for h in heatmaps]
    return PoseOutputs(maps, batch(tags), batch(limbs), None, torch.zeros(1, 1, 1, 1))


def test_decode_batch_puts_two_people_back_in_original_pixels():
    matrix = fit_matrix((100, 200), 128)
    rng = np.random.default_rng(1)
    people = np.stack(
        [
            np.c_[rng.uniform(15, 85, 17), rng.uniform(10, 90, 17)],  # left half
            np.c_[rng.uniform(115, 185, 17), rng.uniform(10, 90, 17)],  # right half
        ]
    )
    heatmaps = []
    for stride in (4, 2):
        on_map = transform_points(people, stride_matrix(stride) @ matrix)
        heatmaps.append(_gaussians(on_map, 128 // stride))
    tags = np.zeros((17, 32, 32), np.float32)
    tags[:, :, 16:] = 5.0  # the right person's tag (x > 100 in the image is x > 16 on the map)
    found = decode_batch(
        _outputs(heatmaps, tags=tags),
        torch.from_numpy(matrix.astype(np.float32))[None],
        [7],
        COCO_KEYPOINTS,
        input_size=128,
        settings=DecodeSettings(grouping="tags"),
    )
    assert list(found) == [7] and len(found[7]) == 2
    decoded = sorted(found[7], key=lambda p: p.keypoints[:, 0].mean())
    # One 1/2-map pixel is 2 input pixels = 2 / 0.64 original pixels; peaks are found to
    # within half a pixel and shifted a quarter pixel, so 0.75 map pixels at most.
    tolerance = 0.75 * 2 / 0.64
    for person, truth in zip(decoded, people, strict=True):
        assert np.all(person.keypoints[:, 2] > 0.5)
        assert np.abs(person.keypoints[:, :2] - truth).max() < tolerance


@pytest.fixture(scope="module")
def perfect_outputs(synthetic_data):
    """The validation set and network outputs equal to its own targets (tags made ideal)."""
    records = load_coco_keypoints(
        synthetic_data / "val" / "annotations.json", synthetic_data / "val" / "images"
    )
    dataset = BottomUpPoseDataset(records, records.keypoint_set, input_size=128)
    samples = [dataset[i] for i in range(len(dataset))]
    return records, samples


def _ideal_tags(sample) -> np.ndarray:
    """Tag maps with person n's tag 3n around each of its joints (what AE learns)."""
    joints = sample["joints"].numpy()  # (P, J, 2) [y * W + x, valid]
    size = sample["heatmaps"][0].shape[-1]
    tags = np.zeros((joints.shape[1], size, size), np.float32)
    for n, person in enumerate(joints):
        for j, (index, valid) in enumerate(person):
            if valid:
                y, x = divmod(int(index), size)
                tags[j, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = 3.0 * n
    return tags


def _decode_samples(samples, keypoint_set, grouping, *, heatmaps="complete_heatmaps", **kwargs):
    """Decode every sample's own targets as if a network had output them."""
    people = {}
    for s in samples:
        outputs = _outputs(
            [h.numpy() for h in s[heatmaps]],
            tags=_ideal_tags(s) if grouping == "tags" else None,
            limbs=s["limb_fields"].numpy(),
        )
        people.update(
            decode_batch(
                outputs,
                s["matrix"][None],
                [int(s["image_id"])],
                keypoint_set,
                input_size=128,
                settings=DecodeSettings(grouping=grouping),
                **kwargs,
            )
        )
    return people


@pytest.mark.parametrize("grouping", ["tags", "limbs"])
def test_perfect_outputs_score_a_high_ap(perfect_outputs, grouping, tmp_path):
    records, samples = perfect_outputs
    people = _decode_samples(samples, records.keypoint_set, grouping)
    validator = PoseValidator(records.annotation_file, records.keypoint_set, report_dir=tmp_path)
    report = validator.evaluate(people, tag="perfect")
    assert (tmp_path / "perfect.json").is_file()
    metrics = metrics_for_logging(report)
    assert metrics["val/AP"] > 0.8
    assert any(name.startswith("val/AP_occlusion_rate/") for name in metrics)
    assert all(v >= 0 for v in metrics.values())


def test_validator_on_a_subset_and_without_detections(perfect_outputs):
    records, _ = perfect_outputs
    first = records.records[0].image_id
    validator = PoseValidator(records.annotation_file, records.keypoint_set, image_ids=[first])
    assert [i["id"] for i in validator.ground_truth["images"]] == [first]
    report = validator.evaluate({first: []})
    assert metrics_for_logging(report)["val/AP"] == 0.0


def test_metrics_for_logging_names_bins():
    report = {
        "metrics": {"AP": 0.5, "AP_L": -1.0},
        "bins": {
            "occlusion_rate": [
                {"label": "0", "AP": 0.7},
                {"label": "(0, 0.2]", "AP": 0.6},
                {"label": "> 0.4", "AP": None},
            ]
        },
    }
    assert metrics_for_logging(report) == {
        "val/AP": 0.5,
        "val/AP_occlusion_rate/0": 0.7,
        "val/AP_occlusion_rate/0_0.2": 0.6,
    }


def test_a_pose_prior_raises_the_ap_of_outputs_that_miss_the_hidden_joints(
    perfect_outputs, synthetic_data
):
    # Heatmaps of the visible joints only: hidden joints are left out by grouping and
    # count zero in OKS, unless the prior of the training people places them.
    from occlupose.engine.build import build_pose_prior

    records, _ = perfect_outputs
    dataset = BottomUpPoseDataset(records, records.keypoint_set, input_size=128, v1_is_hidden=True)
    samples = [dataset[i] for i in range(len(dataset))]
    train = load_coco_keypoints(
        synthetic_data / "train" / "annotations.json", synthetic_data / "train" / "images"
    )
    prior = build_pose_prior(train)

    def ap(pose_prior) -> float:
        people = _decode_samples(
            samples, records.keypoint_set, "limbs", heatmaps="heatmaps", pose_prior=pose_prior
        )
        report = PoseValidator(records.annotation_file, records.keypoint_set).evaluate(people)
        return report["metrics"]["AP"]

    # Measured: 0.15 without, 0.33 with the 37 fully labelled people of the tiny train set.
    assert ap(prior) > ap(None) + 0.1
