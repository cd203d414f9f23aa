"""Running a Predictor over an annotated dataset, optionally under controlled occlusion."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from occlupose.data.image_io import ImageReadError, read_image
from occlupose.inference.predictor import Predictor

__all__ = ["dataset_images", "predict_dataset"]

logger = logging.getLogger(__name__)


def dataset_images(ground_truth: Mapping, limit: int | None = None) -> list[dict]:
    """The image entries :func:`predict_dataset` runs on: sorted by id, the first ``limit``."""
    return sorted(ground_truth.get("images", []), key=lambda im: im["id"])[:limit]


def predict_dataset(
    predictor: Predictor,
    ground_truth: Mapping,
    image_dir: str | os.PathLike,
    *,
    occlusion_rate: float | None = None,
    seed: int = 0,
    limit: int | None = None,
    on_image: Callable[[], None] | None = None,
    on_occlusion: Callable[[list[dict], np.ndarray, tuple[int, int]], None] | None = None,
) -> tuple[list[dict], list[tuple[Path, str]]]:
    """COCO keypoint results of ``predictor`` on every image of a COCO-format dataset.

    Args:
        predictor: the model to run.
        ground_truth: the parsed annotation file (``images``, ``annotations``).
        image_dir: folder with the images' ``file_name``.
        occlusion_rate: if given, occluders cover this fraction of each person's
            visible keypoints first (:func:`occlupose.evaluation.controlled_occlusion.
            occlude_image`, seeded per image so every model sees the same images);
            the ground truth stays as it is.
        seed: seed of the controlled occlusion.
        limit: only the first ``limit`` images (by id).
        on_image: called after each image (progress bars).
        on_occlusion: called with each occluded image's annotations, the ``(N, J)``
            covered-keypoint mask ``occlude_image`` returned and the image's
            ``(height, width)``.

    Returns:
        ``(results, failures)``: COCO result dicts (``image_id``, ``category_id``,
        ``keypoints``, ``score``), and the images that could not be read with the reason.
    """
    from occlupose.evaluation.controlled_occlusion import occlude_image

    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    by_image: dict[int, list[dict]] = {}
    for ann in ground_truth.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    category_id = (ground_truth.get("categories") or [{"id": 1}])[0]["id"]
    images = dataset_images(ground_truth, limit)

    results, failures = [], []
    for entry in images:
        path = image_dir / entry["file_name"]
        try:
            image = read_image(path)
        except ImageReadError as error:
            failures.append((path, error.reason if hasattr(error, "reason") else str(error)))
            logger.warning("skipped %s", error)
        else:
            if occlusion_rate:
                annotations = by_image.get(entry["id"], [])
                image, hidden = occlude_image(
                    image,
                    annotations,
                    occlusion_rate,
                    seed,
                    predictor.keypoint_set,
                    image_id=entry["id"],
                )
                if on_occlusion is not None:
                    on_occlusion(annotations, hidden, image.shape[:2])
            for person in predictor.predict_image(np.ascontiguousarray(image)):
                results.append(person.to_coco(entry["id"], category_id))
        if on_image is not None:
            on_image()
    return results, failures
