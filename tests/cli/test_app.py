"""The command line as a whole: fast help at any width, one-line errors, --debug."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from occlupose.cli import app

COMMANDS = sorted(get_command(app).commands)


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
    # Nine help pages; about 0.2 s here (torch alone: 2-8 s). Generous for loaded machines.
    assert float(seconds) < 1.5


@pytest.mark.parametrize("args", [["--help"], ["eval", "--help"]])
def test_help_answers_within_a_second_and_a_half_as_a_user_runs_it(args):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "occlupose.cli", *args], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0 and done.stdout.startswith("Usage:")
    assert seconds < 1.5, f"{args}: {seconds:.2f} s"


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
        "counting the parameters of the model presets ...",
        "error: unexpected RuntimeError: something broke (rerun with --debug or "
        "OCCLUPOSE_DEBUG=1 for the traceback, and report it)",
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


# As python runs the command line, with a marker written to stderr when torch starts
# importing: a status line before the marker was shown before the slow part.
_MARK_TORCH_IMPORT = textwrap.dedent(
    """
    import sys

    class MarkTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                print("<importing torch>", file=sys.stderr, flush=True)
                sys.meta_path.remove(self)
            return None

    sys.meta_path.insert(0, MarkTorch())
    sys.argv[0] = "occlupose"
    from occlupose.cli import main

    main()
    """
)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["info"], "counting the parameters of the model presets ..."),
        (["info", "--preset", "hrgr_small"], "building hrgr_small and running it once ..."),
        (["demo", "--size", "32", "--out", "demo"], "loading the model ..."),
        (["synth", "--out", "data", "-n", "1", "--size", "32"], "rendering 1 image ..."),
    ],
)
def test_slow_commands_say_what_they_do_before_importing_torch(tmp_path, args, says):
    done = subprocess.run(
        [sys.executable, "-c", _MARK_TORCH_IMPORT, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == says
    if args[0] in ("info", "demo"):  # they need torch; synth may not
        assert lines[1] == "<importing torch>"


def test_info_at_60_columns_shows_every_preset_name_whole():
    from occlupose.models import list_presets

    result = CliRunner(env={"COLUMNS": "60"}).invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    words = result.output.split()
    for preset in list_presets():
        assert preset.name in words
    assert "…" not in result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 60


def test_eval_help_at_60_columns_shows_every_option_and_its_text_whole():
    result = CliRunner(env={"COLUMNS": "60"}).invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    assert "…" not in result.output
    # Lines wrap (at spaces or hyphens); with the whitespace taken out, nothing is missing.
    joined = "".join(result.output.split())
    for param in get_command(app).commands["eval"].params:
        for name in param.opts + param.secondary_opts:
            assert name in result.output.split() or f"{name}," in result.output.split()
        assert "".join((param.help or "").split()) in joined
