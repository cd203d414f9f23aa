"""One entry point over both groupers, so training-time validation and the Predictor
decode identically."""

from __future__ import annotations

from typing import Literal

import numpy as np

from occlupose.decode.limbs import group_by_limbs
from occlupose.decode.prior import PosePrior
from occlupose.decode.tags import group_by_tags
from occlupose.structures.keypoint_set import KeypointSet

__all__ = ["group_people", "resolve_grouping"]


def resolve_grouping(grouping: str, *, has_tags: bool, has_limbs: bool) -> str:
    """``"limbs"`` or ``"tags"`` for a requested grouping and the heads a model has.

    ``"auto"`` picks limbs when there are limb fields, else tags. Asking for a grouping
    whose head is missing raises ``ValueError``.
    """
    if grouping == "auto":
        grouping = "limbs" if has_limbs else "tags"
    if grouping == "limbs" and not has_limbs:
        raise ValueError("limb grouping needs a model with a limb-field head (num_limbs > 0)")
    if grouping == "tags" and not has_tags:
        raise ValueError("tag grouping needs a model with a tag head (with_tags=True)")
    if grouping not in ("limbs", "tags"):
        raise ValueError(f"grouping must be auto, limbs or tags, got {grouping!r}")
    return grouping


def group_people(
    heatmaps: np.ndarray,
    keypoint_set: KeypointSet,
    *,
    grouping: Literal["limbs", "tags"],
    tags: np.ndarray | None = None,
    limbs: np.ndarray | None = None,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 5,
    refine: bool = True,
    pose_prior: PosePrior | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group one image's heatmap peaks into people.

    Args:
        heatmaps: (J, H, W).
        keypoint_set: the joints' names, limbs and grouping order.
        grouping: ``"limbs"`` (:func:`group_by_limbs` on ``limbs``, (2L, H, W)) or
            ``"tags"`` (:func:`group_by_tags` on ``tags``, (J, H, W) or (J, H, W, D)).
        detection_threshold, max_people, nms_kernel: peak detection.
        tag_threshold, refine: tag grouping only.
        pose_prior: fills the joints grouping left out from the best-fitting reference
            pose (:meth:`PosePrior.complete`); person scores are unchanged.

    Returns:
        ``(people, scores)`` as the groupers return them: (N, J, 3) ``x, y, score`` in
        heatmap pixels (HigherHRNet's convention, see :mod:`occlupose.decode`), best first.
    """
    if grouping == "limbs":
        if limbs is None:
            raise ValueError("limb grouping needs the limb fields")
        people, scores = group_by_limbs(
            heatmaps,
            limbs,
            keypoint_set,
            detection_threshold=detection_threshold,
            max_people=max_people,
            nms_kernel=nms_kernel,
        )
    elif grouping == "tags":
        if tags is None:
            raise ValueError("tag grouping needs the tag maps")
        people, scores = group_by_tags(
            heatmaps,
            tags,
            detection_threshold=detection_threshold,
            tag_threshold=tag_threshold,
            max_people=max_people,
            nms_kernel=nms_kernel,
            refine=refine,
            keypoint_set=keypoint_set,
        )
    else:
        raise ValueError(f"grouping must be limbs or tags, got {grouping!r}")
    if pose_prior is not None and len(people):
        people = pose_prior.complete(people)
    return people, scores
