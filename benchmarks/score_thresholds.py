"""Choose the person and joint score thresholds of ``occlupose predict`` from held-out data.

The bundled model runs once (default options, every person kept) on the held-out split of
the synthetic benchmark, ``occlupose synth --num-images 200 --seed 1 --size 256
--occlusion mixed``, generated exactly as ``benchmarks/train_synthetic.py`` generates its
validation split (the model was trained on seed 0). Then:

* person threshold (``--min-score``): precision (share of the people kept that match a
  ground-truth person at OKS >= 0.5, one to one, greedily by score as COCO matches),
  recall (share of the ground-truth people matched), F1, and the AP of the people kept;
* joint threshold (``--draw-threshold``), on the matched people kept at the chosen person
  threshold: precision (share of the drawn joints within keypoint similarity 0.5 of their
  ground-truth joint) and recall (share of the labelled joints drawn and right).

Each threshold is chosen for the highest F1 on a 0.01 grid. Tables are printed and every
number is written to ``--json``::

    python benchmarks/score_thresholds.py --json score_thresholds.json
    python benchmarks/score_thresholds.py --data my_synth_split   # a folder from occlupose synth
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
from occlupose.data.synthetic.generate import ANNOTATION_FILE, IMAGE_DIR, generate_dataset
from occlupose.evaluation import (
    evaluate_keypoints,
    joint_threshold_sweep,
    match_people,
    person_threshold_sweep,
)
from occlupose.inference import Predictor
from occlupose.utils.io import atomic_write_json

GRID = [round(float(t), 2) for t in np.arange(0.0, 0.96, 0.01)]
PERSON_ROWS = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6]
JOINT_ROWS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6]


def held_out_split(folder: Path, num_images: int) -> Path:
    """The validation split of benchmarks/train_synthetic.py (seed 1, 256 px, mixed)."""
    return generate_dataset(
        folder, num_images, seed=1, size=256, occlusion="mixed", workers=1, progress=False
    )


def predict_all(ground_truth: dict, image_dir: Path) -> tuple[list[dict], float]:
    """COCO results of the bundled model, every person kept; and seconds per image."""
    predictor = Predictor.from_pretrained(None)
    predictor.update_settings(min_score=0.0, max_results=None)
    results: list[dict] = []
    start = time.perf_counter()
    for entry in ground_truth["images"]:
        people = predictor.predict_image(read_image(image_dir / entry["file_name"]))
        results += [person.to_coco(entry["id"]) for person in people]
    return results, (time.perf_counter() - start) / len(ground_truth["images"])


def best(rows: list[dict]) -> dict:
    """The row of highest F1 (the lowest threshold among equals)."""
    return max(rows, key=lambda row: (round(row["f1"], 6), -row["threshold"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="Folder from occlupose synth (default: made).")
    parser.add_argument("--images", type=int, default=200, help="Images of the made split.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("score_thresholds.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "val"
        annotation_file = data / ANNOTATION_FILE if args.data else held_out_split(data, args.images)
        ground_truth = json.loads(annotation_file.read_text())
        with console.status(f"running the bundled model on {len(ground_truth['images'])} images"):
            results, seconds = predict_all(ground_truth, data / IMAGE_DIR)

    matches = match_people(ground_truth, results, "coco")
    people = person_threshold_sweep(matches, GRID)
    person_choice = best(people)
    for row in people:
        if row["threshold"] in PERSON_ROWS or row is person_choice:
            kept = [r for r in results if r["score"] >= row["threshold"]]
            row["AP"] = evaluate_keypoints(ground_truth, kept, "coco")["AP"] if kept else 0.0
    joints = joint_threshold_sweep(matches, GRID, min_score=person_choice["threshold"])
    joint_choice = best(joints)

    table = Table(title=f"people ({matches.num_ground_truth} in the ground truth)")
    for column in ("min score", "kept", "matched", "precision", "recall", "F1", "AP"):
        table.add_column(column, justify="right")
    for row in people:
        if "AP" in row:
            mark = " *" if row is person_choice else ""
            table.add_row(
                f"{row['threshold']:.2f}{mark}",
                str(row["kept"]),
                str(row["matched"]),
                *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1", "AP")),
            )
    console.print(table)
    table = Table(title=f"joints of the matched people scoring >= {person_choice['threshold']:.2f}")
    for column in ("draw threshold", "drawn", "right", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    for row in joints:
        if row["threshold"] in JOINT_ROWS or row is joint_choice:
            mark = " *" if row is joint_choice else ""
            table.add_row(
                f"{row['threshold']:.2f}{mark}",
                str(row["drawn"]),
                str(row["right"]),
                *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1")),
            )
    console.print(table)
    console.print(
        f"chosen for the highest F1: --min-score {person_choice['threshold']:.2f} "
        f"(precision {person_choice['precision']:.3f}, recall {person_choice['recall']:.3f}), "
        f"--draw-threshold {joint_choice['threshold']:.2f} "
        f"(precision {joint_choice['precision']:.3f}, recall {joint_choice['recall']:.3f}); "
        f"{seconds:.2f} s per image"
    )
    atomic_write_json(
        args.json,
        {
            "data": str(args.data) if args.data else "synth seed 1, 256 px, mixed",
            "images": len(ground_truth["images"]),
            "ground_truth_people": matches.num_ground_truth,
            "predicted_people": len(results),
            "seconds_per_image": seconds,
            "min_score": person_choice["threshold"],
            "draw_threshold": joint_choice["threshold"],
            "people": people,
            "joints": joints,
        },
        indent=1,
    )
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
