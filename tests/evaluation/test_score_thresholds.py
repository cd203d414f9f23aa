"""Precision / recall per score threshold on hand-made people with known similarities."""

from __future__ import annotations

import math

import pytest

from occlupose.evaluation import joint_threshold_sweep, match_people, person_threshold_sweep
from occlupose.structures.keypoint_set import KeypointSet

# Two joints with (2 sigma)^2 = 1 and people of area 50: a joint moved by d pixels has
# keypoint similarity exp(-d^2 / 100), so shift(ks) moves it to exactly that similarity.
TWO_JOINTS = KeypointSet("two", ("top", "bottom"), ((0, 1),), (0.5, 0.5))
AREA = 50.0


def shift(similarity: float) -> float:
    return math.sqrt(-2 * AREA * math.log(similarity))


def truth(ann_id: int, image_id: int, x: float, visibility=(2, 2)) -> dict:
    keypoints = [x, 0.0, visibility[0], x, 10.0, visibility[1]]
    return {"id": ann_id, "image_id": image_id, "keypoints": keypoints, "area": AREA}


def result(image_id: int, x: float, similarities, joint_scores, score: float) -> dict:
    """A prediction of the person at ``x`` whose joints have the given similarities."""
    (ks0, ks1), (s0, s1) = similarities, joint_scores
    keypoints = [x + shift(ks0), 0.0, s0, x + shift(ks1), 10.0, s1]
    return {"image_id": image_id, "keypoints": keypoints, "score": score}


@pytest.fixture
def matches():
    ground_truth = {
        "annotations": [
            truth(1, 1, 0.0),  # matched by the best prediction
            truth(2, 1, 100.0),  # matched at OKS 0.55, one wrong joint
            truth(3, 2, 0.0),  # missed
            truth(4, 2, 300.0, visibility=(0, 0)),  # no labelled joint: left out
        ]
    }
    results = [
        result(1, 0.0, (0.9, 1.0), (0.8, 0.3), score=0.9),  # OKS 0.95 with person 1
        result(1, 0.0, (0.6, 0.8), (0.9, 0.9), score=0.6),  # OKS 0.7 with person 1, taken
        result(1, 100.0, (0.3, 0.8), (0.5, 0.1), score=0.4),  # OKS 0.55 with person 2
        result(2, 150.0, (0.9, 0.9), (0.9, 0.9), score=0.2),  # near nobody
    ]
    return match_people(ground_truth, results, TWO_JOINTS)


def test_people_are_matched_one_to_one_in_order_of_score(matches):
    assert matches.num_ground_truth == 3
    assert matches.scores.tolist() == [0.9, 0.6, 0.4, 0.2]
    assert matches.matched.tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("threshold", "kept", "matched", "precision", "recall"),
    [
        (0.0, 4, 2, 2 / 4, 2 / 3),
        (0.3, 3, 2, 2 / 3, 2 / 3),
        (0.5, 2, 1, 1 / 2, 1 / 3),
        (0.9, 1, 1, 1.0, 1 / 3),
        (0.95, 0, 0, 1.0, 0.0),
    ],
)
def test_person_precision_and_recall_per_threshold(
    matches, threshold, kept, matched, precision, recall
):
    (row,) = person_threshold_sweep(matches, [threshold])
    assert (row["kept"], row["matched"]) == (kept, matched)
    assert row["precision"] == pytest.approx(precision)
    assert row["recall"] == pytest.approx(recall)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert row["f1"] == pytest.approx(f1)


@pytest.mark.parametrize(
    ("min_score", "threshold", "drawn", "right", "precision", "recall"),
    [
        (0.0, 0.0, 4, 3, 3 / 4, 3 / 4),  # the joint at similarity 0.3 is wrong
        (0.0, 0.2, 3, 2, 2 / 3, 2 / 4),
        (0.0, 0.4, 2, 1, 1 / 2, 1 / 4),
        (0.5, 0.0, 2, 2, 1.0, 1.0),  # only the best person's joints
        (0.5, 0.5, 1, 1, 1.0, 1 / 2),
    ],
)
def test_joint_precision_and_recall_per_threshold(
    matches, min_score, threshold, drawn, right, precision, recall
):
    (row,) = joint_threshold_sweep(matches, [threshold], min_score=min_score)
    assert (row["drawn"], row["right"]) == (drawn, right)
    assert row["precision"] == pytest.approx(precision)
    assert row["recall"] == pytest.approx(recall)


def test_the_higher_scoring_duplicate_takes_the_person_as_coco_does():
    ground_truth = {"annotations": [truth(1, 1, 0.0)]}
    results = [
        result(1, 0.0, (0.9, 1.0), (0.8, 0.8), score=0.5),
        result(1, 0.0, (0.6, 0.8), (0.8, 0.8), score=0.7),
    ]
    matches = match_people(ground_truth, results, TWO_JOINTS)
    assert matches.matched.tolist() == [True, False]  # the 0.7 one, though its OKS is lower
    assert matches.joint_right[0].tolist() == [True, True]
