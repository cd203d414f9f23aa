"""``occlupose eval --weights``: run a model on a dataset, with controlled occlusion."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.data.image_io import read_image
from occlupose.data.synthetic import generate_dataset
from occlupose.evaluation import occlude_image
from occlupose.evaluation.occluded_dataset import covered_keypoints
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

runner = CliRunner(env={"COLUMNS": "240"})


def test_eval_runs_the_model_and_the_occlusion_curve(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    ann = generate_dataset(tmp_path / "synth", 3, seed=1, size=64, progress=False)
    out = tmp_path / "report"
    args = ["eval", "--weights", str(weights), "--ann", str(ann), "--images"]
    args += [str(ann.parent / "images"), "--occlude", "0.3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "results_occlusion0.00.json").is_file()
    assert (out / "results_occlusion0.30.json").is_file()
    report = json.loads((out / "report.json").read_text())
    curve = report["controlled_occlusion"]["tiny"]
    assert [point["rate"] for point in curve] == [0.0, 0.3]
    assert 0.0 <= report["models"]["tiny"]["metrics"]["AP"] <= 1.0
    # The keypoints the occluders covered, as occlupose occlude would list them.
    gt = json.loads(ann.read_text())
    expected = 0
    for entry in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == entry["id"]]
        image = read_image(ann.parent / "images" / entry["file_name"])
        _, hidden = occlude_image(image, anns, 0.3, 0, COCO_KEYPOINTS, image_id=entry["id"])
        people = covered_keypoints(anns, hidden, image.shape[:2])
        expected += sum(len(p["covered"]) for p in people)
    assert expected > 0
    assert curve[1]["covered"]["count"] == expected
    assert "covered found" in result.output


def test_eval_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["eval", "--ann", str(tmp_path / "gt.json")])
    assert result.exit_code == 2
    assert "either --results or --weights" in result.output


def test_eval_runs_the_multi_scale_test_it_is_asked_for(tiny_checkpoint, tmp_path):
    from occlupose.inference import Predictor
    from occlupose.inference.dataset import predict_dataset

    weights, _ = tiny_checkpoint
    ann = generate_dataset(tmp_path / "synth", 2, seed=1, size=64, progress=False)
    images = ann.parent / "images"
    out = tmp_path / "report"
    args = ["eval", "--weights", str(weights), "--ann", str(ann), "--images", str(images)]
    args += ["--scale", "1", "--scale", "2", "--no-flip", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    found = json.loads((out / "results_occlusion0.00.json").read_text())

    predictor = Predictor.from_pretrained(weights)
    predictor.options.flip, predictor.options.scales = False, (1.0, 2.0)
    expected, _ = predict_dataset(predictor, json.loads(ann.read_text()), images)
    predictor.options.scales = (1.0,)
    single, _ = predict_dataset(predictor, json.loads(ann.read_text()), images)
    assert found == json.loads(json.dumps(expected))
    assert found != json.loads(json.dumps(single))  # the scales were used


def test_eval_rejects_a_non_positive_scale(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    ann = generate_dataset(tmp_path / "synth", 1, seed=1, size=64, progress=False)
    args = ["eval", "--weights", str(weights), "--ann", str(ann), "--images"]
    args += [str(ann.parent / "images"), "--scale", "0", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "scales must be positive" in result.output


def test_eval_completes_people_as_it_is_told(tmp_path):
    from occlupose.decode import DecodeSettings
    from occlupose.inference import Predictor, PredictorOptions
    from occlupose.inference.dataset import predict_dataset

    # The bundled model finds people in its own benchmark's scenes, some of them partly.
    weights = "hrgr_small_synthetic"
    ann = generate_dataset(tmp_path / "synth", 2, seed=3, size=256, progress=False)
    images = ann.parent / "images"
    args = ["eval", "--weights", str(weights), "--ann", str(ann), "--images", str(images)]
    result = runner.invoke(app, [*args, "--completion", "gan", "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "--completion" in result.output
    assert not (tmp_path / "bad").exists()

    found = {}
    for completion, join in (("none", True), ("learned", True), ("learned", False)):
        name = f"{completion}-{join}"
        out = tmp_path / name
        flags = ["--completion", completion] + ([] if join else ["--no-join-fragments"])
        result = runner.invoke(app, [*args, *flags, "--out", str(out)])
        assert result.exit_code == 0, result.output
        found[name] = json.loads((out / "results_occlusion0.00.json").read_text())
        options = PredictorOptions(
            completion=completion, decode=DecodeSettings(join_fragments=join)
        )
        predictor = Predictor.from_pretrained(weights, options=options)
        expected, _ = predict_dataset(predictor, json.loads(ann.read_text()), images)
        assert found[name] == json.loads(json.dumps(expected))
    assert found["none-True"] and found["none-True"] != found["learned-True"]
    # Joining the pieces of occluded people: fewer people, the same joints found.
    assert len(found["learned-True"]) < len(found["learned-False"])
