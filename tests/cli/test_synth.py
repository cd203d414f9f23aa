"""``occlupose synth``: bad sizes refused up front, and never half a data set on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.data.synthetic import generate_dataset

runner = CliRunner(env={"COLUMNS": "80"})


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--size", "100000", "less than or equal to 4096"),
        ("--size", "0", "greater than or equal to 32"),
        ("--size", "-256", "greater than or equal to 32"),
        ("--num-images", "0", "greater than or equal to 1"),
        ("--num-images", "-3", "greater than or equal to 1"),
        ("--num-images", "10000000", "less than or equal to 1000000"),
        ("--workers", "0", "greater than or equal to 1"),
    ],
)
def test_absurd_sizes_and_counts_are_option_errors_before_any_work(tmp_path, option, value, says):
    out = tmp_path / "data"
    args = {"--num-images": "2", "--size": "64", "--workers": "1", option: value}
    command = ["synth", "--out", str(out)] + [x for kv in args.items() for x in kv]
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"'{option}'" in error and says in error
    assert "Traceback" not in result.output and "MemoryError" not in result.output
    assert list(tmp_path.iterdir()) == []  # not even the folder


def test_a_non_empty_out_is_kept_unless_overwrite_and_then_replaced_whole(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    result = runner.invoke(app, ["synth", "--out", str(out), "-n", "2", "--size", "32"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: --out: {out} exists and is not empty (remove it, choose another folder, "
        "or pass --overwrite to replace it)"
    ]
    assert _listing(out) == ["notes.txt"]

    args = ["synth", "--out", str(out), "-n", "2", "--size", "32", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _listing(out) == ["annotations.json", "images", "images/000001.png", "images/000002.png"]
    assert _listing(tmp_path) == ["data", *(f"data/{name}" for name in _listing(out))]


def test_an_empty_out_folder_is_filled(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    result = runner.invoke(app, ["synth", "--out", str(out), "-n", "1", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 1
    assert out.stat().st_mode & 0o777 != 0o700  # not the private mode of a temporary folder


@pytest.mark.parametrize("where", ["file", "inside a file"])
def test_an_out_that_is_or_is_inside_a_file_is_one_line(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    out = blocker if where == "file" else blocker / "data"
    result = runner.invoke(app, ["synth", "--out", str(out), "-n", "1", "--size", "32"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --out") and f"{blocker} is a file, not a folder" in line
    assert _listing(tmp_path) == ["taken"] and blocker.read_text() == "a file"


def test_a_failure_half_way_removes_everything_it_made(tmp_path, monkeypatch):
    import occlupose.data.synthetic.generate as generate

    real = generate.render_entry

    def disk_full_at_the_third(out_dir, seed, index, *args):
        if index == 2:
            raise OSError(28, "No space left on device")
        return real(out_dir, seed, index, *args)

    monkeypatch.setattr(generate, "render_entry", disk_full_at_the_third)
    out = tmp_path / "new" / "data"
    result = runner.invoke(app, ["synth", "--out", str(out), "-n", "5", "--size", "32"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"error: --out: cannot write the data set to {out} (no space left on device)"
    )
    assert list(tmp_path.iterdir()) == []  # neither the data set nor the folder made for it


def test_a_killed_run_leaves_nothing_and_keeps_the_old_data_set(tmp_path):
    out = tmp_path / "data"
    generate_dataset(out, 1, seed=9, size=32, progress=False)
    before = {name: (out / name).read_bytes() for name in _listing(out) if "." in name}
    command = [sys.executable, "-m", "occlupose.cli", "synth", "--out", str(out)]
    command += ["-n", "100000", "--size", "32", "--overwrite"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(tmp_path.glob(".data.partial-*/images/*.png")):  # rendering has begun
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no partial folder
    assert {name: (out / name).read_bytes() for name in before} == before
    assert _listing(out) == ["annotations.json", "images", "images/000001.png"]
