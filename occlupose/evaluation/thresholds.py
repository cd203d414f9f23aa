"""Precision and recall of the people and joints a picture shows, per score threshold.

AP ranks every person a model returns; an overlay shows only the people and joints
scoring above a threshold. These functions measure what a threshold keeps, to choose it
on labelled data::

    matches = match_people(ground_truth, results, "coco")
    person_threshold_sweep(matches, [0.05, 0.1, 0.2])   # precision / recall / F1 per row
    joint_threshold_sweep(matches, [0.1, 0.2], min_score=0.1)

A person is right when it matches a ground-truth person at OKS >= 0.5, one to one and
greedily in order of score, as COCO matches (so the people kept at any threshold are
matched exactly as COCO matches them). Ground-truth people without a labelled joint,
and crowd regions, are left out (COCO ignores them). A shown joint of a matched person
is right when its keypoint similarity to the ground-truth joint is at least 0.5; joints
the ground truth does not label (v=0) are left out of both precision and recall.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occlupose.structures.keypoint_set import KeypointSet, get_keypoint_set

__all__ = [
    "PersonMatches",
    "joint_threshold_sweep",
    "keypoint_similarity",
    "match_people",
    "person_threshold_sweep",
]


def keypoint_similarity(
    predicted: np.ndarray, truth: np.ndarray, area: float, sigmas: np.ndarray
) -> np.ndarray:
    """COCO's per-joint similarity exp(-d^2 / (2 area (2 sigma)^2)) of (K, >=2) arrays."""
    squared = ((predicted[:, :2] - truth[:, :2]) ** 2).sum(axis=1)
    return np.exp(-squared / (2 * (area + np.spacing(1)) * (2 * sigmas) ** 2))


@dataclass(frozen=True)
class PersonMatches:
    """Every predicted person matched against the ground truth once, at any threshold.

    Attributes:
        scores: (P,) person scores.
        matched: (P,) whether each prediction matched a ground-truth person.
        num_ground_truth: ground-truth people (the denominator of recall).
        joint_scores: (P, K) joint scores of each prediction.
        joint_labelled: (P, K) whether the matched ground-truth joint is labelled
            (False for unmatched predictions).
        joint_right: (P, K) whether the joint is within keypoint similarity
            ``joint_similarity`` of its labelled ground-truth joint.
    """

    scores: np.ndarray
    matched: np.ndarray
    num_ground_truth: int
    joint_scores: np.ndarray
    joint_labelled: np.ndarray
    joint_right: np.ndarray


def match_people(
    ground_truth: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    keypoint_set: str | KeypointSet = "coco",
    *,
    oks_threshold: float = 0.5,
    joint_similarity: float = 0.5,
) -> PersonMatches:
    """Match COCO keypoint results (all of them, any score) to COCO ground truth.

    Args:
        ground_truth: a COCO keypoint ground-truth dict (``annotations`` with
            ``image_id``, ``keypoints``, ``area``).
        results: COCO keypoint results (``image_id``, ``keypoints``, ``score``).
        keypoint_set: the keypoints' OKS constants (a name or a KeypointSet).
        oks_threshold: the OKS at which a prediction matches a ground-truth person.
        joint_similarity: the keypoint similarity at which a joint is right.
    """
    kps = get_keypoint_set(keypoint_set) if isinstance(keypoint_set, str) else keypoint_set
    sigmas = np.asarray(kps.sigmas, dtype=np.float64)
    num_joints = len(sigmas)
    truth_per_image: dict[Any, list[tuple[np.ndarray, float]]] = {}
    for ann in ground_truth.get("annotations", []):
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(num_joints, 3)
        if ann.get("iscrowd") or not (keypoints[:, 2] > 0).any():
            continue
        truth_per_image.setdefault(ann["image_id"], []).append((keypoints, float(ann["area"])))

    order = sorted(range(len(results)), key=lambda i: -float(results[i]["score"]))
    scores = np.array([float(results[i]["score"]) for i in order])
    predicted = np.array(
        [np.asarray(results[i]["keypoints"], dtype=np.float64) for i in order]
    ).reshape(len(order), num_joints, 3)
    matched = np.zeros(len(order), dtype=bool)
    labelled = np.zeros((len(order), num_joints), dtype=bool)
    right = np.zeros((len(order), num_joints), dtype=bool)
    taken: dict[Any, set[int]] = {}
    for rank, index in enumerate(order):
        image_id = results[index]["image_id"]
        candidates = truth_per_image.get(image_id, [])
        used = taken.setdefault(image_id, set())
        best, best_oks, best_similarity = -1, oks_threshold, None
        for g, (truth, area) in enumerate(candidates):
            if g in used:
                continue
            visible = truth[:, 2] > 0
            similarity = keypoint_similarity(predicted[rank], truth, area, sigmas)
            oks = float(similarity[visible].mean())
            if oks >= best_oks:
                best, best_oks, best_similarity = g, oks, similarity
        if best < 0:
            continue
        used.add(best)
        matched[rank] = True
        labelled[rank] = candidates[best][0][:, 2] > 0
        right[rank] = labelled[rank] & (best_similarity >= joint_similarity)
    return PersonMatches(
        scores=scores,
        matched=matched,
        num_ground_truth=sum(len(people) for people in truth_per_image.values()),
        joint_scores=predicted[:, :, 2],
        joint_labelled=labelled,
        joint_right=right,
    )


def _rates(right: int, shown: int, wanted: int) -> dict[str, float]:
    precision = right / shown if shown else 1.0
    recall = right / wanted if wanted else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def person_threshold_sweep(
    matches: PersonMatches, thresholds: Iterable[float]
) -> list[dict[str, float]]:
    """Per threshold: the people kept (score >= threshold), those matched, precision,
    recall and F1. Precision of nothing kept is 1."""
    rows = []
    for threshold in thresholds:
        kept = matches.scores >= threshold
        right = int((kept & matches.matched).sum())
        shown = int(kept.sum())
        rows.append(
            {
                "threshold": float(threshold),
                "kept": shown,
                "matched": right,
                **_rates(right, shown, matches.num_ground_truth),
            }
        )
    return rows


def joint_threshold_sweep(
    matches: PersonMatches, thresholds: Iterable[float], *, min_score: float = 0.0
) -> list[dict[str, float]]:
    """Per threshold: the joints drawn (score >= threshold and > 0) on the matched people
    scoring at least ``min_score``, those right, precision, recall (over the labelled
    joints of those people) and F1."""
    people = matches.matched & (matches.scores >= min_score)
    labelled = matches.joint_labelled[people]
    right_joint = matches.joint_right[people]
    joint_scores = matches.joint_scores[people]
    rows = []
    for threshold in thresholds:
        drawn = labelled & (joint_scores >= threshold) & (joint_scores > 0)
        right = int((drawn & right_joint).sum())
        shown = int(drawn.sum())
        rows.append(
            {
                "threshold": float(threshold),
                "drawn": shown,
                "right": right,
                **_rates(right, shown, int(labelled.sum())),
            }
        )
    return rows
