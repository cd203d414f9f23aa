"""How soon each ``occlupose`` command answers: ``--help`` time, and time to first output.

Usage::

    python benchmarks/cli_startup.py --repeats 3

Each command runs in a fresh process, as a user starts it, with its output piped (not a
terminal). Two numbers per command, the median over ``--repeats`` runs:

* ``--help``: wall time of ``occlupose CMD --help`` (issue 19's target: under 1.5 s);
* first output: seconds from the start of a real run to its first byte on stderr or
  stdout (the status line; target: under 1 s for every command that works longer than
  2 s), and the run's total time.

The real runs use small inputs made in a temporary folder (3 synthetic images at 64 px)
and the bundled model.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

COMMANDS = ("info", "demo", "synth", "occlude", "export", "predict", "eval", "train")


def occlupose(*args: str) -> list[str]:
    return [sys.executable, "-m", "occlupose.cli", *args]


def time_to_first_output(command: list[str]) -> tuple[float, float]:
    """Seconds to the first byte on stdout or stderr, and to the end of the run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = None
    streams = [process.stdout, process.stderr]
    while streams:
        ready, _, _ = select.select(streams, [], [])
        for stream in ready:
            if os.read(stream.fileno(), 65536):
                first = first if first is not None else time.perf_counter() - start
            else:
                streams.remove(stream)
    process.wait()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {process.returncode}")
    return first if first is not None else float("nan"), time.perf_counter() - start


def real_runs(folder: Path) -> dict[str, list[str]]:
    """A small real run of each command, in ``folder``."""
    data = folder / "data"
    subprocess.run(
        occlupose("synth", "--out", str(data), "-n", "3", "--size", "64"),
        check=True,
        capture_output=True,
    )
    ann, images = str(data / "annotations.json"), str(data / "images")
    recipe = folder / "tiny.yaml"
    recipe.write_text(
        (Path(__file__).resolve().parents[1] / "configs" / "hrgr_small_synthetic.yaml")
        .read_text()
        .replace("data/synthetic/train/annotations.json", ann)
        .replace("data/synthetic/val/annotations.json", ann)
        .replace("data/synthetic/train/images", images)
        .replace("data/synthetic/val/images", images)
    )
    runs = {
        "info": occlupose("info"),
        "demo": occlupose("demo", "--size", "64", "--out", "{out}"),
        "synth": occlupose("synth", "--out", "{out}", "-n", "3", "--size", "64"),
        "occlude": occlupose("occlude", "--ann", ann, "--images", images, "--rates", "0.2")
        + ["--out", "{out}"],
        "export": occlupose("export", "--out", "{out}/model.onnx", "--no-check"),
        "predict": occlupose("predict", images, "--out", "{out}"),
        "eval": occlupose("eval", "--weights", "hrgr_small_synthetic", "--ann", ann)
        + ["--images", images, "--out", "{out}"],
        # One step of the bundled recipe on the three images.
        "train": occlupose("train", str(recipe), "--out", "{out}", "trainer.max_epochs=1")
        + ["data.batch_size=3", "trainer.progress_bar=false", "trainer.logger=none"]
        + ["trainer.check_val_every_n_epoch=0", "data.num_workers=0"],
    }
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=COMMANDS)
    args = parser.parse_args()
    table = Table(title=f"occlupose commands, output piped, median of {args.repeats} runs")
    for column in ("command", "--help (s)", "first output (s)", "whole run (s)"):
        table.add_column(column, justify="left" if column == "command" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        runs = real_runs(Path(tmp))
        help_times = {"(none)": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(occlupose("--help"), check=True, capture_output=True)
            help_times["(none)"].append(time.perf_counter() - start)
        table.add_row("occlupose", f"{statistics.median(help_times['(none)']):.2f}", "-", "-")
        for name in args.commands:
            helps, firsts, totals = [], [], []
            for repeat in range(args.repeats):
                start = time.perf_counter()
                subprocess.run(occlupose(name, "--help"), check=True, capture_output=True)
                helps.append(time.perf_counter() - start)
                out = str(Path(tmp) / f"{name}_{repeat}")
                command = [part.replace("{out}", out) for part in runs[name]]
                first, total = time_to_first_output(command)
                firsts.append(first)
                totals.append(total)
            table.add_row(
                name,
                f"{statistics.median(helps):.2f}",
                f"{statistics.median(firsts):.2f}",
                f"{statistics.median(totals):.1f}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
