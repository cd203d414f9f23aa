"""The decoder: merged network maps in, people in image pixels out.

One entry point for every caller (the Predictor, validation during training,
``occlupose eval``): :func:`decode_people` groups one image's
:class:`~occlupose.decode.aggregate.MergedMaps` with the grouper the settings name
(:func:`group_people`), optionally completes people with a pose prior, and maps the
joints back to the original image. :class:`DecodeSettings` holds every choice,
with the defaults in one place; :meth:`DecodeSettings.official` is HigherHRNet's
published test configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from occlupose.decode.aggregate import MergedMaps
from occlupose.decode.fragments import join_fragments
from occlupose.decode.limbs import group_by_limbs
from occlupose.decode.tags import group_by_tags
from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.person import Person


class PeopleCompleter(Protocol):
    """What the decoder completes people with: :class:`~occlupose.decode.PosePrior` or
    :class:`~occlupose.decode.PoseCompleter`. ``complete_people`` takes and returns
    (N, J, 3) ``x, y, score`` (score <= 0: missing), filling missing joints with a
    positive score below every found one."""

    def complete_people(self, people: np.ndarray) -> np.ndarray: ...


__all__ = [
    "DecodeSettings",
    "decode_people",
    "group_people",
    "pixel_convention_for",
    "resolve_grouping",
]


@dataclass(frozen=True)
class DecodeSettings:
    """How merged maps become people.

    Attributes:
        grouping: ``"tags"`` (associative embedding, :func:`~occlupose.decode.group_by_tags`),
            ``"limbs"`` (limb fields, :func:`~occlupose.decode.group_by_limbs`) or ``"auto"``
            (limbs when the model has a limb head, else tags).
        detection_threshold: minimum heatmap peak of a joint candidate (exclusive).
        tag_threshold: maximum tag distance to join a person (tags only).
        max_people: peaks kept per joint type and people a candidate may join (the
            groupers' ``max_people``).
        nms_kernel: odd max-pool window of peak detection, in map pixels.
        refine: fill missing joints from the heatmaps and the person's tag (tags only).
        max_results: people returned at most (after sorting), None for all.
        min_score: people scoring lower are dropped.
        sort_by_score: best first; else in the order the grouping created them (the
            official code's order).
        join_fragments: with limb grouping and a completer, merge the fragments of a
            person whose joints lie where the completer places its missing ones
            (:func:`~occlupose.decode.join_fragments`: limb fields cannot connect joints
            across a hidden limb); tag grouping and decoding without a completer ignore it.
        join_similarity: the keypoint similarity each joint of a fragment needs to its
            completed position to join, in (0, 1].
        pixel_convention: how grouped map coordinates reach the image. The groupers
            report a peak on map pixel ``c`` at ``c + 0.5 (+-0.25)`` (HigherHRNet's
            corner convention). ``"centres"`` subtracts that half pixel (pixel centres at
            integers everywhere, as occlupose's sub-pixel training targets are);
            ``"official"`` maps the coordinate as it is, as HigherHRNet's
            ``get_final_preds`` does (right for networks trained on its ``int()``-rounded
            targets, whose peaks sit half a pixel early on average). Joints that were not
            found are ``(0, 0, 0)`` with ``"centres"``; ``"official"`` maps them like
            found ones (heatmap point (0, 0), score 0), as the official results file has.
    """

    grouping: Literal["auto", "limbs", "tags"] = "auto"
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    nms_kernel: int = 5
    refine: bool = True
    max_results: int | None = 30
    min_score: float = 0.0
    sort_by_score: bool = True
    join_fragments: bool = True
    join_similarity: float = 0.1
    pixel_convention: Literal["centres", "official"] = "centres"

    def __post_init__(self) -> None:
        if self.grouping not in ("auto", "tags", "limbs"):
            raise ValueError(f"grouping must be auto, tags or limbs, got {self.grouping!r}")
        if self.pixel_convention not in ("centres", "official"):
            raise ValueError(
                f"pixel_convention must be centres or official, got {self.pixel_convention!r}"
            )
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be a positive odd integer, got {self.nms_kernel}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if not 0.0 < self.join_similarity <= 1.0:
            raise ValueError(f"join_similarity must be in (0, 1], got {self.join_similarity}")
        if self.max_results is not None and self.max_results < 0:
            raise ValueError(f"max_results must be >= 0 or None, got {self.max_results}")

    @classmethod
    def official(cls, **changes) -> DecodeSettings:
        """HigherHRNet's published test settings (``valid.py``, COCO and CrowdPose).

        Tag grouping with detection threshold 0.1, tag threshold 1.0, 30 people, NMS
        kernel 5, adjust and refine; every grouped person is kept, in creation order,
        and coordinates follow the official convention. ``changes`` override fields.
        """
        settings = {
            "grouping": "tags",
            "max_results": None,
            "sort_by_score": False,
            "pixel_convention": "official",
        }
        return cls(**{**settings, **changes})


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
    pose_prior: PeopleCompleter | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group one image's heatmap peaks into people.

    Args:
        heatmaps: (J, H, W).
        keypoint_set: the joints' names, limbs and grouping order.
        grouping: ``"limbs"`` (:func:`group_by_limbs` on ``limbs``, (2L, H, W)) or
            ``"tags"`` (:func:`group_by_tags` on ``tags``, (J, H, W) or (J, H, W, D)).
        detection_threshold, max_people, nms_kernel: peak detection.
        tag_threshold, refine: tag grouping only.
        pose_prior: fills the joints grouping left out (a :class:`PosePrior`'s
            best-fitting reference pose or a learned :class:`PoseCompleter`); person
            scores are unchanged.

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
        people = pose_prior.complete_people(people)
    return people, scores


def pixel_convention_for(heatmap_centres: str) -> Literal["centres", "official"]:
    """The pixel convention that decodes a network trained on these heatmap targets.

    ``"integer"`` (HigherHRNet's ``int()``-rounded Gaussian centres: peaks half a pixel
    early on average, which the official +0.5 undoes) -> ``"official"``; ``"subpixel"``
    (occlupose's exact centres) -> ``"centres"``. ``benchmarks/decode_bias.py`` measures
    both on ideal networks.
    """
    conventions = {"integer": "official", "subpixel": "centres"}
    if heatmap_centres not in conventions:
        raise ValueError(f"heatmap_centres must be integer or subpixel, got {heatmap_centres!r}")
    return conventions[heatmap_centres]


def decode_people(
    maps: MergedMaps,
    keypoint_set: KeypointSet,
    settings: DecodeSettings = DecodeSettings(),
    *,
    to_image: np.ndarray,
    pose_prior: PeopleCompleter | None = None,
) -> list[Person]:
    """People in one image from its merged maps, in original-image pixels.

    Args:
        maps: the image's merged maps (:func:`~occlupose.decode.merge_passes` or
            :func:`~occlupose.decode.merge_passes_official`).
        keypoint_set: the joints the network predicts.
        settings: see :class:`DecodeSettings`; ``"auto"`` grouping picks limbs when
            ``maps`` has limb fields.
        to_image: 3x3 (or 2x3) matrix from network-input pixels (of the canvas the maps'
            ``stride`` refers to) to original-image pixels.
        pose_prior: completes the joints grouping left out (person scores unchanged);
            the people returned mark them in ``Person.completed``. With limb grouping it
            also joins a person's fragments first (``settings.join_fragments``).

    Returns:
        The people, ordered and filtered as the settings say; joints that were not
        found have score 0 (their position: see ``DecodeSettings.pixel_convention``).
    """
    grouping = resolve_grouping(
        settings.grouping, has_tags=maps.tags is not None, has_limbs=maps.limbs is not None
    )
    people, scores = group_people(
        maps.heatmaps.detach().float().cpu().numpy(),
        keypoint_set,
        grouping=grouping,
        tags=maps.tags.detach().float().cpu().numpy() if grouping == "tags" else None,
        limbs=maps.limbs.detach().float().cpu().numpy() if grouping == "limbs" else None,
        detection_threshold=settings.detection_threshold,
        tag_threshold=settings.tag_threshold,
        max_people=settings.max_people,
        nms_kernel=settings.nms_kernel,
        refine=settings.refine,
    )
    if pose_prior is not None and len(people) and grouping == "limbs" and settings.join_fragments:
        # Limb fields cannot connect joints across a hidden limb; the completer can.
        people, scores = join_fragments(
            people, pose_prior, keypoint_set.sigmas, min_similarity=settings.join_similarity
        )
    found = people[..., 2] > 0
    if pose_prior is not None and len(people):
        people = pose_prior.complete_people(people)
    completed = (people[..., 2] > 0) & ~found
    order = np.arange(len(scores))
    if settings.sort_by_score:
        order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= settings.min_score]
    if settings.max_results is not None:
        order = order[: settings.max_results]
    people, scores, completed = people[order], scores[order], completed[order]

    xy = people[..., :2].astype(np.float64) * maps.stride
    if settings.pixel_convention == "centres":
        # Map pixel c spans input pixels [k c - 0.5, k (c + 1) - 0.5]: the grouper's
        # c + 0.5 is the input position k (c + 0.5) - 0.5 of the map pixel's centre.
        xy -= 0.5
    matrix = np.asarray(to_image, np.float64)[:2]
    people = people.copy()
    people[..., :2] = xy @ matrix[:, :2].T + matrix[:, 2]
    if settings.pixel_convention == "centres":
        people[people[..., 2] <= 0] = 0.0
    return [
        Person(p, float(s), completed=c) for p, s, c in zip(people, scores, completed, strict=True)
    ]
