"""The completion benchmark's metric, hiding patterns and real-pose split."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from occlupose.evaluation import (
    completion_people,
    completion_scores,
    evaluate_completer,
    hidden_masks,
    hide_patterns,
)
from occlupose.structures import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def crowdpose_gt() -> dict:
    with gzip.open(DATA / "crowdpose_val" / "crowdpose_val.json.gz") as f:
        return json.load(f)


def test_scores_follow_oks_on_known_errors():
    # Area 100 and sigma 0.1: the OKS scale sqrt(area) * 2 sigma is 2 pixels.
    truth = np.zeros((1, 4, 2))
    predicted = truth.copy()
    d = [1.0, 2.0 * math.sqrt(2 * math.log(2)), 4.0, 0.0]  # ks 0.8825, 0.5, 0.1353, 1
    predicted[0, :, 0] = d
    hidden = np.array([[True, True, True, False]])
    scores = completion_scores(predicted, truth, hidden, np.array([100.0]), [0.1] * 4)
    assert scores["hidden"] == 3
    assert scores["within_0.5"] == pytest.approx(2 / 3)  # ks = 0.5 counts
    assert scores["within_0.75"] == pytest.approx(1 / 3)
    assert scores["median_error"] == pytest.approx(math.sqrt(2 * math.log(2)) / 1.0 * 1.0)
    ks = [math.exp(-0.125), 0.5, math.exp(-2.0), 1.0]
    assert scores["oks"] == pytest.approx(np.mean(ks))


def test_scores_of_missing_predictions_and_bad_input():
    truth = np.zeros((2, 3, 2))
    predicted = np.full_like(truth, np.nan)
    hidden = np.ones((2, 3), dtype=bool)
    scores = completion_scores(predicted, truth, hidden, np.array([10.0, 10.0]), [0.1] * 3)
    assert scores["within_0.5"] == 0.0 and scores["oks"] == 0.0
    assert scores["median_error"] == math.inf
    with pytest.raises(ValueError, match="no hidden labelled joint"):
        completion_scores(truth, truth, ~hidden, np.array([10.0, 10.0]), [0.1] * 3)
    with pytest.raises(ValueError, match="areas must be positive"):
        completion_scores(truth, truth, hidden, np.array([10.0, 0.0]), [0.1] * 3)


def test_hiding_patterns_hide_what_they_say():
    rng = np.random.default_rng(0)
    names = CROWDPOSE_KEYPOINTS.keypoint_names
    lower = hidden_masks("lower_body", CROWDPOSE_KEYPOINTS, 5, rng)
    assert {names[j] for j in np.flatnonzero(lower[0])} == {
        f"{s}_{p}" for s in ("left", "right") for p in ("hip", "knee", "ankle")
    }
    arm = hidden_masks("one_arm", CROWDPOSE_KEYPOINTS, 50, rng)
    assert (arm.sum(axis=1) == 3).all()
    sides = {names[np.flatnonzero(row)[0]].split("_")[0] for row in arm}
    assert sides == {"left", "right"}
    assert set(np.flatnonzero(hidden_masks("head", COCO_KEYPOINTS, 1, rng)[0])) == set(range(5))
    for k in (1, 5, 8):
        assert (hidden_masks(f"random{k}", COCO_KEYPOINTS, 20, rng).sum(axis=1) == k).all()
    with pytest.raises(ValueError, match="random-k hides 1 .. 12"):
        hidden_masks("random13", CROWDPOSE_KEYPOINTS, 1, rng)
    with pytest.raises(ValueError, match="unknown pattern"):
        hidden_masks("left_foot", CROWDPOSE_KEYPOINTS, 1, rng)
    assert set(hide_patterns(COCO_KEYPOINTS)) == set(hide_patterns(CROWDPOSE_KEYPOINTS))


def test_real_poses_split_by_image_id(crowdpose_gt):
    fit = completion_people(crowdpose_gt, split="fit", area_from_box=True)
    test = completion_people(crowdpose_gt, split="test", area_from_box=True)
    everyone = completion_people(crowdpose_gt, area_from_box=True)
    assert (fit.image_ids % 4 != 0).all() and (test.image_ids % 4 == 0).all()
    assert len(fit) + len(test) == len(everyone)
    # Measured on CrowdPose val: 2,721 people with all 14 joints labelled (2,794 with the 12
    # body joints), 644 of them in
    # the held-out fold.
    assert int(everyone.labelled.all(axis=1).sum()) == 2721
    assert int(test.labelled.all(axis=1).sum()) == 644
    assert (test.areas > 0).all()
    with pytest.raises(ValueError, match="split must be"):
        completion_people(crowdpose_gt, split="val")


def test_evaluate_completer_scores_an_oracle_and_no_completion(crowdpose_gt):
    test = completion_people(crowdpose_gt, split="test", area_from_box=True)
    full = test.subset(test.labelled.all(axis=1))
    truth = full.poses

    def oracle(keypoints, known):
        assert np.isnan(keypoints[~known]).all()  # hidden joints are not given away
        return truth

    patterns = ("lower_body", "random3")
    perfect = evaluate_completer(oracle, test, CROWDPOSE_KEYPOINTS, patterns)
    assert perfect["mean"]["within_0.5"] == 1.0 and perfect["mean"]["oks"] == 1.0
    assert perfect["lower_body"]["hidden"] == 6 * len(full)
    nothing = evaluate_completer(lambda k, m: k, test, CROWDPOSE_KEYPOINTS, patterns)
    assert nothing["mean"]["within_0.5"] == 0.0
