import math

import numpy as np
import pytest

from occlupose.evaluation import (
    DEFAULT_OCCLUSION_BINS,
    Bin,
    ap_per_bin,
    bins_from_edges,
    labelled_poses,
    visible_keypoint_oracle,
)
from occlupose.evaluation.coco_eval import make_evaluator
from occlupose.evaluation.inputs import EvaluationError
from occlupose.evaluation.occlusion import (
    occlusion_rate,
    occlusion_rate_per_person,
    overlap_per_person,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIGMAS = COCO_KEYPOINTS.sigmas


def test_bins_from_edges_labels_and_membership():
    bins = bins_from_edges([0, 0.2, 0.4])
    assert [b.label for b in bins] == ["0", "(0, 0.2]", "(0.2, 0.4]", "> 0.4"]
    assert bins == DEFAULT_OCCLUSION_BINS
    values = np.array([0.0, 1e-9, 0.2, 0.2000001, 0.4, 0.9, math.nan])
    membership = np.array([b.contains(values) for b in bins])
    assert membership.tolist() == [
        [True, False, False, False, False, False, False],
        [False, True, True, False, False, False, False],
        [False, False, False, True, True, False, False],
        [False, False, False, False, False, True, False],
    ]
    assert [b.label for b in bins_from_edges([0, 0.5], zero_bin=False)] == ["[0, 0.5]", "> 0.5"]
    assert Bin(0.2, 0.8, closed_low=True, closed_high=False).label == "[0.2, 0.8)"
    with pytest.raises(ValueError, match="increasing"):
        bins_from_edges([0.2, 0.1])


def test_person_attributes(scenes):
    v_b = np.array([2] * 8 + [1] * 9)  # 9 of 17 labelled keypoints hidden
    v_c = np.array([2] * 3 + [1] + [0] * 13)  # 1 of 4
    anns = [
        scenes.annotation(1, 1, (0, 0, 100, 100)),
        scenes.annotation(2, 1, (50, 0, 100, 100), visibility=v_b),  # IoU with 1: 50/150
        scenes.annotation(3, 2, (0, 0, 10, 10), visibility=v_c),  # alone in its image
        scenes.annotation(4, 2, (500, 0, 10, 10), visibility=np.zeros(17)),
    ]
    gt = scenes.ground_truth(anns, [1, 2])
    coco = make_evaluator(gt, [scenes.as_result(anns[0])], "coco").cocoGt
    rates = occlusion_rate_per_person(coco)
    assert rates[1] == 0.0 and rates[2] == pytest.approx(9 / 17) and rates[3] == 0.25
    assert math.isnan(rates[4])
    two_of_five = occlusion_rate(np.array([2, 2, 2, 1, 1, 0]))
    assert two_of_five == 0.4 and not DEFAULT_OCCLUSION_BINS[-1].contains(np.array([two_of_five]))
    overlaps = overlap_per_person(coco)
    assert overlaps == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 0.0, 4: 0.0})


@pytest.fixture
def two_people(scenes):
    """Person A (occlusion rate 0) and B (9/17 hidden) far apart in one image.

    Detections, by score:
      dY 0.99  OKS 0.3 with A                       (a poor duplicate of A)
      dX 0.95  OKS 0.3 with B                       (a poor duplicate of B)
      dA 0.90  exact A
      dB 0.80  OKS 0.825 with B
    """
    a = scenes.annotation(1, 1, (50, 100, 120, 300))
    b = scenes.annotation(2, 1, (600, 100, 120, 300), visibility=np.array([2] * 8 + [1] * 9))
    gt = scenes.ground_truth([a, b], [1])
    results = [
        scenes.displaced(a, 0.3, SIGMAS, a["area"], score=0.99),
        scenes.displaced(b, 0.3, SIGMAS, b["area"], score=0.95),
        scenes.as_result(a, score=0.90),
        scenes.displaced(b, 0.825, SIGMAS, b["area"], score=0.80),
    ]
    return gt, results


def test_ap_per_occlusion_bin_by_hand(two_people):
    gt, results = two_people
    evaluator = make_evaluator(gt, results, "coco")
    rates = occlusion_rate_per_person(evaluator.cocoGt)
    rows = ap_per_bin(evaluator, rates, DEFAULT_OCCLUSION_BINS)
    by_label = {r["label"]: r for r in rows}
    assert [r["num_people"] for r in rows] == [1, 0, 0, 1]

    # Bin "0" (only A counts). dX's best person is B, outside the bin -> ignored; dB
    # matches or best-matches B -> ignored. Ranking: dY false positive, dA true
    # positive -> precision 1/2 at recall 1 at every OKS threshold.
    assert by_label["0"]["AP"] == pytest.approx(0.5)
    assert by_label["0"]["AR"] == pytest.approx(1.0)

    # Bin "> 0.4" (only B counts). dY and dA belong to A -> ignored. dX false
    # positive, then dB: true positive at thresholds .50 ... .80 (7 of 10), where
    # precision is 1/2 at recall 1, and a false positive above -> AP = 7 * 0.5 / 10.
    assert by_label["> 0.4"]["AP"] == pytest.approx(0.35)
    assert by_label["> 0.4"]["AP50"] == pytest.approx(0.5)
    assert by_label["> 0.4"]["AP75"] == pytest.approx(0.5)
    assert by_label["> 0.4"]["AR"] == pytest.approx(0.7)

    # Empty bins report no numbers rather than pycocotools' -1.
    assert by_label["(0, 0.2]"]["AP"] is None and by_label["(0.2, 0.4]"]["AR"] is None

    # The whole image, for comparison: dY FP, dX FP, dA TP, dB TP (at <= .80).
    # Precision at recall 1/2 is 1/3, at recall 1 is 2/4 (<= .80) -> interpolated
    # precision 1/2 over all recall levels at .50-.80; 1/3 up to recall 1/2 above.
    evaluator.run()
    all_ap = float(np.mean(evaluator.eval["precision"][:, :, 0, 0, 0]))
    expected = (7 * 0.5 + 3 * (51 / 101) * (1 / 3)) / 10
    assert all_ap == pytest.approx(expected)


def test_binning_does_not_change_the_overall_evaluation(two_people):
    gt, results = two_people
    evaluator = make_evaluator(gt, results, "coco")
    before = evaluator.eval["precision"].copy()
    ap_per_bin(evaluator, occlusion_rate_per_person(evaluator.cocoGt), DEFAULT_OCCLUSION_BINS)
    np.testing.assert_array_equal(evaluator.eval["precision"], before)


def test_ground_truth_as_predictions_gives_ap_1_in_every_bin(scenes):
    rng = np.random.default_rng(0)
    anns = []
    for i in range(40):
        v = np.where(rng.random(17) < rng.choice([0.0, 0.15, 0.3, 0.6]), 1, 2)
        box = (float(rng.uniform(0, 800)), float(rng.uniform(0, 500)), 80.0, 200.0)
        anns.append(scenes.annotation(i + 1, 1 + i // 4, box, visibility=v))
    gt = scenes.ground_truth(anns, list(range(1, 11)))
    evaluator = make_evaluator(gt, [scenes.as_result(a, 0.5) for a in anns], "coco")
    coco = evaluator.cocoGt
    for values in (occlusion_rate_per_person(coco), overlap_per_person(coco)):
        rows = ap_per_bin(evaluator, values, bins_from_edges([0, 0.2, 0.4]))
        assert sum(r["num_people"] for r in rows) == 40
        assert all(r["AP"] == pytest.approx(1.0) for r in rows if r["num_people"])


def test_per_image_bins_restrict_images(scenes):
    # Image 1 (crowd index 0.1) is perfect; image 2 (0.9) has only a false positive.
    a = scenes.annotation(1, 1, (50, 100, 120, 300))
    b = scenes.annotation(2, 2, (50, 100, 120, 300))
    gt = scenes.ground_truth([a, b], [1, 2], crowd_index={1: 0.1, 2: 0.9})
    results = [scenes.as_result(a), scenes.displaced(b, 0.2, SIGMAS, b["area"])]
    evaluator = make_evaluator(gt, results, "coco")
    bins = (Bin(0.0, 0.5, closed_low=True), Bin(0.5, 1.0))
    rows = ap_per_bin(evaluator, {1: 0.1, 2: 0.9}, bins, per_image=True)
    assert [(r["num_images"], r["num_people"]) for r in rows] == [(1, 1), (1, 1)]
    assert [r["AP"] for r in rows] == pytest.approx([1.0, 0.0])


def test_visible_keypoint_oracle_caps_occluded_people(scenes):
    # 10 people with 3 of 17 keypoints hidden: OKS = 14/17 = 0.82, so they match at the
    # thresholds 0.50 ... 0.80 (7 of 10): AP 0.7. 10 people with 9 hidden: OKS = 8/17 =
    # 0.47 < 0.5, AP 0. Unoccluded people: AP 1.
    v_light = np.array([1] * 3 + [2] * 14)
    v_heavy = np.array([1] * 9 + [2] * 8)
    anns = []
    for i in range(30):
        v = [None, v_light, v_heavy][i // 10]
        box = (100.0 + 25 * (i % 10), 100.0 + 20 * (i // 10), 80.0, 200.0)
        anns.append(scenes.annotation(i + 1, i + 1, box, visibility=v))
    gt = scenes.ground_truth(anns, list(range(1, 31)))
    results = visible_keypoint_oracle(gt)
    assert len(results) == 30
    hidden = np.asarray(results[10]["keypoints"]).reshape(17, 3)[:3]
    assert np.all(hidden == [0.0, 0.0, 1.0])  # hidden keypoints are not placed
    evaluator = make_evaluator(gt, results, "coco")
    rates = occlusion_rate_per_person(evaluator.cocoGt)
    rows = ap_per_bin(evaluator, rates, DEFAULT_OCCLUSION_BINS)
    by_label = {r["label"]: r["AP"] for r in rows}
    assert by_label["0"] == pytest.approx(1.0)
    assert by_label["(0, 0.2]"] == pytest.approx(0.7)
    assert by_label["> 0.4"] == pytest.approx(0.0)


def _similar(points: np.ndarray, scale: float, angle: float, shift: tuple[float, float]):
    c, s = math.cos(angle), math.sin(angle)
    return scale * points @ np.array([[c, s], [-s, c]]) + np.asarray(shift)


def test_oracle_completes_hidden_keypoints_from_the_best_fitting_reference(scenes):
    # Person 1 has 9 of 17 keypoints hidden (AP 0 without completion). The right reference
    # is its own pose, shrunk, turned and moved: the fitted similarity transform puts the
    # hidden keypoints back exactly. A second, distorted reference fits worse and loses.
    v_heavy = np.array([1] * 9 + [2] * 8)
    person = scenes.annotation(1, 1, (100.0, 100.0, 80.0, 200.0), visibility=v_heavy)
    gt = scenes.ground_truth([person], [1])
    true_xy = np.asarray(person["keypoints"]).reshape(17, 3)[:, :2]
    right = _similar(true_xy, 0.3, 0.5, (-40.0, 7.0))
    wrong = right.copy()
    wrong[:9] += 15.0  # same visible part up to the fit, different hidden joints
    wrong[9:] += np.linspace(-2.0, 2.0, 8)[:, None]
    for references in (right[None], np.stack([wrong, right]), np.stack([right, wrong])):
        (result,) = visible_keypoint_oracle(gt, references)
        out = np.asarray(result["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(out[:, :2], true_xy, atol=1e-6)
        rows = ap_per_bin(make_evaluator(gt, [result], "coco"), {1: 9 / 17}, DEFAULT_OCCLUSION_BINS)
        assert {r["label"]: r["AP"] for r in rows}["> 0.4"] == pytest.approx(1.0)
    (alone,) = visible_keypoint_oracle(gt, wrong[None])
    assert not np.allclose(np.asarray(alone["keypoints"]).reshape(17, 3)[:9, :2], true_xy[:9])


def test_labelled_poses_and_reference_checks(scenes):
    full = scenes.annotation(1, 1, (100.0, 100.0, 80.0, 200.0), visibility=np.array([1] * 17))
    partial = scenes.annotation(2, 1, (300.0, 100.0, 80.0, 200.0), visibility=[0] + [2] * 16)
    gt = scenes.ground_truth([full, partial], [1])
    poses = labelled_poses(gt)  # hidden keypoints are labelled; a v=0 one is not
    np.testing.assert_array_equal(poses, [np.asarray(full["keypoints"]).reshape(17, 3)[:, :2]])
    with pytest.raises(EvaluationError, match="no person has all keypoints labelled"):
        labelled_poses(scenes.ground_truth([partial], [1]))
    occluded = scenes.ground_truth(
        [scenes.annotation(1, 1, (0.0, 0.0, 50.0, 90.0), visibility=[1] * 3 + [2] * 14)], [1]
    )
    with pytest.raises(ValueError, match="reference poses have 5 keypoints"):
        visible_keypoint_oracle(occluded, np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match=r"must be \(M, J, 2\)"):
        visible_keypoint_oracle(occluded, np.zeros((17, 2)))
