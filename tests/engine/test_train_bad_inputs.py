"""``occlupose train`` with bad input, as a user meets it: values out of range, an output
folder that cannot be written, checkpoints that cannot be resumed from, a corrupt
training image, and the temporaries of killed runs. Each case: the command line, its
exit status, its one-line message, and what is on disk afterwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

# Imported here, not first inside a CliRunner call: Lightning's log handler keeps the
# stderr of its first import, and a CliRunner's stream is closed after the call.
import lightning  # noqa: F401
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.engine.config import config_to_dict

runner = CliRunner(env={"COLUMNS": "80"})
STATUS = "reading the data and building the model ..."


def _write_recipe(path: Path, config) -> Path:
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    return path


def _error_line(output: str) -> str:
    """The output's last line, which must be the only ``error:`` line."""
    lines = output.strip().splitlines()
    assert sum(line.startswith("error:") for line in lines) == 1, output
    assert "Traceback" not in output, output
    return lines[-1]


@pytest.fixture(scope="module")
def recipe(tiny_config, synthetic_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("recipe")
    return _write_recipe(folder / "tiny.yaml", tiny_config(synthetic_data, "trainer.max_epochs=1"))


@pytest.fixture(scope="module")
def trained_run(recipe, tmp_path_factory) -> Path:
    """A run folder after one epoch (3 steps) of the tiny recipe."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------- recipe values
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["data.batch_size=0"], "data.batch_size: must be >= 1, got 0"),
        (["trainer.max_epochs=-3"], "trainer.max_epochs: must be >= 1, got -3"),
        (["--devices", "0"], "trainer.devices: must be >= 1, or -1 for all GPUs, got 0"),
        (["--workers", "1", "data.num_workers=-2"], "data.num_workers: must be >= 0, got -2"),
        (["optimizer.lr=-1e-3"], "optimizer.lr: must be > 0, got -0.001"),
        (["trainer.precision=half"], "trainer.precision: must be 32-true, 16-mixed"),
    ],
)
def test_a_value_out_of_range_is_one_line_naming_the_option(recipe, tmp_path, arguments, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out), *arguments])
    assert result.exit_code == 2, result.output
    assert _error_line(result.output).startswith(f"error: {recipe}: {message}")
    assert result.output.strip().splitlines() == [_error_line(result.output)]  # nothing else
    assert not out.exists()


# ------------------------------------------------------------------ output folder
def test_an_out_that_is_a_file_stops_before_any_work(recipe, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    for out in (blocker, blocker / "run"):
        result = runner.invoke(app, ["train", str(recipe), "--out", str(out)])
        assert result.exit_code == 1, result.output
        line = _error_line(result.output)
        assert line.startswith("error: --out") and f"{blocker} is a file, not a folder" in line
        assert result.output.strip().splitlines() == [line]  # stopped before the status line
    assert blocker.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_an_unwritable_out_stops_before_any_work(recipe, read_only_folder):
    out = read_only_folder / "occlupose-run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out)])
    assert result.exit_code == 1, result.output
    line = _error_line(result.output)
    assert line.startswith(f"error: --out: cannot write to {out} (")
    assert result.output.strip().splitlines() == [line]
    assert not out.exists()


# ------------------------------------------------------------------ resume checkpoints
class _Pickled:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.fixture(scope="module")
def bad_checkpoints(trained_run, tiny_checkpoint, tmp_path_factory) -> dict[str, tuple]:
    """kind -> (file, what the message says, overrides)."""
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    last = trained_run / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    (folder / "garbage.ckpt").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    contents = torch.load(last, weights_only=False)
    torch.save({**contents, "extra": [_Pickled()]}, folder / "pickle.ckpt")
    weights_only, _ = tiny_checkpoint  # save_pretrained's format: weights, no training state
    return {
        "garbage": (folder / "garbage.ckpt", ": not a PyTorch checkpoint (neither the zip", []),
        "truncated": (folder / "truncated.ckpt", ": truncated or corrupt PyTorch checkpoint", []),
        "pickle": (folder / "pickle.ckpt", ": refusing to load, the file needs to run pickled", []),
        "weights only": (
            weights_only,
            f": not a checkpoint of occlupose train (it has no optimiser and loop state to "
            f"resume); to start a new run from its weights, use model.init_weights={weights_only}",
            [],
        ),
        "other preset": (
            last,
            ": a checkpoint of preset hrgr_small, but the recipe trains hrgr_w32_512 "
            "(model.preset)",
            ["model.preset=hrgr_w32_512"],
        ),
        "other model": (
            last,
            " does not fit the recipe's model: model.limb_head.",
            ["model.overrides.num_limbs=0", "loss.limb=0"],
        ),
    }


@pytest.mark.parametrize(
    "kind", ["garbage", "truncated", "pickle", "weights only", "other preset", "other model"]
)
def test_a_checkpoint_that_cannot_be_resumed_is_one_line_naming_it(
    recipe, bad_checkpoints, tmp_path, kind
):
    checkpoint, says, overrides = bad_checkpoints[kind]
    out = tmp_path / "run"
    arguments = ["train", str(recipe), "--out", str(out), "--resume-from", str(checkpoint)]
    result = runner.invoke(app, [*arguments, *overrides])
    assert result.exit_code == 1, result.output
    line = _error_line(result.output)
    assert line.startswith(f"error: {checkpoint}{says}"), line
    assert "this ran" not in result.output
    assert not out.exists()


def test_resume_from_a_damaged_last_checkpoint_leaves_the_run_as_it_was(
    recipe, trained_run, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # a copy interrupted half-way
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out), "--resume"])
    assert result.exit_code == 1, result.output
    assert _error_line(result.output).startswith(
        f"error: {last}: truncated or corrupt PyTorch checkpoint"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------ training images
@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_training_image_is_one_line_naming_it(
    tiny_config, synthetic_data, tmp_path, workers
):
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    images = sorted((data / "train" / "images").iterdir())
    for image in images:  # truncated, as by an interrupted copy: the first read fails
        image.write_bytes(image.read_bytes()[:200])
    recipe = _write_recipe(tmp_path / "tiny.yaml", tiny_config(data, "trainer.max_epochs=1"))
    out = tmp_path / "run"
    # In a process of its own, as a user runs it: a data-loader worker forked from the
    # test process, which has used OpenCV's threads, can hang in OpenCV.
    command = ["train", str(recipe), "--out", str(out), "--workers", str(workers)]
    done = subprocess.run(
        [sys.executable, "-m", "occlupose.cli", *command], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    line = _error_line(done.stdout + done.stderr)
    assert line.startswith(f"error: cannot read image {data / 'train' / 'images'}/"), line
    named = Path(line.split("cannot read image ", 1)[1].split(": ", 1)[0])
    assert named in images
    assert line.endswith("not a decodable image (corrupt or unsupported format; 200 bytes)")
    assert not out.exists()  # it failed before a step: the folder it made is gone


# ------------------------------------------------------------------ stale temporaries
STALE = ["checkpoints/.last.ckpt.k2j4h1x0.tmp", "checkpoints/.best.ckpt.a8d7_0q1.tmp"]
STALE_SLURM = [".hpc_ckpt_3.ckpt.zz81mw0p.tmp"]
LOOK_ALIKES = [
    "checkpoints/.config.yaml.k2j4h1x0.tmp",  # another file's temporary
    "checkpoints/last.ckpt.tmp",  # not of the pattern: no leading dot
    "checkpoints/.last.ckpt.tmp.keep",
    ".last.ckpt.k2j4h1x0.tmp",  # the pattern, outside the checkpoint folder
    "validation/.best.ckpt.k2j4h1x0.tmp",
]


def _plant(out: Path, names: list[str]) -> None:
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half a checkpoint")


@pytest.mark.parametrize("start", ["fresh", "resume"])
def test_stale_checkpoint_temporaries_are_removed_and_counted(recipe, trained_run, tmp_path, start):
    out = tmp_path / "run"
    if start == "resume":
        shutil.copytree(trained_run, out)
    _plant(out, STALE + STALE_SLURM + LOOK_ALIKES)
    arguments = ["train", str(recipe), "--out", str(out), "trainer.max_epochs=2"]
    result = runner.invoke(app, arguments + (["--resume"] if start == "resume" else []))
    assert result.exit_code == 0, result.output
    assert (
        f"removed 3 stale checkpoint temporary file(s) left by a killed run in {out}"
        in " ".join(result.output.split())
    )
    assert not any((out / name).exists() for name in STALE + STALE_SLURM)
    assert all((out / name).read_bytes() == b"half a checkpoint" for name in LOOK_ALIKES)
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["occlupose"]["pose_steps"] == 6  # trained: 3 + 3 steps or 2 x 3 from scratch


# ------------------------------------------------------------------ status line
def test_a_status_line_comes_within_a_second(recipe, tmp_path):
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "occlupose.cli", "train", str(recipe), "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stderr.readline().strip()
        elapsed = time.perf_counter() - started
    finally:
        process.kill()
        process.wait()
    assert first_line == STATUS
    # Importing torch and Lightning alone takes several seconds; the line comes first.
    assert elapsed < 1.0, f"the status line came after {elapsed:.2f} s"
