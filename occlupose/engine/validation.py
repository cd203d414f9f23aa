"""Validation inside training: decode a batch of network outputs into people, evaluate.

The network sees each validation image fitted into its square input (no test-time
augmentation); :func:`decode_batch` merges each image's outputs and decodes them with
the one decoder every caller uses (:func:`occlupose.decode.merge_passes`,
:func:`occlupose.decode.decode_people`), and :class:`PoseValidator` scores the people
with :mod:`occlupose.evaluation` (COCO / CrowdPose AP and AP per occlusion bin). This
is a fast proxy for the full evaluation of :mod:`occlupose.inference` (multi-scale,
flip), good for model selection.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from occlupose.decode import DecodeSettings, NetworkPass, PosePrior, decode_people, merge_passes
from occlupose.structures import KeypointSet, PoseOutputs
from occlupose.structures.person import Person
from occlupose.utils.io import atomic_write_json

__all__ = [
    "PoseValidator",
    "decode_batch",
    "metrics_for_logging",
    "predict_people",
]


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

    Each image's outputs are one :class:`~occlupose.decode.NetworkPass`, merged on the
    finest output map (:func:`~occlupose.decode.merge_passes`: the 1/4 heatmaps
    upsampled and averaged with the 1/2 ones, as HigherHRNet does) and decoded by
    :func:`~occlupose.decode.decode_people`, as the Predictor decodes.

    Args:
        outputs: the network outputs for B images.
        matrices: (B, 3, 3) original image -> input matrices of the samples.
        image_ids: B image ids.
        keypoint_set: the keypoints the network predicts.
        input_size: side of the network input.
        settings: decoding settings.
        pose_prior: completes the people found, or None.

    Returns:
        image id -> people, as the settings order them.
    """
    outputs = PoseOutputs(*(_detach(value) for value in outputs))
    finest = tuple(outputs.final_heatmaps[-1].shape[-2:])
    stride = input_size / finest[0]
    to_image = np.linalg.inv(matrices.detach().cpu().double().numpy())
    ids = [int(i) for i in (image_ids.tolist() if isinstance(image_ids, Tensor) else image_ids)]
    people_per_image: dict[int, list[Person]] = {}
    for b, image_id in enumerate(ids):
        one = outputs.subset(slice(b, b + 1))
        maps = merge_passes([NetworkPass(one, input_size)], finest, stride)
        people_per_image[image_id] = decode_people(
            maps, keypoint_set, settings, to_image=to_image[b], pose_prior=pose_prior
        )
    return people_per_image


def _detach(value):
    if isinstance(value, list):
        return [v.detach() for v in value]
    return None if value is None else value.detach()


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
