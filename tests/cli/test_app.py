"""The command line as a whole: fast help at any width, one-line errors, --debug."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from occlupose.cli import app

COMMANDS = ["predict", "demo", "eval", "export", "info", "synth", "train"]


def test_help_pages_do_not_import_torch_and_answer_quickly():
    # As `occlupose --help` runs: a fresh interpreter. torch alone takes seconds to import.
    script = textwrap.dedent(
        f"""
        import sys, time
        from typer.testing import CliRunner
        start = time.perf_counter()
        from occlupose.cli import app
        runner = CliRunner()
        for args in [["--help"]] + [[c, "--help"] for c in {COMMANDS!r}]:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
        heavy = [m for m in ("torch", "cv2", "pycocotools", "lightning") if m in sys.modules]
        print(heavy, time.perf_counter() - start)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    heavy, seconds = done.stdout.rsplit("]", 1)
    assert heavy == "[", f"--help imported {heavy}]"
    # Eight help pages; about 0.2 s here (torch alone: 2-8 s). Generous for loaded machines.
    assert float(seconds) < 1.5


@pytest.mark.parametrize("width", ["40", "80", "200"])
def test_help_wraps_instead_of_cutting(width):
    runner = CliRunner(env={"COLUMNS": width})
    result = runner.invoke(app, ["predict", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in ("--detection-threshold", "--draw-threshold", "--pose-prior / --no-pose-prior"):
        assert name in result.output
    assert "higherhrnet_w32_512" in text and "…" not in result.output
    assert "<bool>" not in result.output  # flags have no value type
    assert "Exit status" in text and "1 when any input failed" in text
    top = runner.invoke(app, ["--help"])
    commands = top.output.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands  # command summaries whole
    assert "occluded scene and show what it finds" in " ".join(top.output.split())


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch):
    import occlupose.models

    def broken(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(occlupose.models, "list_presets", broken)
    runner = CliRunner()
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: unexpected RuntimeError: something broke (rerun with --debug or "
        "OCCLUPOSE_DEBUG=1 for the traceback, and report it)"
    ]
    for args, env in ((["--debug", "info"], {}), (["info"], {"OCCLUPOSE_DEBUG": "1"})):
        result = runner.invoke(app, args, env=env)
        assert isinstance(result.exception, RuntimeError)
        assert "something broke" in str(result.exception)


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "occlupose.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Commands:" in done.stdout
