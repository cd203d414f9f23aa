"""``hrgr_small`` trained with and without its generation-recovery module, at equal CPU budget.

Usage::

    python benchmarks/completion_training.py --minutes 12                 # two seeds
    python benchmarks/completion_training.py --minutes 0.3 --train-images 40 --val-images 8

The question (issue 21, item 4): does the network's generation-recovery stage (the heatmap
generator that completes occluded joints, trained against the pose discriminator) earn its
cost, and does the learned pose completer of the Predictor lift people who are more than
40 % occluded? Two variants of ``configs/hrgr_small_synthetic.yaml`` are trained on the
synthetic benchmark (``benchmarks/train_synthetic.py``'s data: 2,000 images of seed 0, 200
held-out images of seed 1, 256 px, mixed occlusion):

* ``with module``: the recipe as it is (generator + completion loss + adversarial term;
  the first stage learns the visible joints, the generator the complete maps);
* ``without module``: ``model.overrides.completion=false``, no completion loss, no
  adversarial term; the network then learns every labelled joint directly.

Equal CPU budget on a noisy machine: the two variants of a seed train *at the same time*,
one thread each, for the same wall-clock minutes, so whatever else loads the machine loads
both alike; the table reports the steps each got. Every final model is then run through
the Predictor (flip test) on the held-out images with completion ``none``, ``prior`` (the
run's pose prior) and ``learned`` (the bundled pose completer): AP, AP per annotated
occlusion bin, and the share of hidden joints of matched people within keypoint
similarity 0.5. Writes ``OUT/results.json`` (atomically) and prints the table.

On a GPU machine (``--device cuda``) the pairs share the GPU the same way, in bfloat16
mixed precision; the data is rendered on its CPUs (``--workers``)::

    python benchmarks/completion_training.py --device cuda --minutes 3 --workers 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from train_synthetic import ensure_split

from occlupose.engine.config import load_config
from occlupose.evaluation import evaluate_results
from occlupose.evaluation.inputs import load_json
from occlupose.inference import Predictor, PredictorOptions
from occlupose.inference.dataset import predict_dataset
from occlupose.utils.io import atomic_write_json

from budgeted_training import budget_run_overrides, mean_spread, train_with_budget

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "hrgr_small_synthetic.yaml"
VARIANTS: dict[str, tuple[str, ...]] = {
    "with module": (),
    "without module": (
        "model.overrides.completion=false",
        "loss.completion=0.0",
        "adversarial.weight=0.0",
    ),
}
COMPLETIONS = ("none", "prior", "learned")
MOST_OCCLUDED = "(0.4, 1]"


def run_dir(args: argparse.Namespace, variant: str, seed: int) -> Path:
    return args.out / f"{variant.replace(' ', '_')}_seed{seed}"


def train_one(args: argparse.Namespace, variant: str, seed: int) -> None:
    """Train one variant in this process (one thread) and write its ``run.json``."""
    torch.set_num_threads(1)
    on_gpu = args.device.startswith("cuda")
    overrides = [
        *budget_run_overrides(args.data_dir, args.size, seed, fast=args.fast and not on_gpu),
        *(["trainer.precision=bf16-mixed"] if on_gpu else []),
        *VARIANTS[variant],
    ]
    config = load_config(RECIPE, overrides)
    folder = run_dir(args, variant, seed)
    run = train_with_budget(config, folder, args.minutes, accelerator="gpu" if on_gpu else "cpu")
    summary = {
        "variant": variant,
        "seed": seed,
        "steps": run.steps,
        "images_seen": run.images_seen,
        "seconds": run.seconds,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "precision": config.trainer.precision,
        "minutes": args.minutes,
        "weights": str(run.weights),
    }
    atomic_write_json(folder / "run.json", summary, indent=1)


def train_pair(args: argparse.Namespace, seed: int) -> None:
    """Both variants of ``seed`` side by side, each in its own one-thread process.

    A seed whose two runs finished earlier (both ``run.json`` written, same minutes) is
    not trained again, so seeds can be added to a finished benchmark."""
    finished = [run_dir(args, variant, seed) / "run.json" for variant in VARIANTS]
    if all(path.is_file() for path in finished) and all(
        json.loads(path.read_text()).get("minutes") == args.minutes for path in finished
    ):
        return
    processes = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--train-one", variant, "--seed", str(seed)]
        command += [
            "--data-dir",
            str(args.data_dir),
            "--out",
            str(args.out),
            "--minutes",
            str(args.minutes),
            "--size",
            str(args.size),
            "--device",
            args.device,
        ]
        if not args.fast:
            command.append("--no-fast")
        environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        processes.append((variant, subprocess.Popen(command, env=environment)))
    for variant, process in processes:
        if process.wait() != 0:
            raise SystemExit(f"training {variant!r}, seed {seed}: exit {process.returncode}")


def evaluate_run(args: argparse.Namespace, variant: str, seed: int) -> dict:
    folder = run_dir(args, variant, seed)
    summary = json.loads((folder / "run.json").read_text())
    evaluated = folder / "evaluation.json"
    if evaluated.is_file() and evaluated.stat().st_mtime >= (folder / "run.json").stat().st_mtime:
        return json.loads(evaluated.read_text())
    ground_truth = load_json(args.data_dir / "val" / "annotations.json")
    images = args.data_dir / "val" / "images"
    summary["completion"] = {}
    for completion in COMPLETIONS:
        predictor = Predictor.from_pretrained(
            summary["weights"],
            options=PredictorOptions(input_size=args.size, flip=True, completion=completion),
            device=args.device,
        )
        results, failures = predict_dataset(predictor, ground_truth, images)
        if failures:
            raise SystemExit(f"could not read {len(failures)} held-out images: {failures[:3]}")
        report = evaluate_results(ground_truth, results, "coco")
        bins = {b["label"]: b["AP"] for b in report["bins"]["occlusion_rate"]}
        summary["completion"][completion] = {
            "AP": report["metrics"]["AP"],
            "AP50": report["metrics"]["AP50"],
            "bins": bins,
            "hidden_within_0.5": report["keypoints"]["hidden"]["rate"]["0.5"],
            "visible_within_0.5": report["keypoints"]["visible"]["rate"]["0.5"],
        }
    atomic_write_json(evaluated, summary, indent=1)
    return summary


def summary_table(runs: list[dict], args: argparse.Namespace) -> Table:
    bins = list(runs[0]["completion"]["none"]["bins"])
    table = Table(
        title=f"hrgr_small with / without generation-recovery: {args.minutes:g} min per run, "
        f"{'on one GPU' if args.device.startswith('cuda') else 'one thread each'}, side by "
        f"side, seeds {args.seeds} (mean ± half-range)"
    )
    for column in ["variant", "completion", "steps", "AP", *[f"AP occl. {b}" for b in bins]]:
        table.add_column(column, justify="left" if column in ("variant", "completion") else "right")
    table.add_column("hidden KS>=0.5", justify="right")
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        for completion in COMPLETIONS:
            rows = [r["completion"][completion] for r in mine]
            table.add_row(
                variant,
                completion,
                mean_spread([r["steps"] for r in mine], digits=0),
                mean_spread([r["AP"] for r in rows]),
                *[mean_spread([r["bins"][b] for r in rows]) for b in bins],
                mean_spread([r["hidden_within_0.5"] for r in rows]),
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "runs" / "synthetic_benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "completion_training")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="evaluation")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (training and evaluation)")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering the data")
    parser.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="train in float32 (default: channels-last, bfloat16 where the CPU has it)",
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--train-one", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--evaluate-only", action="store_true", help="reuse the trained runs")
    args = parser.parse_args()
    args.data_dir, args.out = args.data_dir.resolve(), args.out.resolve()
    if args.train_one:
        train_one(args, args.train_one, args.seed)
        return

    console = Console(stderr=True)
    ensure_split(args.data_dir / "train", args.train_images, 0, args.size, args.workers)
    ensure_split(args.data_dir / "val", args.val_images, 1, args.size, args.workers)
    started = time.perf_counter()
    if not args.evaluate_only:
        for seed in args.seeds:
            console.print(f"seed {seed}: training both variants for {args.minutes:g} min")
            train_pair(args, seed)
    torch.set_num_threads(args.threads)
    runs = []
    for seed in args.seeds:
        for variant in VARIANTS:
            console.print(f"evaluating {variant}, seed {seed}")
            runs.append(evaluate_run(args, variant, seed))
    # Wide enough for the table when the output is a file, not a terminal.
    Console(width=None if sys.stdout.isatty() else 200).print(summary_table(runs, args))
    result = {"minutes": args.minutes, "seeds": args.seeds, "runs": runs}
    result["seconds"] = time.perf_counter() - started
    atomic_write_json(args.out / "results.json", result, indent=1)
    console.print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
