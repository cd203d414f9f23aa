"""Validation inside training: decode a batch of network outputs into people, evaluate.

The network sees each validation image fitted into its square input (no test-time
augmentation); :func:`decode_batch` turns the batch outputs into
:class:`~occlupose.structures.person.Person` lists in original-image pixels, and
:class:`PoseValidator` scores them with :mod:`occlupose.evaluation` (COCO / CrowdPose
AP and AP per occlusion bin). This is a fast proxy for the full evaluation of
:mod:`occlupose.inference` (multi-scale, flip), good for model selection.

Coordinates: heatmap pixel ``u`` of an output map of stride ``k`` covers input pixels
``[k u - 0.5, k (u + 1) - 0.5]`` (pixel centres at integers, see
:mod:`occlupose.data.augment`), so its centre is input pixel ``k (u + 0.5) - 0.5``; the
sample's ``matrix`` (original -> input) is inverted to reach the original image.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from occlupose.decode import (
    PosePrior,
    aggregate_heatmaps,
    group_people,
    resize_maps,
    resolve_grouping,
)
from occlupose.models.hrgr import PoseOutputs
from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.person import Person
from occlupose.utils.io import atomic_write_json

__all__ = [
    "DecodeSettings",
    "PoseValidator",
    "decode_batch",
    "heatmap_to_image",
    "metrics_for_logging",
    "predict_people",
]


@dataclass(frozen=True)
class DecodeSettings:
    """How validation groups joints into people.

    Attributes:
        grouping: ``"tags"`` (associative embedding, :func:`occlupose.decode.group_by_tags`),
            ``"limbs"`` (limb fields, :func:`occlupose.decode.group_by_limbs`) or ``"auto"``
            (limbs when the model has a limb head, else tags).
        detection_threshold: minimum heatmap peak for a joint candidate.
        tag_threshold: maximum tag distance to join a person (tags only).
        max_people: people per image.
        nms_kernel: odd max-pool window of peak detection (at the final resolution).
        refine: fill in missing joints from the heatmaps (tags only).
        pose_prior: fill the joints grouping left out from the training poses: training
            builds a :class:`occlupose.decode.PosePrior` from the training annotations,
            decodes validation with it and saves it with the weights (the Predictor then
            uses it).
    """

    grouping: str = "auto"
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    nms_kernel: int = 5
    refine: bool = True
    pose_prior: bool = False

    def __post_init__(self) -> None:
        if self.grouping not in ("auto", "tags", "limbs"):
            raise ValueError(f"grouping must be auto, tags or limbs, got {self.grouping!r}")


def heatmap_to_image(points: np.ndarray, stride: float, matrix: np.ndarray) -> np.ndarray:
    """Map points from heatmap pixels to original-image pixels.

    Args:
        points: (..., 2) ``x, y`` in heatmap pixels (pixel centres at integers).
        stride: input pixels per heatmap pixel.
        matrix: (3, 3) original image -> network input (the sample's ``matrix``).

    Returns:
        (..., 2) float64 points in original-image pixels.
    """
    points = np.asarray(points, np.float64)
    inputs = stride * (points + 0.5) - 0.5
    inverse = np.linalg.inv(np.asarray(matrix, np.float64))
    return inputs @ inverse[:2, :2].T + inverse[:2, 2]


def decode_batch(
    outputs: PoseOutputs,
    matrices: Tensor,
    image_ids: Tensor | Sequence[int],
    keypoint_set: KeypointSet,
    *,
    input_size: int,
    settings: DecodeSettings = DecodeSettings(),
    pose_prior: PosePrior | None = None,
) -> dict[int, list[Person]]:
    """Decode a batch of network outputs into people in original-image pixels.

    The final heatmaps (completed ones when the model has a generator) are aggregated
    over resolutions as HigherHRNet does (the 1/4 map upsampled to 1/2 and averaged with
    the 1/2 map, :func:`occlupose.decode.aggregate_heatmaps`); tags or limb fields are
    resized to the same resolution.

    Args:
        outputs: the network outputs for B images.
        matrices: (B, 3, 3) original image -> input matrices of the samples.
        image_ids: B image ids.
        keypoint_set: the keypoints the network predicts.
        input_size: side of the network input (gives each map's stride).
        settings: decoding settings.
        pose_prior: completes the people found, or None.

    Returns:
        image id -> people, best first.
    """
    heatmaps = aggregate_heatmaps([h.detach().float() for h in outputs.final_heatmaps])
    size = tuple(heatmaps.shape[-2:])
    grouping = resolve_grouping(
        settings.grouping, has_tags=outputs.tags is not None, has_limbs=outputs.limbs is not None
    )
    if grouping == "tags":
        extra = resize_maps(outputs.tags.detach().float(), size)
        if extra.shape[1] == 1:  # one shared tag map
            extra = extra.expand_as(heatmaps)
    else:
        # Unit direction vectors: resizing the field keeps its meaning.
        extra = resize_maps(outputs.limbs.detach().float(), size)

    stride = input_size / size[1]
    heatmaps_np = heatmaps.cpu().numpy()
    extra_np = extra.cpu().numpy()
    matrices_np = matrices.detach().cpu().numpy()
    ids = [int(i) for i in (image_ids.tolist() if isinstance(image_ids, Tensor) else image_ids)]
    people_per_image: dict[int, list[Person]] = {}
    for b, image_id in enumerate(ids):
        people, scores = group_people(
            heatmaps_np[b],
            keypoint_set,
            grouping=grouping,
            tags=extra_np[b] if grouping == "tags" else None,
            limbs=extra_np[b] if grouping == "limbs" else None,
            detection_threshold=settings.detection_threshold,
            tag_threshold=settings.tag_threshold,
            max_people=settings.max_people,
            nms_kernel=settings.nms_kernel,
            refine=settings.refine,
            pose_prior=pose_prior,
        )
        # Both groupers report HigherHRNet's pixel-corner coordinates.
        people[..., :2] -= 0.5
        people_per_image[image_id] = _to_people(
            people, scores, stride, matrices_np[b], settings.max_people
        )
    return people_per_image


@torch.no_grad()
def predict_people(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    keypoint_set: KeypointSet,
    *,
    settings: DecodeSettings = DecodeSettings(),
    batch_size: int = 8,
    num_workers: int = 0,
    pose_prior: PosePrior | None = None,
) -> dict[int, list[Person]]:
    """Run ``model`` (in eval mode) over a validation ``BottomUpPoseDataset`` and decode.

    The same procedure as validation inside training, for use outside a Trainer
    (benchmarks, quick checks). The model's train/eval mode is restored afterwards.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    people: dict[int, list[Person]] = {}
    try:
        for batch in loader:
            images = batch["image"].to(device)
            people.update(
                decode_batch(
                    model(images),
                    batch["matrix"],
                    batch["image_id"],
                    keypoint_set,
                    input_size=images.shape[-1],
                    settings=settings,
                    pose_prior=pose_prior,
                )
            )
    finally:
        model.train(was_training)
    return people


def _to_people(
    people: np.ndarray, scores: np.ndarray, stride: float, matrix: np.ndarray, max_people: int
) -> list[Person]:
    found = []
    order = np.argsort(-scores, kind="stable")[:max_people]
    for n in order:
        keypoints = people[n].astype(np.float64).copy()
        keypoints[:, :2] = heatmap_to_image(keypoints[:, :2], stride, matrix)
        found.append(Person(keypoints, max(float(scores[n]), 0.0)))
    return found


def metrics_for_logging(report: Mapping[str, Any], prefix: str = "val/") -> dict[str, float]:
    """Flatten an :func:`~occlupose.evaluation.evaluate_results` report into scalars.

    ``{prefix}AP``, ``{prefix}AP50``, ... for the dataset's metrics, and
    ``{prefix}AP_<binning>/<bin>`` for AP per bin (bins without people are left out).
    """
    logged = {f"{prefix}{name}": float(value) for name, value in report["metrics"].items()}
    for binning, rows in report.get("bins", {}).items():
        for row in rows:
            if row.get("AP") is None:
                continue
            logged[f"{prefix}AP_{binning}/{_bin_name(row['label'])}"] = float(row["AP"])
    # pycocotools reports -1 for a metric without ground truth (e.g. no large people).
    return {k: v for k, v in logged.items() if math.isfinite(v) and v >= 0}


def _bin_name(label: str) -> str:
    label = label.replace("≥", "ge").replace(">", "gt")
    return re.sub(r"[^0-9A-Za-z.]+", "_", label).strip("_")


class PoseValidator:
    """Scores validation people against COCO-format ground truth.

    Args:
        ground_truth: COCO-format annotation file (or parsed dict) of the validation set.
        keypoint_set: the dataset's keypoints (its name selects the COCO or CrowdPose
            protocol; any other set uses COCO's with its own OKS sigmas).
        image_ids: evaluate only these images (e.g. a validation subset), or None for all.
        settings: decoding settings used by the training module.
        report_dir: where to write each validation's full report as JSON, or None.
    """

    def __init__(
        self,
        ground_truth: str | os.PathLike | Mapping[str, Any],
        keypoint_set: KeypointSet,
        *,
        image_ids: Sequence[int] | None = None,
        settings: DecodeSettings = DecodeSettings(),
        report_dir: str | os.PathLike | None = None,
    ) -> None:
        if isinstance(ground_truth, str | os.PathLike):
            from occlupose.evaluation.inputs import load_json

            self.name = str(ground_truth)
            ground_truth = load_json(ground_truth)
        else:
            self.name = "validation ground truth"
        if image_ids is not None:
            ground_truth = _subset(ground_truth, set(int(i) for i in image_ids))
        self.ground_truth = ground_truth
        self.keypoint_set = keypoint_set
        self.settings = settings
        self.report_dir = Path(report_dir) if report_dir is not None else None

    def evaluate(
        self, people_per_image: Mapping[int, Sequence[Person]], *, tag: str | None = None
    ) -> dict[str, Any]:
        """Evaluate; write the report as ``report_dir/<tag>.json`` when both are set."""
        from occlupose.evaluation import evaluate_people

        if not any(people_per_image.values()):
            report = self._empty_report()
        else:
            report = evaluate_people(
                people_per_image, self.ground_truth, self.keypoint_set, gt_name=self.name
            )
        if self.report_dir is not None and tag is not None:
            atomic_write_json(self.report_dir / f"{tag}.json", report, indent=1)
        return report

    def _empty_report(self) -> dict[str, Any]:
        # pycocotools cannot index an empty results list: an untrained network finds no one.
        return {"metrics": {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}, "bins": {}}


def _subset(ground_truth: Mapping[str, Any], image_ids: set[int]) -> dict[str, Any]:
    subset = dict(ground_truth)
    subset["images"] = [i for i in ground_truth["images"] if int(i["id"]) in image_ids]
    subset["annotations"] = [
        a for a in ground_truth["annotations"] if int(a["image_id"]) in image_ids
    ]
    return subset
