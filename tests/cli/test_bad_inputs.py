"""Bad input as a user meets it: bad checkpoints, unwritable outputs, missing and empty
inputs, huge images. Each case: the command line, its exit status, its one-line message,
and what is on disk afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.data.synthetic import generate_dataset
from occlupose.inference import save_pretrained

runner = CliRunner(env={"COLUMNS": "80"})
ROOT = Path(__file__).resolve().parents[2]


class _Pickled:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory, tiny_checkpoint):
    """name -> (file, what the message says)."""
    folder = tmp_path_factory.mktemp("bad_weights")
    good, model = tiny_checkpoint
    data = good.read_bytes()
    (folder / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": model.state_dict(), "extra": [_Pickled()]}, folder / "pickle.pt")
    # Says it is an hrgr_w32_512 but holds the tiny network's weights.
    save_pretrained(model, folder / "other.pt", preset="hrgr_w32_512", keypoint_set="coco")
    return {
        "garbage": (folder / "garbage.pt", "not a PyTorch checkpoint (neither the zip format"),
        "truncated": (folder / "truncated.pt", "truncated or corrupt PyTorch checkpoint"),
        "pickle": (folder / "pickle.pt", "refusing to load, the file needs to run pickled code"),
        "other preset": (folder / "other.pt", "does not fit this model"),
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(
        tmp_path_factory.mktemp("synth") / "d", 2, seed=3, size=64, progress=False
    )


def _commands(weights: Path, out: Path, dataset: Path) -> dict[str, list[str]]:
    image = str(dataset.parent / "images" / "000001.png")
    return {
        "predict": ["predict", image, "--weights", str(weights), "--out", str(out)],
        "demo": ["demo", "--weights", str(weights), "--out", str(out), "--size", "64"],
        "export": ["export", "--weights", str(weights), "--out", str(out / "m.onnx")],
        "eval": ["eval", "--weights", str(weights), "--ann", str(dataset), "--images"]
        + [str(dataset.parent / "images"), "--out", str(out)],
        "synth": ["synth", "--out", str(out), "-n", "1", "--size", "32"],
        "occlude": ["occlude", "--ann", str(dataset), "--images", str(dataset.parent / "images")]
        + ["--out", str(out), "--rates", "0.2"],
    }


@pytest.mark.parametrize("kind", ["garbage", "truncated", "pickle", "other preset"])
@pytest.mark.parametrize("command", ["predict", "demo", "export", "eval"])
def test_a_bad_checkpoint_is_one_line_naming_the_file(
    bad_checkpoints, dataset, tmp_path, command, kind
):
    weights, says = bad_checkpoints[kind]
    out = tmp_path / "out"
    result = runner.invoke(app, _commands(weights, out, dataset)[command])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"error: {weights}") and says in lines[-1], result.output
    assert "Traceback" not in result.output and "this ran" not in result.output
    assert not out.exists()  # nothing written, not even the folder


@pytest.mark.parametrize("command", ["predict", "demo", "export", "eval", "synth", "occlude"])
def test_an_out_that_is_a_file_stops_before_any_work(tiny_checkpoint, dataset, tmp_path, command):
    weights, _ = tiny_checkpoint
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    out = blocker / "sub" if command == "export" else blocker
    result = runner.invoke(app, _commands(weights, out, dataset)[command])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --out") and f"{blocker} is a file, not a folder" in line
    assert blocker.read_text() == "a file"


@pytest.mark.parametrize("command", ["predict", "demo", "export", "eval", "synth", "occlude"])
def test_a_read_only_out_stops_before_any_work(tiny_checkpoint, dataset, read_only_folder, command):
    weights, _ = tiny_checkpoint
    out = read_only_folder
    result = runner.invoke(app, _commands(weights, out, dataset)[command])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --out") and "permission denied" in line
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_missing_and_good_inputs_are_all_counted(tiny_checkpoint, dataset, tmp_path):
    weights, _ = tiny_checkpoint
    good = dataset.parent / "images" / "000001.png"
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "missing.jpg"), str(good), "-w", str(weights)]
    result = runner.invoke(app, [*args, "--out", str(out), "--min-score", "0"])
    assert result.exit_code == 1  # an input failed
    assert "processed 1 of 2 inputs" in result.output
    assert "1 input failed:" in result.output and "missing.jpg: does not exist" in result.output
    assert (out / "000001_pose.jpg").is_file()
    assert {r["file_name"] for r in json.loads((out / "results.json").read_text())} <= {
        "000001.png"
    }


def test_an_empty_folder_says_so(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(empty), "-w", str(weights), "--out", str(out)])
    assert result.exit_code == 1
    assert "processed 0 of 1 input\n" in result.output
    assert f"{empty}: folder has no image or video files" in result.output
    assert not out.exists()


def test_the_synthetic_only_note_needs_an_image_read(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(bad), "--out", str(out)])  # bundled model
    assert result.exit_code == 1
    assert "synthetic scenes only" not in result.output
    assert "processed 0 of 1 input" in result.output and "not a decodable image" in result.output
    assert not (out / "results.json").exists()


def test_a_huge_image_is_refused_and_max_pixels_allows_it(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    image = tmp_path / "wide.png"
    cv2.imwrite(str(image), np.zeros((40, 60, 3), np.uint8))
    out = tmp_path / "out"
    args = ["predict", str(image), "-w", str(weights), "--out", str(out)]
    result = runner.invoke(app, [*args, "--max-pixels", "1000"])
    assert result.exit_code == 1
    assert "2,400 pixels, more than the limit of 1,000 (--max-pixels" in result.output
    assert not (out / "wide_pose.jpg").exists()
    result = runner.invoke(app, [*args, "--max-pixels", "2400"])
    assert result.exit_code == 0, result.output
    assert (out / "wide_pose.jpg").is_file()


def test_an_overlay_that_cannot_be_written_fails_that_input(
    tiny_checkpoint, dataset, tmp_path, monkeypatch
):
    from occlupose.utils import io

    weights, _ = tiny_checkpoint
    images = dataset.parent / "images"
    real = io.atomic_write_bytes

    def full_disk_for_the_first(path, data):
        if "000001" in str(path):
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(io, "atomic_write_bytes", full_disk_for_the_first)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(images), "-w", str(weights), "--out", str(out), "--min-score", "0"]
    )
    assert result.exit_code == 1
    assert "processed 1 of 2 inputs" in result.output
    assert "000001.png: cannot write its overlay" in result.output
    assert "no space left on device" in result.output.lower()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "000002_pose.jpg",
        "results.json",
    ]


def test_concurrent_runs_into_one_folder_keep_every_result(tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    names = [f"img{i}.png" for i in range(10)]
    for name in names:
        cv2.imwrite(str(inputs / name), rng.integers(0, 255, (48, 64, 3), np.uint8))
    out = tmp_path / "out"
    groups = [names[0:3], names[3:6], names[6:8], names[8:10]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "occlupose.cli", "predict"]
            + [str(inputs / n) for n in group]
            + ["-w", str(weights), "--out", str(out), "--min-score", "0", "--no-flip"]
            + ["--detection-threshold", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for group in groups
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    results = json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in results} == set(names)  # every run's images
    ids = {r["file_name"]: r["image_id"] for r in results}
    assert len(set(ids.values())) == 10  # one id per image, across the runs
    assert all(f"{Path(n).stem}_pose.jpg" in os.listdir(out) for n in names)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


@pytest.mark.parametrize(
    ("case", "exit_code", "says"),
    [
        ("info with unknown keypoints", 2, "Invalid value for --keypoints: unknown keypoint set"),
        ("export to an unknown format", 2, "Invalid value for --format: unsupported format"),
        ("export missing weights", 2, "Invalid value for --weights: no checkpoint file at"),
        ("occlude missing images", 2, "Invalid value for --images: {missing} does not exist"),
        ("occlude images that are a file", 2, "Invalid value for --images: {file} is a file"),
        ("occlude missing annotations", 1, "error: {missing}: file not found"),
        ("eval annotations that are a folder", 1, "error: {folder}: is a folder, not a JSON"),
    ],
)
def test_first_mistakes_are_one_line_naming_the_option_or_file(
    dataset, tmp_path, case, exit_code, says
):
    missing, folder, file = tmp_path / "missing", tmp_path / "folder", tmp_path / "file.txt"
    folder.mkdir()
    file.write_text("text")
    out = tmp_path / "out"
    images = str(dataset.parent / "images")
    args = {
        "info with unknown keypoints": ["info", "--keypoints", "nope"],
        "export to an unknown format": ["export", "--format", "tflite", "--out", str(out)],
        "export missing weights": ["export", "--weights", str(missing), "--out", str(out)],
        "occlude missing images": ["occlude", "--ann", str(dataset), "--images", str(missing)],
        "occlude images that are a file": ["occlude", "--ann", str(dataset), "--images", str(file)],
        "occlude missing annotations": ["occlude", "--ann", str(missing), "--images", images],
        "eval annotations that are a folder": ["eval", "--ann", str(folder), "--results"]
        + [str(dataset), "--out", str(out)],
    }[case]
    if args[0] == "occlude":
        args += ["--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == exit_code, result.output
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert says.format(missing=missing, folder=folder, file=file) in errors[0], errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder"]  # no output
