"""Builders of small synthetic ground truth and results with known answers.

Tests get them through the ``scenes`` fixture (``scenes.annotation(...)`` etc.): the
suite runs with ``--import-mode=importlib``, where test modules cannot import helpers.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from occlupose.structures.keypoint_set import COCO_KEYPOINTS, KeypointSet


def person_keypoints(x0: float, y0: float, w: float, h: float, num_joints: int) -> np.ndarray:
    """(J, 2) distinct keypoint positions spread over the box ``x0, y0, w, h``."""
    j = np.arange(num_joints)
    x = x0 + w * (0.1 + 0.8 * ((j * 7) % num_joints) / max(num_joints - 1, 1))
    y = y0 + h * (0.05 + 0.9 * j / max(num_joints - 1, 1))
    return np.stack([x, y], axis=1)


def make_annotation(
    ann_id: int,
    image_id: int,
    box: tuple[float, float, float, float],
    keypoint_set: KeypointSet = COCO_KEYPOINTS,
    visibility: np.ndarray | None = None,
    *,
    with_area: bool = True,
) -> dict:
    """A COCO person annotation with keypoints laid out in its box (all v=2 by default)."""
    n = keypoint_set.num_keypoints
    xy = person_keypoints(*box, n)
    v = np.full(n, 2) if visibility is None else np.asarray(visibility)
    kps = np.concatenate([xy, v[:, None]], axis=1)
    kps[v == 0, :2] = 0
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": list(box),
        "keypoints": [float(t) for t in kps.reshape(-1)],
        "num_keypoints": int((v > 0).sum()),
        "iscrowd": 0,
    }
    if with_area:
        ann["area"] = float(box[2] * box[3])
    return ann


def make_ground_truth(
    annotations: list[dict],
    image_ids: list[int],
    keypoint_set: KeypointSet = COCO_KEYPOINTS,
    crowd_index: dict[int, float] | None = None,
) -> dict:
    images = []
    for i in image_ids:
        image = {"id": i, "file_name": f"{i:012d}.jpg", "width": 1000, "height": 800}
        if crowd_index is not None:
            image["crowdIndex"] = crowd_index[i]
        images.append(image)
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(keypoint_set.keypoint_names),
        "skeleton": [],
    }
    return {"images": images, "annotations": annotations, "categories": [category]}


def as_result(ann: dict, score: float = 1.0) -> dict:
    """The annotation as a perfect detection (labelled keypoints get score 1)."""
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
    kps[:, 2] = (kps[:, 2] > 0).astype(float)
    return {
        "image_id": ann["image_id"],
        "category_id": ann["category_id"],
        "keypoints": kps.reshape(-1).tolist(),
        "score": score,
    }


def displaced(ann: dict, ks: float | np.ndarray, sigmas, area: float, score: float = 1.0) -> dict:
    """A detection whose keypoint j has similarity exactly ``ks[j]`` with the annotation.

    ``ks = exp(-d² / (2 area (2σ)²))`` solved for the distance ``d``; keypoints move
    along +x. With one ``ks`` for all joints the OKS equals ``ks``.
    """
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
    ks = np.broadcast_to(np.asarray(ks, dtype=np.float64), (len(kps),))
    variances = (2 * np.asarray(sigmas)) ** 2
    distance = np.sqrt(-2.0 * area * variances * np.log(ks))
    kps[:, 0] += distance
    kps[:, 2] = 1.0
    return {
        "image_id": ann["image_id"],
        "category_id": 1,
        "keypoints": kps.reshape(-1).tolist(),
        "score": score,
    }


@pytest.fixture(scope="session")
def scenes() -> SimpleNamespace:
    return SimpleNamespace(
        person_keypoints=person_keypoints,
        annotation=make_annotation,
        ground_truth=make_ground_truth,
        as_result=as_result,
        displaced=displaced,
    )
