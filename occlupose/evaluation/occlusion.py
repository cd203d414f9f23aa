"""Accuracy under occlusion: AP per occlusion bin and keypoint-level localisation rates.

Per-person bins (annotated occlusion rate, overlap with other people) evaluate the
whole results file while ignoring the ground-truth people outside the bin: they are
neither true nor false positives, and neither are the detections attributed to them
(see :class:`~occlupose.evaluation.coco_eval.KeypointCOCOeval`). Per-image bins (the
CrowdPose crowd index) evaluate only the images in the bin, as crowdposetools does.

Attributes of a ground-truth person:

* occlusion rate: ``#(v == 1) / #(v > 0)``, labelled but hidden keypoints over labelled
  keypoints (COCO's flags; synthetic data uses its rendered visibility the same way).
  Not meaningful for CrowdPose, whose head/neck are always ``v = 1``.
* overlap: the largest box IoU with another annotated person of the same image.
* crowd index: the image's ``crowdIndex`` (CrowdPose).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from occlupose.decode.prior import fit_reference_pose
from occlupose.evaluation.coco_eval import KeypointCOCOeval, summarize
from occlupose.evaluation.inputs import EvaluationError

__all__ = [
    "DEFAULT_CROWD_INDEX_BINS",
    "DEFAULT_OCCLUSION_BINS",
    "DEFAULT_OVERLAP_BINS",
    "Bin",
    "ap_per_bin",
    "bins_from_edges",
    "covered_keypoint_localisation",
    "crowd_index_per_image",
    "keypoint_localisation",
    "labelled_poses",
    "occlusion_rate",
    "occlusion_rate_per_person",
    "overlap_per_person",
    "visible_keypoint_oracle",
]


@dataclass(frozen=True)
class Bin:
    """An interval of a per-person (or per-image) attribute.

    ``low == high`` with ``closed_low`` is the single value ``low`` (e.g. "no occlusion").
    """

    low: float
    high: float
    closed_low: bool = False
    closed_high: bool = True

    def contains(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        above = values >= self.low if self.closed_low else values > self.low
        below = values <= self.high if self.closed_high else values < self.high
        return above & below  # NaN (attribute undefined) is in no bin

    @property
    def label(self) -> str:
        if self.low == self.high:
            return f"{self.low:g}"
        if math.isinf(self.high):
            return f"{'≥' if self.closed_low else '>'} {self.low:g}"
        left = "[" if self.closed_low else "("
        right = "]" if self.closed_high else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"


def bins_from_edges(edges: Sequence[float], *, zero_bin: bool = True) -> tuple[Bin, ...]:
    """Right-closed bins between increasing edges, plus ``> last edge``.

    ``bins_from_edges([0, 0.2, 0.4])`` gives ``0``, ``(0, 0.2]``, ``(0.2, 0.4]``,
    ``> 0.4``; with ``zero_bin=False`` the first bin is ``[0, 0.2]`` instead.
    """
    edges = [float(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"bin edges must be increasing, got {edges}")
    bins = []
    if zero_bin:
        bins.append(Bin(edges[0], edges[0], closed_low=True))
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
        bins.append(Bin(a, b, closed_low=(i == 0 and not zero_bin)))
    bins.append(Bin(edges[-1], math.inf))
    return tuple(bins)


DEFAULT_OCCLUSION_BINS = bins_from_edges([0.0, 0.2, 0.4])
DEFAULT_OVERLAP_BINS = bins_from_edges([0.0, 0.1, 0.3, 0.5])
# crowdposetools' easy / medium / hard split: < 0.2, [0.2, 0.8), >= 0.8.
DEFAULT_CROWD_INDEX_BINS = (
    Bin(0.0, 0.2, closed_low=True, closed_high=False),
    Bin(0.2, 0.8, closed_low=True, closed_high=False),
    Bin(0.8, math.inf, closed_low=True),
)


def occlusion_rate(visibility: np.ndarray) -> float:
    """``#(v == 1) / #(v > 0)`` of one person's visibility flags; NaN if none is labelled."""
    visibility = np.asarray(visibility)
    labelled = np.count_nonzero(visibility > 0)
    return np.count_nonzero(visibility == 1) / labelled if labelled else math.nan


def occlusion_rate_per_person(coco_gt) -> dict[int, float]:
    """Annotation id -> :func:`occlusion_rate`; NaN for people without labelled keypoints."""
    return {ann_id: occlusion_rate(ann["keypoints"][2::3]) for ann_id, ann in coco_gt.anns.items()}


def labelled_poses(gt: Mapping) -> np.ndarray:
    """The (M, J, 2) keypoint positions of every person with all J keypoints labelled.

    Hidden (``v = 1``) keypoints count as labelled: their positions are what a pose prior
    should learn to infer. Crowd regions are skipped. These are the reference poses of
    :func:`visible_keypoint_oracle`.
    """
    poses = []
    for ann in gt.get("annotations", []):
        keypoints = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        if not ann.get("iscrowd", 0) and len(keypoints) and np.all(keypoints[:, 2] > 0):
            poses.append(keypoints[:, :2])
    if not poses:
        raise EvaluationError("no person has all keypoints labelled: no reference poses")
    return np.stack(poses)


def visible_keypoint_oracle(gt: Mapping, reference_poses: np.ndarray | None = None) -> list[dict]:
    """Results that place every *visible* keypoint exactly, with perfect grouping.

    Each labelled person becomes one detection (score 1) with its ``v = 2`` keypoints at
    their true positions. Without ``reference_poses`` its ``v = 1`` (hidden) keypoints are
    left out (at 0, 0): the AP is then the most any method reaches without inferring
    occluded joints (a person's OKS is about its fraction of visible keypoints, so heavily
    occluded people cannot match). With ``reference_poses`` (M, J, 2), e.g. the training
    set's :func:`labelled_poses`, the hidden keypoints come from the reference that best
    fits the visible ones after a similarity transform (a nearest-neighbour pose prior;
    one reference, the mean pose, gives a template prior); people with fewer than two
    visible keypoints keep theirs left out. Crowd regions and people without labelled
    keypoints are skipped.

    Args:
        gt: a COCO-format keypoint ground truth (the parsed JSON).
        reference_poses: optional (M, J, 2) poses to complete hidden keypoints from.

    Returns:
        COCO keypoint results (``image_id``, ``category_id``, ``keypoints``, ``score``).
    """
    if reference_poses is not None:
        reference_poses = np.asarray(reference_poses, dtype=np.float64)
        if reference_poses.ndim != 3 or reference_poses.shape[2] != 2 or not len(reference_poses):
            raise ValueError(f"reference_poses must be (M, J, 2), got {reference_poses.shape}")
    results = []
    for ann in gt.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if not np.any(keypoints[:, 2] > 0):
            continue
        visible, hidden = keypoints[:, 2] == 2, keypoints[:, 2] == 1
        out = np.zeros_like(keypoints)
        out[visible, :2] = keypoints[visible, :2]
        if reference_poses is not None and hidden.any() and visible.sum() >= 2:
            if reference_poses.shape[1] != len(keypoints):
                raise ValueError(
                    f"reference poses have {reference_poses.shape[1]} keypoints, "
                    f"the ground truth {len(keypoints)}"
                )
            completed, _ = fit_reference_pose(keypoints[:, :2], visible, reference_poses)
            out[hidden, :2] = completed[hidden]
        out[:, 2] = 1.0
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann.get("category_id", 1),
                "keypoints": out.reshape(-1).tolist(),
                "score": 1.0,
            }
        )
    return results


def _box_iou(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) ``x, y, w, h`` boxes."""
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    area = boxes[:, 2] * boxes[:, 3]
    union = area[:, None] + area[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def overlap_per_person(coco_gt) -> dict[int, float]:
    """Annotation id -> largest box IoU with another annotated person of its image (0 if alone)."""
    overlaps = {}
    for img_id, anns in coco_gt.imgToAnns.items():
        del img_id
        if len(anns) == 1:
            overlaps[anns[0]["id"]] = 0.0
            continue
        iou = _box_iou(np.asarray([a["bbox"] for a in anns], dtype=np.float64))
        np.fill_diagonal(iou, 0.0)
        for ann, value in zip(anns, iou.max(axis=1), strict=True):
            overlaps[ann["id"]] = float(value)
    return overlaps


def crowd_index_per_image(coco_gt, gt_name: str = "") -> dict[int, float]:
    """Image id -> ``crowdIndex`` (CrowdPose)."""
    out = {}
    for image in coco_gt.dataset["images"]:
        if "crowdIndex" not in image:
            raise EvaluationError(f"{gt_name}: image {image['id']} has no 'crowdIndex'")
        out[image["id"]] = float(image["crowdIndex"])
    return out


def _evaluated_people(evaluator: KeypointCOCOeval) -> list[int]:
    """Ids of the people AP counts: not crowd regions, at least one labelled keypoint."""
    return [
        ann_id
        for ann_id, ann in evaluator.cocoGt.anns.items()
        if not ann["iscrowd"] and ann["num_keypoints"] > 0
    ]


def ap_per_bin(
    evaluator: KeypointCOCOeval,
    values: Mapping[int, float],
    bins: Sequence[Bin],
    *,
    per_image: bool = False,
    restore: bool = True,
) -> list[dict]:
    """AP, AP50, AP75, AR, AR50, AR75 of each bin of a person or image attribute.

    Args:
        evaluator: an evaluator that has run on all images.
        values: annotation id -> attribute (``per_image=False``), or image id ->
            attribute (``per_image=True``).
        bins: the bins to report.
        per_image: evaluate only the images in the bin instead of ignoring people.
        restore: re-run the evaluator on all images afterwards, so that it is left as
            it was (skip when the caller does not use it any more).

    Returns:
        One dict per bin: ``label``, ``low``, ``high``, ``num_people`` (evaluated people
        in the bin), ``num_images`` (per-image bins) and the metrics, which are None for
        a bin without people.
    """
    people = _evaluated_people(evaluator)
    rows = []
    for b in bins:
        row: dict = {"label": b.label, "low": b.low, "high": b.high}
        if per_image:
            img_ids = [i for i, v in values.items() if b.contains(v)]
            img_set = set(img_ids)
            members = [a for a in people if evaluator.cocoGt.anns[a]["image_id"] in img_set]
            row["num_images"] = len(img_ids)
        else:
            inside = {a for a in people if b.contains(values.get(a, math.nan))}
            members = list(inside)
        row["num_people"] = len(members)
        if not members:
            row.update(dict.fromkeys(("AP", "AP50", "AP75", "AR", "AR50", "AR75")))
        elif per_image:
            evaluator.run(img_ids, all_areas_only=True)
            row.update(summarize(evaluator))
        else:
            evaluator.run(ignored_gt_ids=frozenset(people) - inside, all_areas_only=True)
            row.update(summarize(evaluator))
        rows.append(row)
    if restore:
        evaluator.run()
    return rows


def _match_threshold(evaluator: KeypointCOCOeval, match_oks: float) -> int:
    t = np.flatnonzero(np.isclose(evaluator.params.iouThrs, match_oks))
    if t.size == 0:
        raise ValueError(
            f"match_oks {match_oks} is not one of the OKS thresholds {evaluator.params.iouThrs}"
        )
    return int(t[0])


def _keypoint_similarities(evaluator: KeypointCOCOeval, t: int):
    """Each evaluated ground-truth person with its per-keypoint similarities.

    Yields ``(gt annotation, ks)`` for every person pycocotools does not ignore (all
    area ranges), with ``ks`` the (J,) similarities to the detection matched to it at
    OKS threshold index ``t``, or None when no detection matched.
    """
    p = evaluator.params
    variances = (2.0 * np.asarray(p.kpt_oks_sigmas)) ** 2
    all_range = list(p.areaRng[p.areaRngLbl.index("all")])
    for e in evaluator.evalImgs:
        if e is None or list(e["aRng"]) != all_range:
            continue
        for gt_id, dt_id, ignored in zip(e["gtIds"], e["gtMatches"][t], e["gtIgnore"], strict=True):
            if ignored:
                continue
            gt = evaluator.cocoGt.anns[gt_id]
            if dt_id == 0:
                yield gt, None
                continue
            dt = evaluator.cocoDt.anns[int(dt_id)]
            g = np.asarray(gt["keypoints"], dtype=np.float64).reshape(-1, 3)
            d = np.asarray(dt["keypoints"], dtype=np.float64).reshape(-1, 3)
            sq_dist = ((d[:, :2] - g[:, :2]) ** 2).sum(axis=1)
            yield gt, np.exp(-sq_dist / variances / (gt["area"] + np.spacing(1)) / 2.0)


def keypoint_localisation(
    evaluator: KeypointCOCOeval,
    *,
    match_oks: float = 0.5,
    ks_thresholds: Sequence[float] = (0.5, 0.75),
) -> dict:
    """How well visible (``v = 2``) and hidden (``v = 1``) keypoints of found people are placed.

    People are matched by pycocotools' greedy OKS matching at ``match_oks`` (one of the
    evaluator's OKS thresholds, all area ranges, maxDets). For each labelled keypoint
    of a matched person the per-keypoint similarity is
    ``ks = exp(-d² / (2 s² k²))`` with ``d`` the pixel distance, ``s² `` the person
    area and ``k = 2 σ`` (the terms whose mean is OKS).

    Returns:
        ``{"match_oks", "people", "matched_people", "visible": {...}, "hidden": {...}}``
        where each of visible/hidden has ``count`` (keypoints of matched people),
        ``mean_ks`` and ``rate`` mapping each threshold (as a string) to the fraction
        with ``ks >= threshold`` (None when ``count`` is 0).
    """
    t = _match_threshold(evaluator, match_oks)
    ks_by_flag: dict[int, list[np.ndarray]] = defaultdict(list)
    num_people = num_matched = 0
    for gt, ks in _keypoint_similarities(evaluator, t):
        num_people += 1
        if ks is None:
            continue
        num_matched += 1
        flags = np.asarray(gt["keypoints"], dtype=np.float64).reshape(-1, 3)[:, 2]
        for flag in (1, 2):
            ks_by_flag[flag].append(ks[flags == flag])

    def rates(flag: int) -> dict:
        ks = np.concatenate(ks_by_flag[flag]) if ks_by_flag[flag] else np.zeros(0)
        return {
            "count": int(ks.size),
            "mean_ks": float(ks.mean()) if ks.size else None,
            "rate": {
                f"{thr:g}": (float(np.mean(ks >= thr)) if ks.size else None)
                for thr in ks_thresholds
            },
        }

    return {
        "match_oks": float(evaluator.params.iouThrs[t]),
        "people": num_people,
        "matched_people": num_matched,
        "visible": rates(2),
        "hidden": rates(1),
    }


def covered_keypoint_localisation(
    evaluator: KeypointCOCOeval,
    covered: Mapping[int, Sequence[int]],
    *,
    match_oks: float = 0.5,
    ks_threshold: float = 0.5,
) -> dict:
    """How many of the keypoints that controlled occlusion covered a model still found.

    Args:
        evaluator: an evaluated :class:`KeypointCOCOeval` of the results on the occluded
            images (ground truth unchanged).
        covered: ground-truth annotation id -> indices of its keypoints that were
            covered (a manifest's ``people``, see
            :mod:`~occlupose.evaluation.occluded_dataset`).
        match_oks: OKS at which detections are matched to people (as in
            :func:`keypoint_localisation`).
        ks_threshold: a covered keypoint counts as localised when the matched
            detection's keypoint has similarity ``ks >= ks_threshold`` with it.

    Returns:
        ``{"count", "localised", "matched_count", "localised_of_matched",
        "ks_threshold", "match_oks"}``: ``localised`` is the share of all covered
        keypoints that were localised (a keypoint of a person no detection matched is
        not); ``localised_of_matched`` the share among the ``matched_count`` covered
        keypoints of matched people. Shares are None when there is nothing to count.
    """
    t = _match_threshold(evaluator, match_oks)
    count = matched = found = 0
    for gt, ks in _keypoint_similarities(evaluator, t):
        joints = list(covered.get(gt["id"], ()))
        if not joints:
            continue
        count += len(joints)
        if ks is not None:
            matched += len(joints)
            found += int((ks[joints] >= ks_threshold).sum())
    return {
        "match_oks": float(evaluator.params.iouThrs[t]),
        "ks_threshold": float(ks_threshold),
        "count": count,
        "localised": found / count if count else None,
        "matched_count": matched,
        "localised_of_matched": found / matched if matched else None,
    }
