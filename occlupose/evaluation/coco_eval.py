"""COCO and CrowdPose keypoint AP on top of pycocotools.

The matching and accumulation are pycocotools' own (``COCOeval``); this module only
parametrises them per dataset and adds two things the analyses of
:mod:`occlupose.evaluation.occlusion` need: OKS matrices computed once and reused across
re-evaluations, and extra ground-truth people to ignore.

CrowdPose follows the official crowdposetools evaluation (Jeff-sjtu/CrowdPose), which
differs from COCO's in: the 14 CrowdPose sigmas; the person area ``0.53 * w * h`` of the
box (its annotations have no area); only the ``all`` area range; and AP easy / medium /
hard, the mean of the whole precision array (``-1`` entries included, as that tool does)
after re-evaluating only the images with crowd index ``< 0.2``, in ``[0.2, 0.8)`` and
``>= 0.8``, rounded to 4 decimals.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from occlupose.evaluation.inputs import (
    EvaluationError,
    GroundTruthSource,
    ResultsSource,
    build_results_coco,
    load_ground_truth,
    source_name,
)
from occlupose.structures.keypoint_set import CROWDPOSE_KEYPOINTS, KeypointSet, get_keypoint_set

__all__ = [
    "COCO_METRIC_NAMES",
    "CROWDPOSE_METRIC_NAMES",
    "EvaluationProtocol",
    "KeypointCOCOeval",
    "evaluate_keypoints",
    "get_protocol",
    "summarize",
]

COCO_METRIC_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
CROWDPOSE_METRIC_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AR",
    "AR50",
    "AR75",
    "AP_easy",
    "AP_medium",
    "AP_hard",
)

_ALL_AREAS = (0.0, 1e5**2)
_COCO_AREA_RANGES = {"all": _ALL_AREAS, "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}


@dataclass(frozen=True)
class EvaluationProtocol:
    """How one dataset is evaluated.

    Attributes:
        keypoint_set: keypoints and OKS sigmas.
        max_dets: detections kept per image (highest scores first).
        area_ranges: label -> (min, max) person area; ``"all"`` must come first.
        area_from_box: every person's area is ``0.53 * box w * h`` (CrowdPose).
        crowd_index_splits: crowd-index thresholds of AP easy / medium / hard, or None.
    """

    keypoint_set: KeypointSet
    max_dets: int = 20
    area_ranges: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(_COCO_AREA_RANGES)
    )
    area_from_box: bool = False
    crowd_index_splits: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        return self.keypoint_set.name

    @property
    def metric_names(self) -> tuple[str, ...]:
        if self.crowd_index_splits is not None:
            return CROWDPOSE_METRIC_NAMES
        return COCO_METRIC_NAMES


def get_protocol(dataset: str | KeypointSet | EvaluationProtocol) -> EvaluationProtocol:
    """The protocol for ``"coco"``, ``"crowdpose"`` or any (registered) keypoint set.

    Custom datasets get COCO's protocol (maxDets 20, medium/large area ranges) with
    their own sigmas.
    """
    if isinstance(dataset, EvaluationProtocol):
        return dataset
    try:
        keypoint_set = get_keypoint_set(dataset)
    except KeyError as e:
        raise EvaluationError(str(e.args[0])) from None
    if keypoint_set == CROWDPOSE_KEYPOINTS:
        return EvaluationProtocol(
            keypoint_set,
            area_ranges={"all": _ALL_AREAS},
            area_from_box=True,
            crowd_index_splits=(0.2, 0.8),
        )
    return EvaluationProtocol(keypoint_set)


class KeypointCOCOeval(COCOeval):
    """pycocotools' keypoint ``COCOeval``, parametrised by an :class:`EvaluationProtocol`.

    Additions (the matching itself is unchanged):

    * ``ignored_gt_ids``: ground-truth ids to treat like crowd regions (neither true nor
      false positives). A detection that does not reach the OKS threshold with any
      person, and whose highest-OKS person among the non-crowd, labelled ones is one
      of these, is ignored too: it is that person's (failed) detection, not a false
      positive of the people being evaluated.
    * OKS matrices are cached per image, so re-evaluating subsets of images or people
      costs only the matching.
    * Progress printing is silenced.
    """

    def __init__(self, coco_gt: COCO, coco_dt: COCO, protocol: EvaluationProtocol):
        with redirect_stdout(io.StringIO()):
            super().__init__(coco_gt, coco_dt, iouType="keypoints")
        self.protocol = protocol
        p = self.params
        p.kpt_oks_sigmas = np.asarray(protocol.keypoint_set.sigmas, dtype=np.float64)
        p.maxDets = [protocol.max_dets]
        p.areaRng = [list(r) for r in protocol.area_ranges.values()]
        p.areaRngLbl = list(protocol.area_ranges)
        self.all_img_ids: list = list(p.imgIds)
        self.ignored_gt_ids: frozenset = frozenset()
        self._oks_cache: dict = {}

    def computeOks(self, imgId, catId):  # noqa: N802, N803 (pycocotools' names)
        key = (imgId, catId)
        if key not in self._oks_cache:
            self._oks_cache[key] = super().computeOks(imgId, catId)
        return self._oks_cache[key]

    def _prepare(self) -> None:
        super()._prepare()
        if self.ignored_gt_ids:
            for gts in self._gts.values():
                for gt in gts:
                    if gt["id"] in self.ignored_gt_ids:
                        gt["ignore"] = True

    def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802, N803
        result = super().evaluateImg(imgId, catId, aRng, maxDet)
        if result is None or not self.ignored_gt_ids:
            return result
        oks = self.ious[imgId, catId]
        if len(oks) == 0:
            return result
        # Columns of ``oks`` follow self._gts order; rows the score-sorted detections.
        gts = self._gts[imgId, catId]
        candidates = [j for j, g in enumerate(gts) if not (g["iscrowd"] or g["num_keypoints"] == 0)]
        if not candidates:
            return result
        best = np.asarray(candidates)[np.argmax(oks[:, candidates], axis=1)]
        best_is_ignored = np.array([gts[j]["id"] in self.ignored_gt_ids for j in best])
        num_dets = result["dtIgnore"].shape[1]
        unmatched = result["dtMatches"] == 0
        result["dtIgnore"] = np.logical_or(
            result["dtIgnore"], unmatched & best_is_ignored[None, :num_dets]
        )
        return result

    def run(
        self,
        img_ids: Sequence | None = None,
        ignored_gt_ids: frozenset = frozenset(),
        *,
        all_areas_only: bool = False,
    ) -> None:
        """``evaluate()`` + ``accumulate()``, silently.

        Args:
            img_ids: the images to evaluate (default: all).
            ignored_gt_ids: see the class docstring.
            all_areas_only: evaluate only the ``"all"`` area range (faster when the
                per-area numbers are not needed).
        """
        p = self.params
        ranges = self.protocol.area_ranges
        if all_areas_only:
            ranges = {"all": ranges["all"]}
        p.areaRng = [list(r) for r in ranges.values()]
        p.areaRngLbl = list(ranges)
        p.imgIds = list(self.all_img_ids if img_ids is None else img_ids)
        self.ignored_gt_ids = frozenset(ignored_gt_ids)
        with redirect_stdout(io.StringIO()):
            self.evaluate()
            self.accumulate()


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize(evaluator: KeypointCOCOeval, area: str = "all") -> dict[str, float]:
    """AP (mean over OKS thresholds .50:.05:.95), AP50, AP75, AR, AR50, AR75 for one area.

    ``-1`` where there is no ground truth, as pycocotools reports it.
    """
    p = evaluator.params
    a = p.areaRngLbl.index(area)
    precision = evaluator.eval["precision"][:, :, :, a, 0]  # (T, R, K)
    recall = evaluator.eval["recall"][:, :, a, 0]  # (T, K)
    t50 = int(np.argmin(np.abs(p.iouThrs - 0.5)))
    t75 = int(np.argmin(np.abs(p.iouThrs - 0.75)))
    return {
        "AP": _mean_valid(precision),
        "AP50": _mean_valid(precision[t50]),
        "AP75": _mean_valid(precision[t75]),
        "AR": _mean_valid(recall),
        "AR50": _mean_valid(recall[t50]),
        "AR75": _mean_valid(recall[t75]),
    }


def _crowd_index_splits(coco_gt: COCO, splits: tuple[float, float], gt_name: str) -> list[list]:
    easy, medium, hard = [], [], []
    for image in coco_gt.dataset["images"]:
        crowd_index = image.get("crowdIndex")
        if crowd_index is None:
            raise EvaluationError(
                f"{gt_name}: image {image['id']} has no 'crowdIndex' (needed for CrowdPose "
                "AP easy/medium/hard); is this a CrowdPose annotation file?"
            )
        if crowd_index < splits[0]:
            easy.append(image["id"])
        elif crowd_index < splits[1]:
            medium.append(image["id"])
        else:
            hard.append(image["id"])
    return [easy, medium, hard]


def compute_metrics(evaluator: KeypointCOCOeval, gt_name: str = "") -> dict[str, float]:
    """The protocol's published metrics; ``evaluator.run()`` must have been called."""
    protocol = evaluator.protocol
    metrics = summarize(evaluator, "all")
    if protocol.crowd_index_splits is None:
        for label, suffix in (("medium", "_M"), ("large", "_L")):
            if label in evaluator.params.areaRngLbl:
                by_area = summarize(evaluator, label)
                metrics["AP" + suffix] = by_area["AP"]
                metrics["AR" + suffix] = by_area["AR"]
        return {name: metrics[name] for name in protocol.metric_names if name in metrics}

    splits = _crowd_index_splits(evaluator.cocoGt, protocol.crowd_index_splits, gt_name)
    for name, img_ids in zip(("AP_easy", "AP_medium", "AP_hard"), splits, strict=True):
        evaluator.run(img_ids, all_areas_only=True)
        # crowdposetools averages the raw array, -1 entries of empty settings included.
        metrics[name] = round(float(np.mean(evaluator.eval["precision"][:, :, :, 0, :])), 4)
    evaluator.run()  # leave the evaluator in its all-images state
    return {name: metrics[name] for name in protocol.metric_names}


def make_evaluator(
    ground_truth: GroundTruthSource | COCO,
    results: ResultsSource,
    dataset: str | KeypointSet | EvaluationProtocol,
    *,
    gt_name: str | None = None,
) -> KeypointCOCOeval:
    """Load and check both inputs and return an evaluator that has run on all images."""
    protocol = get_protocol(dataset)
    gt_name = gt_name or source_name(ground_truth)
    coco_gt = load_ground_truth(
        ground_truth, protocol.keypoint_set, area_from_box=protocol.area_from_box, name=gt_name
    )
    coco_dt = build_results_coco(results, coco_gt, protocol.keypoint_set, gt_name=gt_name)
    evaluator = KeypointCOCOeval(coco_gt, coco_dt, protocol)
    evaluator.run()
    return evaluator


def evaluate_keypoints(
    gt_path: GroundTruthSource,
    results_path: ResultsSource,
    dataset: str | KeypointSet | EvaluationProtocol = "coco",
) -> dict[str, float]:
    """COCO-style keypoint AP/AR of a results file against ground truth.

    Args:
        gt_path: COCO-format ground truth: a path (``.json``/``.json.gz``) or parsed dict.
        results_path: COCO keypoint results: a path or a list of result dicts
            (``image_id``, ``category_id``, ``keypoints`` as ``[x, y, score] * J``, ``score``).
        dataset: ``"coco"``, ``"crowdpose"``, a registered name or a :class:`KeypointSet`.

    Returns:
        For COCO-style datasets ``AP, AP50, AP75, AP_M, AP_L, AR, AR50, AR75, AR_M, AR_L``
        (pycocotools' order, maxDets 20); for CrowdPose ``AP, AP50, AP75, AR, AR50, AR75,
        AP_easy, AP_medium, AP_hard`` as the official crowdposetools computes them.

    Raises:
        EvaluationError: unreadable or inconsistent input (the message names the file).
    """
    evaluator = make_evaluator(gt_path, results_path, dataset)
    return compute_metrics(evaluator, source_name(gt_path))
