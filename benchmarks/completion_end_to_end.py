"""The bundled model on the synthetic benchmark with completion none / prior / learned.

Same weights, same held-out images (``occlupose synth --num-images 200 --seed 1 --size 256
--occlusion mixed``, as ``benchmarks/train_synthetic.py`` validates), flip test on; only
the completion step of the decoder differs. Prints AP, AP per annotated occlusion bin and
the keypoint-level rates (share of visible / hidden joints localised), then where the
people more than 40 % occluded go: for each such ground-truth person, the prediction with
the best OKS, how many of the person's visible joints that prediction found within
keypoint similarity 0.5, and the share of these people with a prediction at OKS >= 0.5.

    python benchmarks/completion_end_to_end.py --out docs/completion_end_to_end.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from occlupose.data.image_io import read_image
from occlupose.data.synthetic.generate import generate_dataset
from occlupose.evaluation import evaluate_people, keypoint_similarity
from occlupose.inference import Predictor, PredictorOptions
from occlupose.structures import Person
from occlupose.structures.keypoint_set import COCO_KEYPOINTS
from occlupose.utils.io import atomic_write_json

COMPLETIONS = ("none", "prior", "learned")
MOST_OCCLUDED = 0.4  # share of labelled joints hidden (v = 1)


def most_occluded_people(
    people: dict[int, list[Person]], ground_truth: dict, threshold: float = MOST_OCCLUDED
) -> dict:
    """Best-matching prediction of every ground-truth person with more than ``threshold``
    of its labelled joints hidden: OKS, and its visible joints found within KS 0.5."""
    sigmas = np.asarray(COCO_KEYPOINTS.sigmas)
    best_oks, visible, visible_found, areas = [], [], [], []
    for annotation in ground_truth["annotations"]:
        truth = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
        labelled = truth[:, 2] > 0
        if not labelled.any() or (truth[:, 2] == 1).sum() <= threshold * labelled.sum():
            continue
        is_visible = truth[:, 2] == 2
        oks, found_here = 0.0, 0
        for person in people.get(annotation["image_id"], []):
            xy = person.keypoints[:, :2].astype(np.float64)
            similarity = keypoint_similarity(xy, truth, annotation["area"], sigmas)
            person_oks = float(similarity[labelled].mean())
            if person_oks > oks:
                found = person.keypoints[:, 2] > 0
                if person.completed is not None:
                    found &= ~person.completed
                oks, found_here = person_oks, int((found & is_visible & (similarity >= 0.5)).sum())
        best_oks.append(oks)
        visible.append(int(is_visible.sum()))
        visible_found.append(found_here)
        areas.append(annotation["area"])
    best_oks = np.asarray(best_oks)
    return {
        "people": len(best_oks),
        "median_area": float(np.median(areas)) if areas else None,
        "mean_visible_joints": float(np.mean(visible)) if visible else None,
        "mean_visible_found_by_best": float(np.mean(visible_found)) if visible else None,
        "median_best_oks": float(np.median(best_oks)) if len(best_oks) else None,
        "share_best_oks_0.5": float(np.mean(best_oks >= 0.5)) if len(best_oks) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("completion_end_to_end.json"))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = generate_dataset(
            tmp, args.images, seed=1, size=256, occlusion="mixed", progress=False
        )
        gt = json.loads(gt_path.read_text())
        images = {
            im["id"]: read_image(Path(tmp) / "images" / im["file_name"]) for im in gt["images"]
        }
        for completion in COMPLETIONS:
            predictor = Predictor.from_pretrained(options=PredictorOptions(completion=completion))
            start = time.perf_counter()
            people = {i: predictor.predict(image) for i, image in images.items()}
            report = evaluate_people(people, gt, "coco")
            results[completion] = {
                "AP": report["metrics"]["AP"],
                "bins": report["bins"].get("occlusion_rate"),
                "keypoints": report["keypoints"],
                "most_occluded": most_occluded_people(people, gt),
                "seconds": time.perf_counter() - start,
            }
    console = Console(width=160)
    bins = [b["label"] for b in results["none"]["bins"]]
    table = Table(title=f"bundled model, {args.images} held-out synthetic images, flip test")
    for column in ["completion", "AP", *[f"AP occl. {b}" for b in bins], "hidden KS>=0.5"]:
        table.add_column(column, justify="right")
    for completion, row in results.items():
        hidden = row["keypoints"]["hidden"]
        table.add_row(
            completion,
            f"{row['AP']:.3f}",
            *["-" if b["AP"] is None else f"{b['AP']:.3f}" for b in row["bins"]],
            f"{round(hidden['rate']['0.5'] * hidden['count'])} of {hidden['count']}",
        )
    console.print(table)
    table = Table(title=f"people more than {MOST_OCCLUDED:.0%} occluded: their best prediction")
    columns = ["completion", "people", "median area", "visible joints", "found by best"]
    for column in [*columns, "median best OKS", "best OKS >= 0.5"]:
        table.add_column(column, justify="right")
    for completion, row in results.items():
        most = row["most_occluded"]
        if not most["people"]:
            continue
        table.add_row(
            completion,
            str(most["people"]),
            f"{most['median_area']:.0f} px²",
            f"{most['mean_visible_joints']:.1f}",
            f"{most['mean_visible_found_by_best']:.1f}",
            f"{most['median_best_oks']:.3f}",
            f"{most['share_best_oks_0.5']:.3f}",
        )
    console.print(table)
    atomic_write_json(args.out, results, indent=1)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
