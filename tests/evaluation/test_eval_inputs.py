import copy
import json
import math

import numpy as np
import pytest

from occlupose.evaluation import EvaluationError, evaluate_keypoints
from occlupose.structures.keypoint_set import CROWDPOSE_KEYPOINTS


@pytest.fixture
def scene(scenes, tmp_path):
    """Two people in one image, their perfect detections, both also written to files."""
    anns = [
        scenes.annotation(1, 7, (50, 50, 100, 250)),
        scenes.annotation(2, 7, (300, 60, 120, 260)),
    ]
    gt = scenes.ground_truth(anns, [7])
    results = [scenes.as_result(a) for a in anns]
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    results_path.write_text(json.dumps(results))
    return gt, results, gt_path, results_path


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_error_is_a_value_error():
    assert issubclass(EvaluationError, ValueError)


def test_results_with_unknown_image_ids(scene, tmp_path):
    gt, results, gt_path, _ = scene
    bad = copy.deepcopy(results)
    bad[1]["image_id"] = 12345
    path = _write(tmp_path / "unknown_ids.json", bad)
    with pytest.raises(EvaluationError, match=r"unknown_ids\.json.*1 image ids.*12345"):
        evaluate_keypoints(gt_path, path)


def test_results_with_wrong_keypoint_count(scenes, scene, tmp_path):
    gt, results, gt_path, _ = scene
    bad = copy.deepcopy(results)
    bad[0]["keypoints"] = bad[0]["keypoints"][: 3 * 14]
    path = _write(tmp_path / "fourteen.json", bad)
    with pytest.raises(EvaluationError, match=r"fourteen\.json: result \[0\].*51 numbers.*got 42"):
        evaluate_keypoints(gt_path, path)
    # CrowdPose ground truth evaluated with the COCO protocol
    crowd = scenes.ground_truth(
        [scenes.annotation(1, 7, (50, 50, 100, 250), CROWDPOSE_KEYPOINTS)], [7], CROWDPOSE_KEYPOINTS
    )
    with pytest.raises(EvaluationError, match=r"annotations\[0\].*51 numbers.*got 42"):
        evaluate_keypoints(crowd, [], "coco")


@pytest.mark.parametrize("score", [math.nan, math.inf, -0.1, "high", None])
def test_results_with_bad_scores(scene, score):
    gt, results, _, _ = scene
    bad = copy.deepcopy(results)
    bad[1]["score"] = score
    with pytest.raises(EvaluationError, match=r"result \[1\] \(image 7\).*score"):
        evaluate_keypoints(gt, bad)


def test_results_with_nan_keypoints(scene):
    gt, results, _, _ = scene
    bad = copy.deepcopy(results)
    bad[0]["keypoints"][3] = math.nan
    with pytest.raises(EvaluationError, match="NaN or infinity"):
        evaluate_keypoints(gt, bad)


def test_results_with_unknown_category(scene):
    gt, results, _, _ = scene
    bad = copy.deepcopy(results)
    bad[0]["category_id"] = 3
    with pytest.raises(EvaluationError, match="category_id 3"):
        evaluate_keypoints(gt, bad)


def test_results_without_category_take_the_only_one(scene):
    gt, results, _, _ = scene
    for r in results:
        del r["category_id"]
    assert evaluate_keypoints(gt, results)["AP"] == 1.0


def test_empty_results_count_every_person_as_missed(scene, tmp_path):
    _, _, gt_path, _ = scene
    path = _write(tmp_path / "empty.json", [])
    with pytest.warns(UserWarning, match=r"empty\.json: no keypoint results"):
        metrics = evaluate_keypoints(gt_path, path)
    assert metrics["AP"] == 0.0 and metrics["AR"] == 0.0


def test_results_not_a_list(scene, tmp_path):
    _, _, gt_path, _ = scene
    path = _write(tmp_path / "dict.json", {"annotations": []})
    with pytest.raises(EvaluationError, match=r"dict\.json: keypoint results must be a JSON list"):
        evaluate_keypoints(gt_path, path)


def test_malformed_json_names_file_and_position(scene, tmp_path):
    _, _, gt_path, results_path = scene
    broken = tmp_path / "broken.json"
    broken.write_text(results_path.read_text()[:-20])
    with pytest.raises(EvaluationError, match=r"broken\.json: malformed JSON at line 1, column"):
        evaluate_keypoints(gt_path, broken)
    with pytest.raises(EvaluationError, match=r"missing\.json: file not found"):
        evaluate_keypoints(tmp_path / "missing.json", results_path)


def test_ground_truth_structure_errors(scene, tmp_path):
    gt, results, _, _ = scene
    no_images = {k: v for k, v in gt.items() if k != "images"}
    with pytest.raises(EvaluationError, match=r"gt\.json: ground truth has no 'images' list"):
        evaluate_keypoints(_write(tmp_path / "gt.json", no_images), results)
    orphan = copy.deepcopy(gt)
    orphan["annotations"][1]["image_id"] = 99
    with pytest.raises(EvaluationError, match=r"annotations\[1\] \(id 2, image 99\)"):
        evaluate_keypoints(orphan, results)
    no_box = copy.deepcopy(gt)
    del no_box["annotations"][0]["bbox"]
    with pytest.raises(EvaluationError, match="'bbox' must be"):
        evaluate_keypoints(no_box, results)


def test_coco_ground_truth_without_area_uses_box_area_with_a_warning(scene):
    gt, results, _, _ = scene
    for ann in gt["annotations"]:
        del ann["area"]
    with pytest.warns(UserWarning, match="2 annotations have no 'area'"):
        metrics = evaluate_keypoints(gt, results)
    assert metrics["AP"] == 1.0


def test_crowdpose_without_crowd_index_is_an_error(scenes):
    anns = [scenes.annotation(1, 7, (50, 50, 100, 250), CROWDPOSE_KEYPOINTS, with_area=False)]
    gt = scenes.ground_truth(anns, [7], CROWDPOSE_KEYPOINTS)
    with pytest.raises(EvaluationError, match="image 7 has no 'crowdIndex'"):
        evaluate_keypoints(gt, [scenes.as_result(anns[0])], "crowdpose")


def test_unknown_dataset_name(scene):
    gt, results, _, _ = scene
    with pytest.raises(EvaluationError, match="unknown keypoint set 'mpii'"):
        evaluate_keypoints(gt, results, "mpii")


def test_inputs_are_not_modified(scene):
    gt, results, _, _ = scene
    gt_before, results_before = copy.deepcopy(gt), copy.deepcopy(results)
    evaluate_keypoints(gt, results)
    assert gt == gt_before and results == results_before


def test_in_memory_results_may_hold_numpy_values(scene):
    gt, results, _, _ = scene
    as_numpy = [
        {
            "image_id": np.int64(r["image_id"]),
            "keypoints": np.asarray(r["keypoints"], dtype=np.float32).reshape(17, 3),
            "score": np.float32(0.7),
        }
        for r in results
    ]
    assert evaluate_keypoints(gt, as_numpy)["AP"] == pytest.approx(1.0)
