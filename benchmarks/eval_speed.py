"""Evaluation time for a COCO-val-sized keypoint results file, on one CPU core.

Usage::

    python benchmarks/eval_speed.py [--images 5000] [--people 6350] [--seed 0]

Builds, in memory, a ground truth shaped like COCO val2017 (5,000 images, about 6,350
people with keypoints in 2,350 images plus as many people without keypoints and a few
crowd regions) and a results file like a bottom-up model's (90 % of the people found
with keypoint noise, duplicates and false positives, up to 20 per image), then times

* ``pycocotools``: plain ``COCO.loadRes`` + ``COCOeval`` evaluate/accumulate/summarize
  (the baseline, same data, same process);
* ``evaluate_keypoints``: checked inputs + the COCO metrics;
* ``evaluate_results``: the full report (metrics, AP per occlusion-rate and overlap
  bin, keypoint-level rates).

The process is pinned to one core and numerical libraries to one thread. The target
is under a minute for the full report.
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from occlupose.evaluation import evaluate_keypoints, evaluate_results  # noqa: E402
from occlupose.structures.keypoint_set import COCO_KEYPOINTS  # noqa: E402

TARGET_SECONDS = 60.0


def synthetic_coco_val(
    num_images: int, num_people: int, seed: int
) -> tuple[dict, list[dict]]:  # fmt: skip
    """A COCO-val-like ground truth and bottom-up-like results for it."""
    rng = np.random.default_rng(seed)
    sigmas = np.asarray(COCO_KEYPOINTS.sigmas)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(num_images)]
    # COCO val: ~47 % of images have people with keypoints, 1-13 of them (mean ~2.7).
    with_people = rng.choice(num_images, size=int(num_images * 0.47), replace=False) + 1
    counts = np.clip(rng.geometric(0.37, size=len(with_people)), 1, 13)
    counts = np.round(counts * num_people / counts.sum()).astype(int).clip(1, 13)
    annotations, results = [], []
    for image_id, count in zip(with_people.tolist(), counts.tolist(), strict=True):
        people = []
        # as many people without keypoints (too small or unlabelled) as with
        for k in range(2 * count + (1 if rng.random() < 0.01 else 0)):
            w, h = rng.uniform(20, 200), rng.uniform(40, 400)
            x0, y0 = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            labelled = k < count
            xy = np.stack([x0 + rng.uniform(0, w, 17), y0 + rng.uniform(0, h, 17)], axis=1)
            v = rng.choice([0, 1, 2], size=17, p=[0.3, 0.1, 0.6]) if labelled else np.zeros(17)
            if labelled and not (v > 0).any():
                v[0] = 2
            kps = np.concatenate([xy * (v[:, None] > 0), v[:, None]], axis=1)
            crowd = k == 2 * count
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x0, y0, w, h],
                    "area": 0.6 * w * h,
                    "keypoints": kps.reshape(-1).tolist(),
                    "num_keypoints": int((v > 0).sum()),
                    "iscrowd": int(crowd),
                }
            )
            if labelled:
                people.append((xy, 0.6 * w * h))
        dets = []
        for xy, area in people:
            if rng.random() < 0.9:  # found, with noise of about OKS 0.5-0.95
                noise = rng.normal(0, 1, (17, 2)) * np.sqrt(area) * sigmas[:, None] * 2
                dets.append(xy + noise * rng.uniform(0.1, 0.8))
            if rng.random() < 0.1:  # a duplicate
                dets.append(xy + rng.normal(0, 8, (17, 2)))
        for _ in range(rng.poisson(1.0)):  # false positives
            dets.append(rng.uniform([0, 0], [640, 480], (17, 2)))
        for xy in dets[:20]:
            scores = rng.uniform(0.1, 1.0, (17, 1))
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": np.concatenate([xy, scores], axis=1).reshape(-1).tolist(),
                    "score": float(rng.uniform(0.05, 1.0)),
                }
            )
    category = {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS.keypoint_names)}
    gt = {"images": images, "annotations": annotations, "categories": [category]}
    return gt, results


def pycocotools_baseline(gt: dict, results: list[dict]) -> float:
    coco = COCO()
    coco.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--people", type=int, default=6350)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    console = Console(width=None if sys.stdout.isatty() else 160)  # logs: full tables
    gt, results = synthetic_coco_val(args.images, args.people, args.seed)
    num_people = sum(1 for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"])
    console.print(
        f"ground truth: {len(gt['images'])} images, {len(gt['annotations'])} annotations, "
        f"{num_people} people with keypoints; results: {len(results)}"
    )
    baseline_ap, baseline_s = timed(pycocotools_baseline, gt, results)
    metrics, metrics_s = timed(evaluate_keypoints, gt, results, "coco")
    report, report_s = timed(evaluate_results, gt, results, "coco")
    assert abs(metrics["AP"] - baseline_ap) < 1e-12, (metrics["AP"], baseline_ap)
    assert report["metrics"] == metrics

    table = Table(title="Keypoint evaluation time, one CPU core")
    for column in ("what", "seconds", "vs pycocotools", "AP", "target"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row("pycocotools COCOeval (baseline)", f"{baseline_s:.1f}", "1.00x",
                  f"{baseline_ap:.4f}", "")  # fmt: skip
    table.add_row("evaluate_keypoints", f"{metrics_s:.1f}", f"{metrics_s / baseline_s:.2f}x",
                  f"{metrics['AP']:.4f}", "")  # fmt: skip
    table.add_row(
        "evaluate_results (full report)",
        f"{report_s:.1f}",
        f"{report_s / baseline_s:.2f}x",
        f"{report['metrics']['AP']:.4f}",
        f"< {TARGET_SECONDS:.0f} s: {'yes' if report_s < TARGET_SECONDS else 'NO'}",
    )
    console.print(table)


if __name__ == "__main__":
    main()
