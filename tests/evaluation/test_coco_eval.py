import json
from pathlib import Path

import numpy as np
import pytest

from occlupose.evaluation import (
    COCO_METRIC_NAMES,
    CROWDPOSE_METRIC_NAMES,
    evaluate_keypoints,
    get_protocol,
)
from occlupose.evaluation.inputs import load_json
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet

DATA = Path(__file__).resolve().parents[1] / "data"

CROWDPOSE_GT = DATA / "crowdpose_val" / "crowdpose_val.json.gz"
CROWDPOSE_PRED = DATA / "crowdpose_val" / "keypoint_predictions_perturbed.json.gz"
COCO4 = DATA / "coco_keypoints_4images"


def test_crowdpose_matches_official_crowdposetools_numbers():
    expected = json.loads(
        (DATA / "crowdpose_val" / "keypoint_predictions_perturbed.metrics.json").read_text()
    )
    metrics = evaluate_keypoints(CROWDPOSE_GT, CROWDPOSE_PRED, "crowdpose")
    assert tuple(metrics) == CROWDPOSE_METRIC_NAMES
    for name in CROWDPOSE_METRIC_NAMES:
        assert metrics[name] == pytest.approx(expected[name], abs=1e-4), name


def test_coco_matches_pycocotools_numbers_of_xtcocoapi_example():
    expected = json.loads((COCO4 / "keypoint_results_xtcocoapi_example.metrics.json").read_text())
    metrics = evaluate_keypoints(
        COCO4 / "person_keypoints_4images.json",
        COCO4 / "keypoint_results_xtcocoapi_example.json",
        "coco",
    )
    assert tuple(metrics) == COCO_METRIC_NAMES == tuple(expected["stats_order"])
    for name in COCO_METRIC_NAMES:
        assert metrics[name] == pytest.approx(expected["stats"][name], abs=1e-4), name


def _gt_as_results(scenes, gt: dict) -> list[dict]:
    return [
        scenes.as_result(a, score=0.5 + 0.001 * (a["id"] % 100))
        for a in gt["annotations"]
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]


def test_ground_truth_as_predictions_gives_ap_1_coco(scenes):
    gt = load_json(COCO4 / "person_keypoints_4images.json")
    metrics = evaluate_keypoints(gt, _gt_as_results(scenes, gt), "coco")
    assert metrics == pytest.approx(dict.fromkeys(COCO_METRIC_NAMES, 1.0), abs=1e-12)


def test_ground_truth_as_predictions_gives_ap_1_crowdpose(scenes):
    gt = load_json(CROWDPOSE_GT)
    metrics = evaluate_keypoints(gt, _gt_as_results(scenes, gt), "crowdpose")
    assert metrics == pytest.approx(dict.fromkeys(CROWDPOSE_METRIC_NAMES, 1.0), abs=1e-12)


# OKS of every detection -> thresholds .50, .55, ..., .95 it passes -> AP = passed / 10.
# Values sit between thresholds so floating-point rounding cannot flip a comparison.
KNOWN_OKS_AP = [(0.3, 0.0), (0.525, 0.1), (0.725, 0.5), (0.825, 0.7), (0.975, 1.0)]


@pytest.mark.parametrize(("oks", "expected_ap"), KNOWN_OKS_AP)
def test_predictions_displaced_by_known_oks_coco(scenes, oks, expected_ap):
    boxes = [(50, 40, 120, 300), (400, 60, 200, 500), (700, 100, 60, 90)]
    anns = [scenes.annotation(i + 1, 1 + i % 2, box) for i, box in enumerate(boxes)]
    gt = scenes.ground_truth(anns, [1, 2])
    results = [scenes.displaced(a, oks, COCO_KEYPOINTS.sigmas, a["area"]) for a in anns]
    metrics = evaluate_keypoints(gt, results, "coco")
    assert metrics["AP"] == pytest.approx(expected_ap, abs=1e-12)
    assert metrics["AR"] == pytest.approx(expected_ap, abs=1e-12)
    assert metrics["AP50"] == (1.0 if oks > 0.5 else 0.0)
    assert metrics["AP75"] == (1.0 if oks > 0.75 else 0.0)
    # areas 36000, 100000 (large) and 5400 (medium)
    assert metrics["AP_L"] == pytest.approx(expected_ap, abs=1e-12)
    assert metrics["AP_M"] == pytest.approx(expected_ap, abs=1e-12)


@pytest.mark.parametrize(("oks", "expected_ap"), KNOWN_OKS_AP)
def test_crowdpose_uses_its_sigmas_and_box_area(scenes, oks, expected_ap):
    boxes = [(50, 40, 120, 300), (400, 60, 200, 500)]
    anns = [
        scenes.annotation(i + 1, 1, box, CROWDPOSE_KEYPOINTS, with_area=False)
        for i, box in enumerate(boxes)
    ]
    gt = scenes.ground_truth(anns, [1], CROWDPOSE_KEYPOINTS, crowd_index={1: 0.5})
    results = [
        scenes.displaced(a, oks, CROWDPOSE_KEYPOINTS.sigmas, 0.53 * a["bbox"][2] * a["bbox"][3])
        for a in anns
    ]
    metrics = evaluate_keypoints(gt, results, "crowdpose")
    assert metrics["AP"] == pytest.approx(expected_ap, abs=1e-12)
    # The only image has crowd index 0.5: medium gets the AP; easy and hard have no
    # images, and crowdposetools reports the -1 of their empty precision arrays.
    assert metrics["AP_medium"] == pytest.approx(expected_ap, abs=1e-4)
    assert metrics["AP_easy"] == metrics["AP_hard"] == -1.0


def test_detection_ranking_and_false_positives(scenes):
    # One person; a wrong detection (OKS 0.3) outranks the right one: at every
    # threshold precision is 1/2 at recall 1 -> AP 0.5; AR 1.
    ann = scenes.annotation(1, 1, (100, 100, 150, 300))
    gt = scenes.ground_truth([ann], [1])
    results = [
        scenes.displaced(ann, 0.3, COCO_KEYPOINTS.sigmas, ann["area"], score=0.9),
        scenes.as_result(ann, score=0.8),
    ]
    metrics = evaluate_keypoints(gt, results)
    assert metrics["AP"] == pytest.approx(0.5)
    assert metrics["AR"] == pytest.approx(1.0)


def test_custom_keypoint_set_uses_its_sigmas(scenes):
    triangle = KeypointSet(
        name="triangle",
        keypoint_names=("a", "b", "c"),
        limbs=((0, 1), (1, 2)),
        sigmas=(0.05, 0.1, 0.2),
    )
    ann = scenes.annotation(1, 1, (100, 100, 200, 200), triangle)
    gt = scenes.ground_truth([ann], [1], triangle)
    assert get_protocol(triangle).keypoint_set is triangle
    ks = np.array([0.9, 0.8, 0.6])  # OKS 0.767 -> passes .50 ... .75, 6 of 10 thresholds
    result = scenes.displaced(ann, ks, triangle.sigmas, ann["area"])
    assert evaluate_keypoints(gt, [result], triangle)["AP"] == pytest.approx(0.6)
    # The same pixel offsets judged with the smallest sigma for every joint: joints b
    # and c now have ks 0.8^4 = 0.41 and 0.6^16 = 0.0003 -> OKS 0.437, below .50.
    strict = KeypointSet("strict", triangle.keypoint_names, triangle.limbs, (0.05,) * 3)
    assert evaluate_keypoints(gt, [result], strict)["AP"] == 0.0
