"""Where a model's AP goes on a held-out set: each kind of error removed in turn.

Usage::

    python benchmarks/error_breakdown.py --data-dir runs/synthetic_benchmark/256px_2000_200
    python benchmarks/error_breakdown.py --weights runs/train_synthetic/hrgr_small/final.pt \\
        --data-dir DIR --pose-prior

The model runs over ``DIR/val`` exactly as ``benchmarks/train_synthetic.py`` evaluates it
(validation decoding, no test-time augmentation; the saved pose prior only with
``--pose-prior``). Each prediction is matched to the ground-truth person of the same
image with the highest OKS (at least 0.3), and one kind of error is then removed with
the ground truth before COCO AP is computed again:

* *found face keypoints exact*: the nose, eyes and ears it found, at their true places;
* *found visible keypoints exact*: every visible keypoint it found;
* *missed visible keypoints added*: visible keypoints it did not find, at their places;
* *hidden keypoints exact*: every hidden (v=1) keypoint at its true place.

The gap each row opens over the first is what fixing that error is worth. A second
table gives, per joint, for people at most 20 % occluded, how often a visible joint is
found and its median error in units of its OKS scale (distance / (s k), s^2 the area and
k twice the joint's sigma; OKS counts exp(-x^2 / 2) of it).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from occlupose.data.bottom_up import BottomUpPoseDataset
from occlupose.data.datasets import load_coco_keypoints
from occlupose.data.synthetic.generate import ANNOTATION_FILE
from occlupose.engine.validation import predict_people
from occlupose.evaluation import evaluate_results, people_to_results
from occlupose.inference import Predictor
from occlupose.structures import Person

FACE = slice(0, 5)  # COCO: nose, eyes, ears
Fix = Callable[[np.ndarray, np.ndarray], None]  # (predicted (J, 3), truth (J, 3)), in place


def match(person: Person, truths: list[dict], scale: np.ndarray) -> np.ndarray | None:
    """The (J, 3) ground truth of the person ``person`` overlaps best (OKS >= 0.3)."""
    best, best_oks = None, 0.3
    for ann in truths:
        truth = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        labelled = truth[:, 2] > 0
        if not labelled.any():
            continue
        d2 = ((person.keypoints[:, :2] - truth[:, :2]) ** 2).sum(axis=1)
        oks = np.exp(-d2 / (2 * ann["area"] * scale**2 + 1e-9))[labelled].mean()
        if oks > best_oks:
            best, best_oks = truth, oks
    return best


def found_face(pred: np.ndarray, truth: np.ndarray) -> None:
    found = pred[FACE, 2] > 0
    pred[FACE][found, :2] = truth[FACE][found, :2]


def found_visible(pred: np.ndarray, truth: np.ndarray) -> None:
    fix = (pred[:, 2] > 0) & (truth[:, 2] == 2)
    pred[fix, :2] = truth[fix, :2]


def missed_visible(pred: np.ndarray, truth: np.ndarray) -> None:
    fix = (pred[:, 2] <= 0) & (truth[:, 2] == 2)
    pred[fix, :2], pred[fix, 2] = truth[fix, :2], 0.01


def hidden(pred: np.ndarray, truth: np.ndarray) -> None:
    fix = truth[:, 2] == 1
    pred[fix, :2] = truth[fix, :2]


FIXES: dict[str, Fix | None] = {
    "as predicted": None,
    "found face keypoints exact": found_face,
    "found visible keypoints exact": found_visible,
    "missed visible keypoints added": missed_visible,
    "hidden keypoints exact": hidden,
}


def with_fix(people, by_image, scale, fix: Fix | None) -> dict[int, list[Person]]:
    out = {}
    for image_id, found in people.items():
        fixed = []
        for person in found:
            person = copy.copy(person)
            person.keypoints = person.keypoints.copy()
            truth = match(person, by_image.get(image_id, []), scale)
            if fix is not None and truth is not None:
                fix(person.keypoints, truth)
            fixed.append(person)
        out[image_id] = fixed
    return out


def joint_errors(people, by_image, scale, names) -> list[tuple[str, float, float]]:
    """Per joint: share of visible joints found, median error / OKS scale (<= 20 % hidden)."""
    found = {j: [] for j in range(len(names))}
    errors = {j: [] for j in range(len(names))}
    for image_id, truths in by_image.items():
        candidates = people.get(image_id, [])
        for ann in truths:
            truth = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            labelled = truth[:, 2] > 0
            if not candidates or not labelled.any():
                continue
            if (truth[:, 2] == 1).sum() / labelled.sum() > 0.2:
                continue
            d2 = [((p.keypoints[:, :2] - truth[:, :2]) ** 2).sum(axis=1) for p in candidates]
            oks = [np.exp(-d / (2 * ann["area"] * scale**2 + 1e-9))[labelled].mean() for d in d2]
            best = int(np.argmax(oks))
            pred = candidates[best].keypoints
            for j in np.flatnonzero(truth[:, 2] == 2):
                found[j].append(pred[j, 2] > 0)
                if pred[j, 2] > 0:
                    errors[j].append(np.sqrt(d2[best][j]) / (np.sqrt(ann["area"]) * scale[j]))
    return [
        (names[j], float(np.mean(found[j])), float(np.median(errors[j])) if errors[j] else np.nan)
        for j in range(len(names))
        if found[j]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="default: the bundled model")
    parser.add_argument("--data-dir", type=Path, required=True, help="holds val/ (and train/)")
    parser.add_argument("--pose-prior", action="store_true", help="decode with the saved prior")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=None if sys.stdout.isatty() else 120)

    val = args.data_dir / "val"
    predictor = Predictor.from_pretrained(args.weights, use_pose_prior=args.pose_prior)
    model, keypoint_set = predictor.model, predictor.keypoint_set
    records = load_coco_keypoints(val / ANNOTATION_FILE, val / "images")
    dataset = BottomUpPoseDataset(
        records,
        keypoint_set,
        input_size=predictor.options.input_size,
        output_strides=model.output_strides,
        with_tags=False,
        with_limbs=False,
    )
    people = predict_people(
        model, dataset, keypoint_set, batch_size=args.batch_size, pose_prior=predictor.pose_prior
    )
    gt = json.loads((val / ANNOTATION_FILE).read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    scale = 2 * np.asarray(keypoint_set.sigmas)  # k of OKS

    table = Table(title=f"error breakdown: {args.weights or 'bundled model'} on {val}")
    for column in ("fix", "AP", "AP50"):
        table.add_column(column, justify="left" if column == "fix" else "right")
    for name, fix in FIXES.items():
        report = evaluate_results(
            gt, people_to_results(with_fix(people, by_image, scale, fix)), keypoint_set
        )
        bins = [row["AP"] for row in report["bins"]["occlusion_rate"]]
        if name == "as predicted":
            for row in report["bins"]["occlusion_rate"]:
                table.add_column(f"AP occl. {row['label']}", justify="right")
        m = report["metrics"]
        table.add_row(name, f"{m['AP']:.3f}", f"{m['AP50']:.3f}", *(f"{b:.3f}" for b in bins))
    console.print(table)

    joints = Table(title="visible joints of people at most 20 % occluded")
    for column in ("joint", "found", "median error / OKS scale"):
        joints.add_column(column, justify="left" if column == "joint" else "right")
    for name, share, error in joint_errors(people, by_image, scale, keypoint_set.keypoint_names):
        joints.add_row(name, f"{share:.2f}", f"{error:.2f}")
    console.print(joints)


if __name__ == "__main__":
    main()
