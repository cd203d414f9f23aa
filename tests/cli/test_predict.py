"""``occlupose predict`` and ``occlupose export`` on a tiny checkpoint."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from occlupose.cli import app

runner = CliRunner(env={"COLUMNS": "240"})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "000000000785.jpg"), rng.integers(0, 255, (70, 90, 3), np.uint8))
    cv2.imwrite(str(folder / "gray.png"), rng.integers(0, 255, (64, 48), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    video = folder / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(3):
        writer.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
    writer.release()
    return folder


def test_predict_folder_and_video(tiny_checkpoint, inputs, tmp_path):
    path, _ = tiny_checkpoint
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(inputs), "--weights", str(path), "--out", str(out), "--min-score", "0"]
    )
    # Two images and the video processed; the broken JPEG failed (exit status 1), and the
    # text file is no image or video by its name: ignored, and said so.
    assert result.exit_code == 1, result.output
    assert (out / "000000000785_pose.jpg").is_file() and (out / "gray_pose.jpg").is_file()
    assert (out / "clip_pose.mp4").is_file()
    assert "processed 3 of 4 inputs" in result.output
    assert "1 input failed:" in result.output and "broken.jpg: not a decodable" in result.output
    assert "ignored 1 file in the input folders" in result.output and "notes.txt" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".results.json.lock", "000000000785_pose.jpg", "clip_pose.mp4", "gray_pose.jpg",
        "results.json",
    ]  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in results} <= {"000000000785.jpg", "gray.png", "clip.avi"}
    for r in results:
        assert len(r["keypoints"]) == 17 * 3 and 0 <= r["score"] <= 1
        if r["file_name"] == "000000000785.jpg":
            assert r["image_id"] == 785  # COCO file names give the image id
    overlay = cv2.imread(str(out / "000000000785_pose.jpg"))
    assert overlay.shape == (70, 90, 3)


def test_video_frames_in_batches_give_the_same_people(tiny_checkpoint, inputs, tmp_path):
    path, _ = tiny_checkpoint
    video = str(inputs / "clip.avi")
    found = {}
    for batch in (1, 2):  # 3 frames: batches of 2 and 1
        out = tmp_path / f"batch{batch}"
        args = ["predict", video, "--weights", str(path), "--out", str(out), "--min-score", "0"]
        args += ["--detection-threshold", "0", "--batch-size", str(batch)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert (out / "clip_pose.mp4").is_file()
        found[batch] = json.loads((out / "results.json").read_text())
    assert {r["frame"] for r in found[1]} == {0, 1, 2}
    assert [(r["frame"], len(r["keypoints"])) for r in found[2]] == [
        (r["frame"], len(r["keypoints"])) for r in found[1]
    ]
    for a, b in zip(found[2], found[1], strict=True):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-2)


def test_predict_reports_missing_inputs(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "nope.jpg"), "--weights", str(path), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "processed 0 of 1 input\n" in result.output
    assert f"{tmp_path / 'nope.jpg'}: does not exist" in result.output
    assert not out.exists()


def test_predict_rejects_a_non_positive_scale(tiny_checkpoint, inputs, tmp_path):
    path, _ = tiny_checkpoint
    image = str(inputs / "000000000785.jpg")
    args = ["predict", image, "--weights", str(path), "--scale", "-1", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "scales must be positive" in result.output


def test_export_onnx_matches_pytorch(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    path, _ = tiny_checkpoint
    onnx_path = tmp_path / "tiny.onnx"
    result = runner.invoke(app, ["export", "--weights", str(path), "--out", str(onnx_path)])
    assert result.exit_code == 0, result.output
    assert onnx_path.is_file()
    assert "heatmaps_stride4" in result.output and "limbs_stride4" in result.output
    error = float(result.output.split("max abs difference")[1].split()[0])
    assert error < 1e-4


def test_export_slim_checkpoint_round_trips(tiny_checkpoint, tmp_path):
    path, model = tiny_checkpoint
    slim = tmp_path / "slim.pt"
    result = runner.invoke(
        app, ["export", "--weights", str(path), "--format", "pt", "--half", "--out", str(slim)]
    )
    assert result.exit_code == 0, result.output
    from occlupose.inference import Predictor

    predictor = Predictor.from_pretrained(slim)
    assert predictor.options.input_size == 64
    weight = predictor.model.conv1.weight
    assert weight.dtype.is_floating_point and weight.dtype.itemsize == 4
    torch.testing.assert_close(weight, model.conv1.weight, atol=1e-3, rtol=1e-3)


def test_without_weights_and_without_a_bundled_model_the_error_is_clear(monkeypatch, tmp_path):
    from occlupose.inference import pretrained

    monkeypatch.setattr(pretrained, "BUNDLED_WEIGHTS", {})
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    result = runner.invoke(app, ["predict", str(image)])
    assert result.exit_code == 2
    assert "no default model is bundled" in result.output


def test_export_keeps_the_pose_prior_and_predict_can_leave_it_out(
    tiny_checkpoint, tiny_widths, tmp_path
):
    from occlupose.cli.predict import load_predictor
    from occlupose.data.synthetic.template import standing_person
    from occlupose.decode import PosePrior
    from occlupose.inference import Predictor, save_pretrained

    _, model = tiny_checkpoint
    prior = PosePrior(np.stack([standing_person(0, 0, 1.0)[:, :2]] * 2))
    path = save_pretrained(
        model, tmp_path / "prior.pt", preset="hrgr_small", keypoint_set="coco",
        model_kwargs=tiny_widths, input_size=64, pose_prior=prior,
    )  # fmt: skip
    slim = tmp_path / "slim.pt"
    result = runner.invoke(
        app, ["export", "--weights", str(path), "--format", "pt", "--half", "--out", str(slim)]
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        Predictor.from_pretrained(slim).pose_prior.poses, prior.poses, atol=1e-6
    )
    assert load_predictor(str(slim)).pose_prior is not None
    assert load_predictor(str(slim), use_pose_prior=False).pose_prior is None


def test_official_decoding_of_a_limb_model_is_refused_by_name(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(image), "--decoding", "official", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "--decoding" in result.output and "limb-field head" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["predict", str(image), "--decoding", "fastest"])
    assert result.exit_code == 2 and "must be auto, official or occlupose" in result.output


def test_export_records_the_decoding(tiny_checkpoint, tmp_path):
    from occlupose.models import read_checkpoint

    path, _ = tiny_checkpoint
    slim = tmp_path / "slim.pt"
    result = runner.invoke(
        app, ["export", "--weights", str(path), "--format", "pt", "--out", str(slim)]
    )
    assert result.exit_code == 0, result.output
    assert read_checkpoint(slim).metadata["decoding"] == "occlupose"


def test_completion_option_is_checked_and_named(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    result = runner.invoke(app, ["predict", str(image), "--completion", "gan"])
    assert result.exit_code == 2 and "must be auto, none, prior or learned" in result.output
    # The bundled model stores a pose prior, so prior works; none turns completion off.
    from occlupose.cli.predict import load_predictor
    from occlupose.decode import PoseCompleter, PosePrior

    assert isinstance(load_predictor(None, completion="prior").completer, PosePrior)
    assert isinstance(load_predictor(None).completer, PoseCompleter)
    assert load_predictor(None, completion="none").completer is None
    result = runner.invoke(app, ["predict", str(image), "--no-pose-prior", "--completion", "prior"])
    assert result.exit_code == 2 and "--completion" in result.output


def test_default_thresholds_drop_weak_people_but_min_score_0_and_eval_keep_them(tmp_path):
    from occlupose.cli.predict import DEFAULT_MIN_SCORE
    from occlupose.data.synthetic import generate_dataset

    ann = generate_dataset(tmp_path / "synth", 1, seed=1, size=128, progress=False)
    image = str(ann.parent / "images" / "000001.png")
    scores = {}
    for name, extra in (("default", []), ("all", ["--min-score", "0"])):
        out = tmp_path / name
        result = runner.invoke(app, ["predict", image, "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        scores[name] = [r["score"] for r in json.loads((out / "results.json").read_text())]
    assert all(score >= DEFAULT_MIN_SCORE for score in scores["default"])
    assert min(scores["all"]) < DEFAULT_MIN_SCORE  # the bundled model's many weak people
    assert len(scores["all"]) > len(scores["default"])
    # eval ranks every person for AP: the default threshold does not apply to it.
    out = tmp_path / "eval"
    args = ["eval", "--weights", "hrgr_small_synthetic", "--ann", str(ann), "--images"]
    result = runner.invoke(app, [*args, str(ann.parent / "images"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((out / "results_occlusion0.00.json").read_text())
    assert sorted(r["score"] for r in evaluated) == sorted(scores["all"])


def test_predict_help_says_where_the_default_thresholds_come_from():
    from occlupose.cli.predict import DEFAULT_DRAW_THRESHOLD, DEFAULT_MIN_SCORE

    text = " ".join(runner.invoke(app, ["predict", "--help"]).output.split())
    assert text.count("chosen for F1 on held-out synthetic data") == 2
    assert f"[default: {DEFAULT_MIN_SCORE}]" in text
    assert f"[default: {DEFAULT_DRAW_THRESHOLD}]" in text
