"""How well a completer recovers hidden joints: real poses, realistic hiding patterns.

A completer gets a person's known joints in image pixels and returns every joint
(``complete(keypoints (P, J, 2), known (P, J)) -> (P, J, 2)``). The benchmark takes
annotated people, hides joints in patterns seen in real scenes (:func:`hide_patterns`:
lower body behind a table, one side, one arm, the legs below the knee, the head, k
random joints) and scores the hidden joints as OKS does (:func:`completion_scores`):
keypoint similarity ``ks = exp(-d^2 / (2 area k^2))`` with ``k = 2 sigma`` and the
person's area, so an error of ``e = d / (sqrt(area) k)`` "OKS scales" gives
``ks = exp(-e^2 / 2)`` (``ks >= 0.5`` is ``e <= 1.18``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from occlupose.evaluation.inputs import EvaluationError
from occlupose.structures.keypoint_set import KeypointSet

__all__ = [
    "CompletionPeople",
    "completion_people",
    "completion_scores",
    "evaluate_completer",
    "hidden_masks",
    "hide_patterns",
]

Completer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def hide_patterns(keypoint_set: KeypointSet) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Named hiding patterns, each a tuple of alternatives (joint index tuples); one
    alternative is drawn per person (e.g. the left or the right arm). Random-k patterns
    are not listed: :func:`hidden_masks` takes ``"random<k>"`` names.
    """
    names = keypoint_set.keypoint_names

    def idx(*joints: str) -> tuple[int, ...]:
        return tuple(names.index(j) for j in joints if j in names)

    def sides(*parts: str) -> tuple[tuple[int, ...], ...]:
        return tuple(idx(*(f"{s}_{p}" for p in parts)) for s in ("left", "right"))

    head = idx("nose", "left_eye", "right_eye", "left_ear", "right_ear", "head", "neck")
    return {
        "lower_body": (
            idx(*(f"{s}_{p}" for p in ("hip", "knee", "ankle") for s in ("left", "right"))),
        ),
        "one_side": sides("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"),
        "one_arm": sides("shoulder", "elbow", "wrist"),
        "below_knee": (idx("left_ankle", "right_ankle"),),
        "head": (head,),
    }


def default_pattern_names(max_random: int = 8) -> tuple[str, ...]:
    return ("lower_body", "one_side", "one_arm", "below_knee", "head") + tuple(
        f"random{k}" for k in range(1, max_random + 1)
    )


def hidden_masks(
    pattern: str, keypoint_set: KeypointSet, num_people: int, rng: np.random.Generator
) -> np.ndarray:
    """(P, J) bool: the joints ``pattern`` hides for each of ``num_people`` people."""
    j = keypoint_set.num_keypoints
    if pattern.startswith("random"):
        k = int(pattern[len("random") :])
        if not 1 <= k <= j - 2:
            raise ValueError(f"random-k hides 1 .. {j - 2} joints, got {k}")
        ranks = rng.random((num_people, j)).argsort(axis=1).argsort(axis=1)
        return ranks < k
    patterns = hide_patterns(keypoint_set)
    if pattern not in patterns:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {', '.join(patterns)}")
    choices = patterns[pattern]
    pick = rng.integers(len(choices), size=num_people)
    masks = np.zeros((num_people, j), dtype=bool)
    for i, c in enumerate(pick):
        masks[i, list(choices[c])] = True
    return masks


def completion_scores(
    predicted: np.ndarray,
    truth: np.ndarray,
    hidden: np.ndarray,
    areas: np.ndarray,
    sigmas: Sequence[float],
    labelled: np.ndarray | None = None,
) -> dict[str, float]:
    """Scores of the hidden joints and of the completed people.

    Args:
        predicted, truth: (P, J, 2) pixels; a non-finite prediction scores ks = 0 and an
            infinite error.
        hidden: (P, J) bool, the joints that were hidden (and are scored).
        areas: (P,) person areas (COCO's ``area``; CrowdPose: 0.53 box w * h).
        sigmas: (J,) OKS sigmas.
        labelled: (P, J) bool joints with ground truth (default all); only hidden
            labelled joints are scored, OKS averages over labelled joints.

    Returns:
        ``within_0.5`` and ``within_0.75`` (share of hidden joints with ks at least
        that), ``median_error`` (in OKS scales ``sqrt(area) * 2 sigma``), ``oks`` (mean
        over people of the completed person's OKS against the truth) and ``hidden`` (the
        number of joints scored).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    hidden = np.asarray(hidden, dtype=bool)
    labelled = np.ones_like(hidden) if labelled is None else np.asarray(labelled, dtype=bool)
    areas = np.asarray(areas, dtype=np.float64)
    if predicted.shape != truth.shape or truth.shape[:2] != hidden.shape:
        raise ValueError("predicted, truth (P, J, 2) and hidden (P, J) must agree")
    if np.any(areas <= 0):
        raise ValueError("person areas must be positive")
    k = 2.0 * np.asarray(sigmas, dtype=np.float64)
    d = np.linalg.norm(predicted - truth, axis=2)
    d = np.where(np.isfinite(d), d, np.inf)
    error = d / (np.sqrt(areas)[:, None] * k[None, :])
    ks = np.exp(-(error**2) / 2.0)
    scored = hidden & labelled
    if not scored.any():
        raise ValueError("no hidden labelled joint to score")
    e = error[scored]
    oks = (ks * labelled).sum(axis=1) / np.maximum(labelled.sum(axis=1), 1)
    return {
        "within_0.5": float((ks[scored] >= 0.5).mean()),
        "within_0.75": float((ks[scored] >= 0.75).mean()),
        "median_error": float(np.median(e)),
        "oks": float(oks[scored.any(axis=1)].mean()),
        "hidden": int(scored.sum()),
    }


class CompletionPeople:
    """Annotated people for the benchmark: ``poses`` (P, J, 2) pixels, ``labelled``
    (P, J) bool (v > 0), ``visible`` (P, J) bool (v == 2), ``areas`` (P,), ``image_ids``."""

    def __init__(self, poses, labelled, visible, areas, image_ids) -> None:
        self.poses = np.asarray(poses, dtype=np.float64)
        self.labelled = np.asarray(labelled, dtype=bool)
        self.visible = np.asarray(visible, dtype=bool)
        self.areas = np.asarray(areas, dtype=np.float64)
        self.image_ids = np.asarray(image_ids, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.poses)

    def subset(self, keep: np.ndarray) -> CompletionPeople:
        return CompletionPeople(
            self.poses[keep], self.labelled[keep], self.visible[keep], self.areas[keep],
            self.image_ids[keep],
        )  # fmt: skip


def completion_people(
    gt: Mapping, *, split: str = "all", min_labelled: int = 2, area_from_box: bool = False
) -> CompletionPeople:
    """Non-crowd people with at least ``min_labelled`` labelled joints and a positive area.

    Args:
        gt: a COCO-format keypoint ground truth.
        split: ``"fit"`` (image id % 4 != 0), ``"test"`` (id % 4 == 0) or ``"all"``.
        area_from_box: area = 0.53 box w * h (CrowdPose, whose annotations have none);
            otherwise the annotation's ``area``.
    """
    if split not in ("fit", "test", "all"):
        raise ValueError(f"split must be fit, test or all, got {split!r}")
    rows = []
    for ann in gt.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        kp = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        image_id = int(ann["image_id"])
        if split == "fit" and image_id % 4 == 0 or split == "test" and image_id % 4 != 0:
            continue
        if area_from_box:
            area = 0.53 * float(ann["bbox"][2]) * float(ann["bbox"][3])
        else:
            area = float(ann.get("area", 0.0))
        if len(kp) == 0 or (kp[:, 2] > 0).sum() < min_labelled or area <= 0:
            continue
        rows.append((kp[:, :2], kp[:, 2] > 0, kp[:, 2] == 2, area, image_id))
    if not rows:
        raise EvaluationError(f"no person with {min_labelled} labelled joints in split {split!r}")
    return CompletionPeople(*(np.stack(c) for c in zip(*rows, strict=True)))


def evaluate_completer(
    complete: Completer,
    people: CompletionPeople,
    keypoint_set: KeypointSet,
    patterns: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """:func:`completion_scores` per pattern, plus their ``mean`` over patterns.

    Only fully labelled people are used; each pattern draws its masks from a generator
    seeded with ``seed`` and the pattern's position, so every completer sees the same
    hidden joints. The completer gets the truth at known joints and NaN at hidden ones.
    """
    full = people.labelled.all(axis=1)
    if not full.any():
        raise EvaluationError("no fully labelled person to hide joints of")
    poses, areas = people.poses[full], people.areas[full]
    patterns = default_pattern_names() if patterns is None else tuple(patterns)
    table: dict[str, dict[str, float]] = {}
    for i, pattern in enumerate(patterns):
        rng = np.random.default_rng([seed, i])
        hidden = hidden_masks(pattern, keypoint_set, len(poses), rng)
        keypoints = np.where(hidden[..., None], np.nan, poses)
        predicted = complete(keypoints, ~hidden)
        table[pattern] = completion_scores(predicted, poses, hidden, areas, keypoint_set.sigmas)
    keys = ("within_0.5", "within_0.75", "median_error", "oks")
    table["mean"] = {k: float(np.mean([table[p][k] for p in patterns])) for k in keys}
    return table
