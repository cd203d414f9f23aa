"""Which coordinate convention decodes a model best: the ideal-network bias test.

Usage::

    python benchmarks/decode_bias.py [--ann tests/data/coco_subset/person_keypoints_subset.json
                                      --images tests/data/coco_subset/images]
                                     [--input-size 512] [--out results.json]

An *ideal network* outputs exactly the targets it was trained on, for whatever canvas
the Predictor shows it: Gaussian heatmaps (sigma 2) at 1/4 and 1/2 resolution and
per-person tags at 1/4, for the annotated people of real COCO photos. Two kinds:

* **official targets**: the published HigherHRNet generator, which puts a joint at
  output pixel ``int(x / stride)`` (network-input pixel ``x``): what an official
  checkpoint has learned;
* **sub-pixel targets**: occlupose's, a Gaussian centred at the exact position
  ``(x + 0.5) / stride - 0.5`` (pixel centres at integers).

Each is decoded by the Predictor four ways: the official pipeline
(``decoding="official"``: centred canvas, maps at input resolution) and occlupose's
(``decoding="occlupose"``: short side resized, maps at 1/2), each with the official
pixel convention (the grouper's coordinate as it is) and with pixel centres (half a
pixel subtracted). The flip test is on, as both pipelines run by default. For every
annotated joint the nearest decoded person's joint gives the error in image pixels:
the table shows its mean (bias) in x and y, its RMS, and the COCO AP of the decoded
people (a perfect model scores 1.0 whatever its convention, so the AP drop is what the
convention costs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from occlupose.data.augment import resize_short_side
from occlupose.data.image_io import read_image
from occlupose.data.targets import render_heatmaps, render_tag_maps
from occlupose.decode import DecodeSettings
from occlupose.evaluation import evaluate_people
from occlupose.inference import Predictor, PredictorOptions, official_canvases, official_warp
from occlupose.structures import COCO_KEYPOINTS, PoseOutputs
from occlupose.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
SIGMA = 2.0
TAG_RADIUS = 3.0
STRIDES = (4, 2)


class IdealNetwork(nn.Module):
    """Returns the training targets of the current image's people for each canvas.

    ``canvases`` maps a canvas size ``(W, H)`` to the image -> canvas matrix (3x3);
    the benchmark sets it (and ``people``, (P, J, 3) image pixels) before each image.
    With the flip test the Predictor runs ``[canvas, mirrored canvas]`` as one batch.
    """

    num_joints = 17
    tag_channels = 17
    limb_head = None

    def __init__(self, targets: str) -> None:
        super().__init__()
        self.targets = targets
        self.people = np.zeros((0, 17, 3), np.float32)
        self.canvases: dict[tuple[int, int], np.ndarray] = {}

    def forward(self, x: torch.Tensor) -> PoseOutputs:
        height, width = x.shape[-2:]
        matrix = self.canvases[width, height]
        maps = [self._render(matrix, width, height, b == 1) for b in range(x.shape[0])]
        stack = lambda i: torch.stack([m[i] for m in maps])  # noqa: E731
        quarter = stack(0)
        return PoseOutputs([quarter, stack(1)], stack(2), None, None, torch.zeros_like(quarter))

    def _render(self, matrix: np.ndarray, width: int, height: int, mirrored: bool):
        people = self.people.copy()
        people[..., :2] = people[..., :2] @ matrix[:2, :2].T + matrix[:2, 2]
        if mirrored:
            people[..., 0] = width - 1 - people[..., 0]
            people = people[:, list(COCO_KEYPOINTS.flip_index)]
        out = []
        for stride in STRIDES:
            size = (height // stride, width // stride)
            out.append(render_heatmaps(self._on_map(people, stride, size), size, SIGMA))
        size = (height // STRIDES[0], width // STRIDES[0])
        on_map = self._on_map(people, STRIDES[0], size)
        out.append(render_tag_maps(on_map, 3.0 * np.arange(len(people)), size, TAG_RADIUS))
        return [torch.from_numpy(np.asarray(m, np.float32)) for m in out]

    def _on_map(self, people: np.ndarray, stride: int, size: tuple[int, int]) -> np.ndarray:
        at = people.copy()
        if self.targets == "official":
            # The published generator: int() of x / stride, people beyond the map dropped.
            at[..., :2] = np.trunc(at[..., :2] / stride)
            outside = (at[..., :2] < 0).any(-1) | (at[..., 0] >= size[1]) | (at[..., 1] >= size[0])
            at[..., 2][outside] = 0
        else:
            at[..., :2] = (at[..., :2] + 0.5) / stride - 0.5
        return at


def canvases(image_hw: tuple[int, int], decoding: str, input_size: int) -> dict:
    """Canvas size -> image -> canvas matrix, as the Predictor computes them (scale 1)."""
    height, width = image_hw
    if decoding == "official":
        geometry = official_canvases(width, height, input_size, (1.0,))
        matrix = official_warp(geometry.center, geometry.scale, geometry.base_size)
        return {geometry.base_size: np.vstack([matrix, [0.0, 0.0, 1.0]])}
    view = resize_short_side(np.zeros((height, width, 3), np.uint8), input_size, size_divisor=32)
    return {(view.image.shape[1], view.image.shape[0]): view.matrix}


def joint_errors(people, truth: np.ndarray) -> np.ndarray:
    """(K, 2) errors (decoded - true) of the labelled joints, nearest decoded person."""
    errors = []
    for gt in truth:
        labelled = gt[:, 2] > 0
        best, best_distance = None, np.inf
        for person in people:
            found = labelled & (person.keypoints[:, 2] > 0)
            if not found.any():
                continue
            distance = np.linalg.norm(person.keypoints[found, :2] - gt[found, :2], axis=1).mean()
            if distance < best_distance:
                best, best_distance = person, distance
        if best is not None:
            found = labelled & (best.keypoints[:, 2] > 0)
            errors.append(best.keypoints[found, :2] - gt[found, :2])
    return np.concatenate(errors) if errors else np.zeros((0, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    data = ROOT / "tests" / "data" / "coco_subset"
    parser.add_argument("--ann", type=Path, default=data / "person_keypoints_subset.json")
    parser.add_argument("--images", type=Path, default=data / "images")
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=None, help="Write the numbers as JSON.")
    args = parser.parse_args()

    ground_truth = json.loads(args.ann.read_text())
    by_image: dict[int, list[np.ndarray]] = {}
    for ann in ground_truth["annotations"]:
        if ann.get("num_keypoints", 0) > 0 and not ann.get("iscrowd", 0):
            keypoints = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
            by_image.setdefault(ann["image_id"], []).append(keypoints)
    images = [im for im in ground_truth["images"] if im["id"] in by_image]

    rows = []
    for targets in ("official", "sub-pixel"):
        network = IdealNetwork(targets)
        for decoding in ("official", "occlupose"):
            for convention in ("official", "centres"):
                defaults = DecodeSettings.official() if decoding == "official" else DecodeSettings()
                settings = DecodeSettings(
                    **{**defaults.__dict__, "pixel_convention": convention, "max_results": None}
                )
                options = PredictorOptions(
                    input_size=args.input_size, decoding=decoding, decode=settings
                )
                predictor = Predictor(network, COCO_KEYPOINTS, options)
                errors, people_per_image = [], {}
                for entry in images:
                    image = read_image(args.images / entry["file_name"])
                    truth = np.stack(by_image[entry["id"]])
                    network.people = truth
                    network.canvases = canvases(image.shape[:2], decoding, args.input_size)
                    people = predictor.predict_image(image)
                    people_per_image[entry["id"]] = people
                    errors.append(joint_errors(people, truth))
                error = np.concatenate(errors)
                report = evaluate_people(people_per_image, ground_truth, COCO_KEYPOINTS)
                rows.append(
                    {
                        "targets": targets,
                        "decoding": decoding,
                        "pixel_convention": convention,
                        "joints": int(len(error)),
                        "bias_x": float(error[:, 0].mean()),
                        "bias_y": float(error[:, 1].mean()),
                        "rms": float(np.sqrt((error**2).sum(axis=1).mean())),
                        "AP": float(report["metrics"]["AP"]),
                    }
                )

    table = Table(title=f"Ideal networks on {len(images)} photos ({args.ann.name}), image pixels")
    for column in ("targets", "decoding", "convention", "joints", "bias x", "bias y", "RMS", "AP"):
        table.add_column(column, justify="left" if column in ("targets", "decoding") else "right")
    for row in rows:
        table.add_row(
            row["targets"],
            row["decoding"],
            row["pixel_convention"],
            str(row["joints"]),
            f"{row['bias_x']:+.2f}",
            f"{row['bias_y']:+.2f}",
            f"{row['rms']:.2f}",
            f"{row['AP']:.3f}",
        )
    Console(width=120).print(table)
    if args.out:
        atomic_write_json(args.out, {"ann": str(args.ann), "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
