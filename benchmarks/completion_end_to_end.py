"""A model on the synthetic benchmark with completion none / prior / learned.

The bundled model unless ``--weights`` names another. Same weights, same held-out images
(``occlupose synth --num-images 200 --seed 1 --size 256 --occlusion mixed``, as
``benchmarks/train_synthetic.py`` validates), flip test on; only the decoder's completion
step differs: no completion, the stored pose prior, the learned completer, each with and
without joining a person's fragments (``DecodeSettings.join_fragments``), and the default
at test scales 1 and 2. Two bounds use the ground truth: the people more than 40 %
occluded grouped perfectly from the joints the network found (every joint of any
prediction within keypoint similarity 0.5 of one of their visible joints, put into one
person, then completed by the learned completer), at scale 1 and at scales 1 + 2: no
grouping can do better with these peaks.

Prints AP, AP per annotated occlusion bin and the keypoint-level rates (share of visible /
hidden joints localised), then where the people more than 40 % occluded go: for each such
ground-truth person, the prediction with the best OKS, how many of the person's visible
joints that prediction found within keypoint similarity 0.5, and the share of these
people with a prediction at OKS >= 0.5.

    python benchmarks/completion_end_to_end.py --out docs/completion_end_to_end.json
    python benchmarks/completion_end_to_end.py --weights runs/x/final.pt --out x.json
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
from occlupose.decode import DecodeSettings, load_completer
from occlupose.evaluation import evaluate_people, keypoint_similarity
from occlupose.evaluation.occlusion import occlusion_rate
from occlupose.inference import Predictor, PredictorOptions
from occlupose.structures import Person
from occlupose.structures.keypoint_set import COCO_KEYPOINTS
from occlupose.utils.io import atomic_write_json

MOST_OCCLUDED = 0.4  # share of labelled joints hidden (v = 1)
# label -> (completion, join fragments, test scales)
VARIANTS = {
    "none": ("none", False, (1.0,)),
    "prior, fragments not joined": ("prior", False, (1.0,)),
    "prior": ("prior", True, (1.0,)),
    "learned, fragments not joined": ("learned", False, (1.0,)),
    "learned (default)": ("learned", True, (1.0,)),
    "learned, scales 1 + 2": ("learned", True, (1.0, 2.0)),
}
BOUNDS = {  # label -> test scales of the ungrouped-by-truth predictions
    "bound: >40% people grouped perfectly": (1.0,),
    "bound: >40% people grouped perfectly, scales 1 + 2": (1.0, 2.0),
}


def is_most_occluded(truth: np.ndarray, threshold: float = MOST_OCCLUDED) -> bool:
    """More than ``threshold`` of the person's labelled joints hidden: the AP bin's rule."""
    return occlusion_rate(truth[:, 2]) > threshold  # NaN (nothing labelled) is False


def group_most_occluded_perfectly(
    people: dict[int, list[Person]], ground_truth: dict, completer
) -> dict[int, list[Person]]:
    """The people more than 40 % occluded grouped from the joints found, using the truth.

    For each such ground-truth person, every joint of any prediction that lies within
    keypoint similarity 0.5 of one of its visible joints goes into one new person (the
    higher-scoring one per joint type); predictions made only of such joints are
    dropped. Every person is then completed by ``completer``.
    """
    sigmas = np.asarray(COCO_KEYPOINTS.sigmas)
    truth_by_image: dict[int, list[dict]] = {}
    for annotation in ground_truth["annotations"]:
        truth_by_image.setdefault(annotation["image_id"], []).append(annotation)
    grouped = {}
    for image_id, found_people in people.items():
        rows = [person.keypoints.astype(np.float64) for person in found_people]
        dropped: set[int] = set()
        for annotation in truth_by_image.get(image_id, []):
            truth = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
            if not is_most_occluded(truth):
                continue
            union = np.zeros_like(truth)
            for i, row in enumerate(rows[: len(found_people)]):
                similarity = keypoint_similarity(row[:, :2], truth, annotation["area"], sigmas)
                hits = (row[:, 2] > 0) & (truth[:, 2] == 2) & (similarity >= 0.5)
                if not hits.any():
                    continue
                take = hits & (row[:, 2] > union[:, 2])
                union[take] = row[take]
                if ((row[:, 2] > 0) <= hits).all():
                    dropped.add(i)
            if (union[:, 2] > 0).any():
                rows.append(union)
        rows = [row for i, row in enumerate(rows) if i not in dropped]
        if not rows:
            grouped[image_id] = []
            continue
        joints = np.asarray(rows, dtype=np.float32)
        scores = joints[:, :, 2].sum(axis=1) / joints.shape[1]
        found = joints[:, :, 2] > 0
        filled = completer.complete_people(joints)
        order = np.argsort(-scores, kind="stable")[: DecodeSettings().max_results]
        grouped[image_id] = [
            Person(filled[i], float(scores[i]), completed=(filled[i, :, 2] > 0) & ~found[i])
            for i in order
        ]
    return grouped


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
        if not is_most_occluded(truth, threshold):
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


def summarise(people: dict[int, list[Person]], seconds: float, ground_truth: dict) -> dict:
    """The benchmark's numbers for one decoding's people."""
    report = evaluate_people(people, ground_truth, "coco")
    return {
        "AP": report["metrics"]["AP"],
        "bins": report["bins"].get("occlusion_rate"),
        "keypoints": report["keypoints"],
        "most_occluded": most_occluded_people(people, ground_truth),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("completion_end_to_end.json"))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--weights", default=None, help="checkpoint or bundled name (default: the bundled model)"
    )
    parser.add_argument("--device", default="cpu")
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

        def predict(completion: str, join: bool, scales: tuple[float, ...]) -> tuple[dict, float]:
            options = PredictorOptions(
                completion=completion, scales=scales, decode=DecodeSettings(join_fragments=join)
            )
            predictor = Predictor.from_pretrained(args.weights, options=options, device=args.device)
            start = time.perf_counter()
            people = {i: predictor.predict(image) for i, image in images.items()}
            return people, time.perf_counter() - start

        runs = {}  # (completion, join, scales) -> (people, seconds)
        for label, variant in VARIANTS.items():
            runs[variant] = predict(*variant)
            results[label] = summarise(*runs[variant], gt)
        completer = load_completer("coco")
        for label, scales in BOUNDS.items():
            # The ungrouped-by-truth predictions: no completion, so nothing to join.
            variant = ("none", False, scales)
            people, seconds = runs[variant] if variant in runs else predict(*variant)
            grouped = group_most_occluded_perfectly(people, gt, completer)
            results[label] = summarise(grouped, seconds, gt)

    console = Console(width=160)
    bins = [b["label"] for b in results["none"]["bins"]]
    model = args.weights or "bundled model"
    table = Table(title=f"{model}, {args.images} held-out synthetic images, flip test")
    for column in ["decoding", "AP", *[f"AP occl. {b}" for b in bins], "hidden KS>=0.5"]:
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
    columns = ["decoding", "people", "median area", "visible joints", "found by best"]
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
