"""``occlupose demo`` on a synthetic scene and on a given image."""

from __future__ import annotations

import re

import cv2
import numpy as np
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.cli.demo import scene_ground_truth
from occlupose.data.synthetic import render_scene
from occlupose.evaluation import evaluate_keypoints
from occlupose.structures import COCO_KEYPOINTS

runner = CliRunner(env={"COLUMNS": "240"})


def test_demo_scene_writes_the_comparison_and_reports_ap(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    result = runner.invoke(
        app, ["demo", "--weights", str(weights), "--out", str(tmp_path), "--size", "128"]
    )
    assert result.exit_code == 0, result.output
    assert "AP on this scene" in result.output
    panel = cv2.imread(str(tmp_path / "demo_scene_seed7.png"))
    assert panel.shape[0] >= 128 and panel.shape[1] >= 2 * 128  # truth beside prediction


def test_demo_on_an_image(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((60, 80, 3), 128, np.uint8))
    result = runner.invoke(
        app, ["demo", "--image", str(photo), "--weights", str(weights), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "photo_pose.png").is_file()
    missing = str(tmp_path / "missing.jpg")
    result = runner.invoke(app, ["demo", "--image", missing, "-w", str(weights)])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_scene_ground_truth_scores_itself_perfectly():
    scene = render_scene(3, size=128, occlusion="medium")
    truth = scene_ground_truth(scene, COCO_KEYPOINTS)
    results = [
        {"image_id": 1, "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in truth["annotations"]
    ]
    assert evaluate_keypoints(truth, results, "coco")["AP"] == 1.0


def test_demo_runs_the_bundled_default(tmp_path):
    from occlupose.cli.predict import DEFAULT_MIN_SCORE
    from occlupose.inference import Predictor

    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo_scene_seed7.png").is_file()
    assert "medium occlusion" in result.output
    # The scene's AP ranks every person, as eval does, not only the people shown.
    scene = render_scene(7, size=256, occlusion="medium")
    people = Predictor.from_pretrained().predict(cv2.cvtColor(scene.image, cv2.COLOR_BGR2RGB))
    assert any(person.score < DEFAULT_MIN_SCORE for person in people)
    results = [person.to_coco(1) for person in people]
    ap = evaluate_keypoints(scene_ground_truth(scene, COCO_KEYPOINTS), results, "coco")["AP"]
    assert f"AP on this scene: {ap:.3f}" in result.output
    # The table lists the people predict keeps by default.
    rows = re.findall(r"^│ +\d+ │", result.output, flags=re.MULTILINE)
    assert len(rows) == sum(person.score >= DEFAULT_MIN_SCORE for person in people) > 0


def test_default_model_on_a_photo_says_it_is_synthetic_only(tmp_path):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((60, 80, 3), 128, np.uint8))
    result = runner.invoke(app, ["demo", "--image", str(photo), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "trained on synthetic scenes only" in " ".join(result.output.split())


def test_demo_checks_occlusion_against_the_scene_levels():
    from occlupose.cli.demo import DEMO_OCCLUSION_LEVELS
    from occlupose.data.synthetic.scene import OCCLUSION_LEVELS

    assert tuple(OCCLUSION_LEVELS) == DEMO_OCCLUSION_LEVELS
