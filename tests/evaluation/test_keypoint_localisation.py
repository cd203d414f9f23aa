import numpy as np
import pytest

from occlupose.evaluation import keypoint_localisation
from occlupose.evaluation.coco_eval import make_evaluator
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIGMAS = COCO_KEYPOINTS.sigmas


def _scene(scenes):
    """Person 1: 12 visible, 5 hidden keypoints, found with chosen per-keypoint ks.

    Visible: 8 exact (ks 1), 4 with ks 0.6. Hidden: 2 with ks 0.8, 3 with ks 0.2.
    OKS = (8 + 4*0.6 + 2*0.8 + 3*0.2) / 17 = 12.6 / 17 = 0.741 -> matched at .50.
    Person 2 (another image) is only detected far off (OKS 0.1) -> not matched.
    """
    v = np.array([2] * 12 + [1] * 5)
    found = scenes.annotation(1, 1, (100, 100, 150, 350), visibility=v)
    missed = scenes.annotation(2, 2, (100, 100, 150, 350))
    ks = np.array([1.0] * 8 + [0.6] * 4 + [0.8] * 2 + [0.2] * 3)
    results = [
        scenes.displaced(found, ks, SIGMAS, found["area"]),
        scenes.displaced(missed, 0.1, SIGMAS, missed["area"]),
    ]
    return scenes.ground_truth([found, missed], [1, 2]), results


def test_visible_and_hidden_rates_by_hand(scenes):
    gt, results = _scene(scenes)
    out = keypoint_localisation(make_evaluator(gt, results, "coco"), ks_thresholds=(0.5, 0.75))
    assert out["match_oks"] == 0.5
    assert (out["people"], out["matched_people"]) == (2, 1)
    visible, hidden = out["visible"], out["hidden"]
    assert visible["count"] == 12 and hidden["count"] == 5
    assert visible["rate"] == pytest.approx({"0.5": 12 / 12, "0.75": 8 / 12})
    assert hidden["rate"] == pytest.approx({"0.5": 2 / 5, "0.75": 2 / 5})
    assert visible["mean_ks"] == pytest.approx((8 + 4 * 0.6) / 12)
    assert hidden["mean_ks"] == pytest.approx((2 * 0.8 + 3 * 0.2) / 5)


def test_match_threshold_decides_which_people_count(scenes):
    gt, results = _scene(scenes)
    evaluator = make_evaluator(gt, results, "coco")
    # OKS 0.741 < 0.75: at that matching threshold nobody is matched.
    strict = keypoint_localisation(evaluator, match_oks=0.75)
    assert strict["matched_people"] == 0
    assert strict["visible"] == {"count": 0, "mean_ks": None, "rate": {"0.5": None, "0.75": None}}
    with pytest.raises(ValueError, match="not one of the OKS thresholds"):
        keypoint_localisation(evaluator, match_oks=0.42)
