"""Ablation of HRGR-Net's modules on the synthetic occlusion benchmark, at CPU scale.

Usage::

    python benchmarks/occlusion_ablation.py                  # 30 min per run, seeds 0 and 1
    python benchmarks/occlusion_ablation.py --minutes 3 --train-images 500 --val-images 100

Trains, with the same data, budget and seeds, six models of width 16 at 256 px:

1. the HigherHRNet baseline (``configs/higherhrnet_small_synthetic.yaml``);
2. + fusion attention (on the highest-resolution branch);
3. + multi-scale feature fusion;
4. + generation-recovery (heatmap completion, with the adversarial term);
5. + limb fields (a limb-field head; people grouped by limbs instead of tags);
6. the full HRGR-Net (``configs/hrgr_small_synthetic.yaml``: all of the above).

Rows 2-5 each add one module to the baseline; comparing the full model with row 5 shows
what attention, fusion and completion add on top of limb grouping.

Each is evaluated on the held-out images by annotated occlusion-rate bin and under
controlled occlusion (seeded occluders over 0-50 % of every person's visible keypoints,
ground truth unchanged), through the full inference pipeline (``Predictor``, no test-time
augmentation). Writes ``OUT/results.json``, ``OUT/results.md`` (mean and spread over the
seeds) and two plots; the default OUT is ``docs/ablation``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from occlupose.data.synthetic.generate import ANNOTATION_FILE, IMAGE_DIR, generate_dataset
from occlupose.engine.config import load_config
from occlupose.evaluation import evaluate_results
from occlupose.evaluation.inputs import load_json
from occlupose.evaluation.plots import plot_ap_per_bin, plot_ap_vs_occlusion
from occlupose.evaluation.report import evaluate_occlusion_curve
from occlupose.inference import Predictor, PredictorOptions
from occlupose.inference.dataset import predict_dataset
from occlupose.structures.keypoint_set import COCO_KEYPOINTS
from occlupose.utils.io import atomic_write, atomic_write_json

from budgeted_training import (
    add_fast_argument,
    budget_run_overrides,
    mean_spread,
    train_with_budget,
)

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "configs" / "higherhrnet_small_synthetic.yaml"
FULL = ROOT / "configs" / "hrgr_small_synthetic.yaml"
VARIANTS: dict[str, tuple[Path, tuple[str, ...]]] = {
    "HigherHRNet": (BASELINE, ()),
    "+ attention": (BASELINE, ("model.overrides.attention=high",)),
    "+ multi-scale fusion": (BASELINE, ("model.overrides.multi_scale_fusion=true",)),
    "+ generation-recovery": (
        BASELINE,
        # The generator's output is what inference decodes: it learns the complete
        # heatmaps (v=1 joints are the rendered occlusion) while the first stage learns
        # the visible ones, as in the full recipe.
        (
            "model.overrides.completion=true",
            "loss.completion=1.0",
            "data.v1_is_hidden=true",
            "adversarial.weight=1.0e-3",
        ),
    ),
    "+ limb fields": (
        BASELINE,
        (f"model.overrides.num_limbs={COCO_KEYPOINTS.num_limbs}", "loss.limb=1.0"),
    ),
    "HRGR-Net (full)": (FULL, ()),
}


def ensure_data(folder: Path, train: int, val: int, size: int) -> tuple[Path, Path]:
    paths = []
    for split, count, seed in (("train", train, 0), ("val", val, 1)):
        annotations = folder / split / ANNOTATION_FILE
        if not annotations.is_file():
            generate_dataset(folder / split, count, seed=seed, size=size, occlusion="mixed")
        paths.append(annotations)
    return paths[0], paths[1]


def run_variant(name: str, seed: int, args: argparse.Namespace, data: Path) -> dict:
    recipe, extra = VARIANTS[name]
    overrides = [*budget_run_overrides(data, args.size, seed, fast=args.fast), *extra]
    config = load_config(recipe, overrides)
    slug = name.strip("+ ").replace(" ", "_").replace("(", "").replace(")", "")
    run = train_with_budget(config, args.runs_dir / f"{slug}_seed{seed}", args.minutes)

    predictor = Predictor.from_pretrained(
        run.weights, options=PredictorOptions(input_size=args.size, flip=False)
    )
    gt_path = data / "val" / ANNOTATION_FILE
    gt = load_json(gt_path)
    per_rate = {}
    for rate in args.rates:
        per_rate[rate], _ = predict_dataset(
            predictor, gt, data / "val" / IMAGE_DIR, occlusion_rate=rate, seed=seed
        )
    report = evaluate_results(gt, per_rate[0.0], "coco")
    curve = evaluate_occlusion_curve(gt, per_rate, "coco")
    return {
        "variant": name,
        "seed": seed,
        "steps": run.steps,
        "precision": config.trainer.precision,
        "channels_last": config.trainer.channels_last,
        "images_per_second": run.images_per_second,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "AP": report["metrics"]["AP"],
        "bins": report["bins"]["occlusion_rate"],
        "curve": [{"rate": c["rate"], "AP": c["metrics"]["AP"]} for c in curve],
    }


def summarise(results: list[dict], args: argparse.Namespace) -> tuple[Table, str]:
    """A rich table and the same as Markdown (means ± half-range over the seeds)."""
    bins = [b["label"] for b in results[0]["bins"]]
    columns = ["model", "params (M)", "AP"] + [f"AP occl. {b}" for b in bins]
    columns += [f"AP @ {r:.0%} occluded" for r in args.rates if r > 0]
    table = Table(
        title=f"ablation: {args.minutes:g} min x seeds {args.seeds} on "
        f"{torch.get_num_threads()} CPU threads ({results[0]['precision']}), "
        f"{args.train_images} train / {args.val_images} held-out images at {args.size} px"
    )
    for c in columns:
        table.add_column(c, justify="left" if c == "model" else "right")
    lines = [
        f"{table.title}; mean ± half-range over the seeds.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for name in VARIANTS:
        runs = [r for r in results if r["variant"] == name]
        if not runs:
            continue
        row = [name, f"{runs[0]['parameters'] / 1e6:.2f}", mean_spread([r["AP"] for r in runs])]
        for i, _ in enumerate(bins):
            values = [r["bins"][i]["AP"] for r in runs if r["bins"][i]["AP"] is not None]
            row.append(mean_spread(values) if values else "-")
        for j, rate in enumerate(args.rates):
            if rate > 0:
                row.append(mean_spread([r["curve"][j]["AP"] for r in runs]))
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    return table, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "runs" / "ablation_data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ablation")
    parser.add_argument(
        "--runs-dir", type=Path, default=ROOT / "runs" / "ablation", help="weights of every run"
    )
    add_fast_argument(parser)
    args = parser.parse_args()
    if 0.0 not in args.rates:
        args.rates = [0.0, *args.rates]
    args.rates = sorted(args.rates)

    console = Console(width=None if sys.stdout.isatty() else 160)  # logs: full tables
    data = args.data_dir / f"{args.size}px_{args.train_images}_{args.val_images}"
    ensure_data(data, args.train_images, args.val_images, args.size)
    start = time.perf_counter()
    results = []
    for seed in args.seeds:
        for name in args.variants:
            console.print(f"[bold]{name}[/bold], seed {seed}")
            results.append(run_variant(name, seed, args, data))
            atomic_write_json(args.out / "results.json", {"args": _plain(args), "runs": results})

    table, markdown = summarise(results, args)
    console.print(table)
    atomic_write(args.out / "results.md", lambda tmp: tmp.write_text(markdown))
    first_seed = [r for r in results if r["seed"] == args.seeds[0]]
    plot_ap_per_bin(
        {r["variant"]: r["bins"] for r in first_seed},
        args.out / "ap_per_occlusion_bin.png",
        title=f"annotated occlusion rate (seed {args.seeds[0]})",
    )
    plot_ap_vs_occlusion(
        {
            r["variant"]: [{"rate": c["rate"], "metrics": {"AP": c["AP"]}} for c in r["curve"]]
            for r in first_seed
        },
        args.out / "ap_vs_controlled_occlusion.png",
    )
    console.print(
        f"{len(results)} runs in {(time.perf_counter() - start) / 60:.0f} min, "
        f"{torch.get_num_threads()} torch threads; results in {args.out}"
    )


def _plain(args: argparse.Namespace) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


if __name__ == "__main__":
    main()
