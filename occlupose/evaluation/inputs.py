"""Reading and checking ground truth and keypoint results before they reach pycocotools.

pycocotools trusts its input: a results file with the wrong number of keypoints, a NaN
score or an unknown image id either crashes deep inside numpy or, worse, evaluates to a
plausible but wrong number. Everything here fails early with an :class:`EvaluationError`
that names the file and the entry at fault.

Documented handling of imperfect but usable input:

* ``.json.gz`` files are read transparently.
* Ground truth without ``area`` (CrowdPose never has one): the area used by OKS and the
  area ranges is ``0.53 * box width * box height``, the rule of the official CrowdPose
  evaluation. Under the CrowdPose protocol this rule is always used (as crowdposetools
  does); for other datasets only for annotations that lack an ``area``, with a warning.
* Ground truth without ``num_keypoints``: the number of labelled (``v > 0``) keypoints.
  Without ``iscrowd``: 0.
* Results without ``category_id``: the ground truth's category when it has exactly one.
* Empty results: every person is missed, AP = AR = 0; a warning says so.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from occlupose.structures.keypoint_set import KeypointSet
from occlupose.utils.errors import UserError

__all__ = [
    "CROWDPOSE_AREA_FACTOR",
    "EvaluationError",
    "build_results_coco",
    "check_ground_truth",
    "load_ground_truth",
    "load_json",
    "source_name",
    "subset_ground_truth",
]

# crowdposetools approximates a person's segmented area by this fraction of its box.
CROWDPOSE_AREA_FACTOR = 0.53

GroundTruthSource = str | os.PathLike | Mapping[str, Any] | COCO
ResultsSource = str | os.PathLike | Sequence[Mapping[str, Any]]


class EvaluationError(UserError, ValueError):
    """Ground truth or results that cannot be evaluated; the message names the source."""


def source_name(source: Any) -> str:
    """A short description of where data came from, for error messages."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    return f"<in-memory {type(source).__name__}>"


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON (or gzip-compressed ``.json.gz``) file, raising :class:`EvaluationError`."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return json.load(f)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise EvaluationError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise EvaluationError(f"{path}: is a folder, not a JSON file") from None
    except json.JSONDecodeError as e:
        raise EvaluationError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: cannot be read as JSON ({e})") from None


def _is_number(value: Any) -> bool:
    # numbers.Real also admits numpy scalars (np.float32 is not a float subclass).
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_keypoints(
    values: Any, keypoint_set: KeypointSet, where: str, *, check_finite: bool = True
) -> None:
    expected = 3 * keypoint_set.num_keypoints
    if not isinstance(values, list | tuple) or len(values) != expected:
        got = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise EvaluationError(
            f"{where}: 'keypoints' must hold {expected} numbers ({keypoint_set.num_keypoints} "
            f"keypoints of dataset {keypoint_set.name!r} as x, y, v/score), got {got}"
        )
    if not all(_is_number(v) for v in values):
        raise EvaluationError(f"{where}: 'keypoints' contains a non-numeric value")
    if check_finite and not all(math.isfinite(v) for v in values):
        raise EvaluationError(f"{where}: 'keypoints' contains NaN or infinity")


def check_ground_truth(
    data: Any, name: str, *, lenient: bool = False
) -> tuple[dict[str, Any], dict[str, int]]:
    """Check the structure of COCO-format ground truth; what is wrong is an error.

    Checked: the ``images``, ``annotations`` and ``categories`` lists; image ids
    numeric and unique, sizes (when given) positive; annotation ids numeric and
    unique, each annotation an object of a known image and category, its ``bbox``
    four finite numbers with non-negative width and height, its ``area`` (when
    given) finite and non-negative, its ``keypoints`` (when given) finite numbers.
    Duplicate ids would make pycocotools keep one of the entries silently (a person
    lost, a plausible but wrong AP).

    Args:
        data: the parsed JSON.
        name: how messages call the source.
        lenient: skip bad entries instead of failing: later duplicates of an image or
            annotation id, annotations of unknown images or categories, and annotations
            with non-finite or negative numbers.

    Returns:
        ``(ground_truth, skipped)``: the ground truth (``data`` itself when nothing was
        skipped, else a copy without the skipped entries) and the number of entries
        skipped per reason (empty when strict).

    Raises:
        EvaluationError: naming the source, the entry and the problem (when lenient,
            only for problems of the file's structure).
    """
    if not isinstance(data, Mapping):
        raise EvaluationError(f"{name}: ground truth must be a COCO JSON object, not a list")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise EvaluationError(f"{name}: ground truth has no '{key}' list")
    if not data["categories"]:
        raise EvaluationError(f"{name}: ground truth has no categories")
    skipped: dict[str, int] = {}

    def bad(reason: str, where: str) -> None:
        if not lenient:
            raise EvaluationError(f"{where}: {reason} (--lenient skips such entries)")
        skipped[reason] = skipped.get(reason, 0) + 1

    images = []
    seen_images: dict[Any, int] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, Mapping) or not _is_number(image.get("id")):
            raise EvaluationError(f"{name}: images[{i}] has no numeric 'id'")
        where = f"{name}: images[{i}] (id {image['id']})"
        if image["id"] in seen_images:
            bad(f"duplicate image id, also images[{seen_images[image['id']]}]", where)
            continue
        sizes = [image.get(k) for k in ("width", "height") if image.get(k) is not None]
        if not all(_is_number(v) and math.isfinite(v) and v > 0 for v in sizes):
            bad("'width' and 'height' must be positive numbers", where)
            continue
        seen_images[image["id"]] = i
        images.append(image)
    category_ids = {c.get("id") for c in data["categories"] if isinstance(c, Mapping)}

    annotations = []
    seen_annotations: dict[Any, int] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"{name}: annotations[{i}]"
        if not isinstance(ann, Mapping):
            raise EvaluationError(f"{where} is not an object")
        where = f"{where} (id {ann.get('id')}, image {ann.get('image_id')})"
        if not _is_number(ann.get("id")):
            raise EvaluationError(f"{where}: missing numeric 'id'")
        if ann["id"] in seen_annotations:
            bad(f"duplicate annotation id, also annotations[{seen_annotations[ann['id']]}]", where)
            continue
        reason = _annotation_problem(ann, seen_images, category_ids)
        if reason is not None:
            bad(reason, where)
            continue
        seen_annotations[ann["id"]] = i
        annotations.append(ann)
    if not skipped:
        return dict(data), skipped
    # Reasons that name an entry index are counted together.
    counts: dict[str, int] = {}
    for reason, count in skipped.items():
        key = reason.split(", also ")[0]
        counts[key] = counts.get(key, 0) + count
    return {**data, "images": images, "annotations": annotations}, counts


def _annotation_problem(ann: Mapping, image_ids: Mapping, category_ids: set) -> str | None:
    if ann.get("image_id") not in image_ids:
        return "'image_id' is not in 'images'"
    if ann.get("category_id") not in category_ids:
        return "'category_id' is not in 'categories'"
    box = ann.get("bbox")
    if not isinstance(box, list | tuple) or len(box) != 4 or not all(map(_is_number, box)):
        return "'bbox' must be [x, y, width, height]"
    if not all(math.isfinite(v) for v in box):
        return "'bbox' contains NaN or infinity"
    if box[2] < 0 or box[3] < 0:
        return "'bbox' has a negative width or height"
    area = ann.get("area")
    if area is not None and _is_number(area) and not (math.isfinite(area) and area >= 0):
        return f"'area' must be a finite number >= 0, got {area}"
    keypoints = ann.get("keypoints")
    numbers = isinstance(keypoints, list | tuple) and all(_is_number(v) for v in keypoints)
    if numbers and not all(math.isfinite(v) for v in keypoints):
        return "'keypoints' contains NaN or infinity"
    return None


def load_ground_truth(
    source: GroundTruthSource,
    keypoint_set: KeypointSet,
    *,
    area_from_box: bool = False,
    name: str | None = None,
) -> COCO:
    """Load and check COCO-format keypoint ground truth (:func:`check_ground_truth`,
    and every annotation's keypoints against ``keypoint_set``).

    Args:
        source: a path (``.json`` or ``.json.gz``), a parsed COCO dict or a ``COCO`` object.
        keypoint_set: the dataset's keypoints; every annotation must have that many.
        area_from_box: use ``0.53 * w * h`` as every person's area (CrowdPose protocol)
            instead of the annotated ``area``.
        name: how error messages call the source (default: its path).

    Returns:
        A pycocotools ``COCO`` index over normalised copies of the annotations (the
        caller's dicts are not modified).
    """
    name = name or source_name(source)
    if isinstance(source, COCO):
        data: Any = source.dataset
    elif isinstance(source, Mapping):
        data = source
    else:
        data = load_json(source)
    data, _ = check_ground_truth(data, name)
    images = [dict(image) for image in data["images"]]

    annotations = []
    filled_area = 0
    for i, ann in enumerate(data["annotations"]):
        ann = dict(ann)
        where = f"{name}: annotations[{i}] (id {ann.get('id')}, image {ann.get('image_id')})"
        _check_keypoints(ann.get("keypoints"), keypoint_set, where)
        box = ann["bbox"]
        box_area = CROWDPOSE_AREA_FACTOR * box[2] * box[3]
        if area_from_box:
            ann["area"] = box_area
        elif not _is_number(ann.get("area")):
            ann["area"] = box_area
            filled_area += 1
        if "num_keypoints" not in ann:
            ann["num_keypoints"] = int(sum(v > 0 for v in ann["keypoints"][2::3]))
        ann.setdefault("iscrowd", 0)
        annotations.append(ann)
    if filled_area:
        warnings.warn(
            f"{name}: {filled_area} annotations have no 'area'; using "
            f"{CROWDPOSE_AREA_FACTOR} x box width x height for them",
            stacklevel=2,
        )

    dataset = {key: value for key, value in data.items() if key not in ("images", "annotations")}
    dataset["images"] = images
    dataset["annotations"] = annotations
    return _coco_from_dict(dataset)


def subset_ground_truth(data: Mapping[str, Any], image_ids: Any) -> dict[str, Any]:
    """The ground truth restricted to ``image_ids`` (their images and annotations)."""
    keep = set(image_ids)
    return {
        **data,
        "images": [image for image in data["images"] if image["id"] in keep],
        "annotations": [ann for ann in data["annotations"] if ann["image_id"] in keep],
    }


def _coco_from_dict(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    # createIndex prints progress; it is not useful inside a library call.
    with redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def build_results_coco(
    source: ResultsSource, coco_gt: COCO, keypoint_set: KeypointSet, *, gt_name: str = ""
) -> COCO:
    """Check keypoint results and index them like ``COCO.loadRes`` does.

    Every entry needs ``image_id`` (an image of the ground truth), ``keypoints``
    (``3 * J`` finite numbers: x, y, score in original-image pixels) and ``score``
    (finite, >= 0). As in ``loadRes``, a result's box and area come from its given
    ``bbox`` when it has one, otherwise from the extent of all its keypoints; the
    area only decides which area range an unmatched detection falls into.
    """
    name = source_name(source)
    results = load_json(source) if isinstance(source, str | os.PathLike) else source
    if isinstance(results, Mapping) or not isinstance(results, Sequence):
        raise EvaluationError(
            f"{name}: keypoint results must be a JSON list of objects "
            f"(image_id, category_id, keypoints, score), got {type(results).__name__}"
        )
    image_ids = set(coco_gt.getImgIds())
    category_ids = coco_gt.getCatIds()
    default_category = category_ids[0] if len(category_ids) == 1 else None

    annotations = []
    unknown_images: set = set()
    for i, result in enumerate(results):
        where = f"{name}: result [{i}]"
        if not isinstance(result, Mapping):
            raise EvaluationError(f"{where} is not an object")
        image_id = result.get("image_id")
        if isinstance(image_id, numbers.Integral) and not isinstance(image_id, bool):
            image_id = int(image_id)
        if image_id not in image_ids:
            unknown_images.add(image_id)
            continue
        where = f"{where} (image {image_id})"
        category_id = result.get("category_id", default_category)
        if category_id not in category_ids:
            raise EvaluationError(
                f"{where}: category_id {category_id!r} is not a ground-truth category "
                f"({sorted(category_ids)})"
            )
        keypoints = result.get("keypoints")
        if isinstance(keypoints, np.ndarray):
            keypoints = keypoints.reshape(-1).tolist()
        _check_keypoints(keypoints, keypoint_set, where)
        score = result.get("score")
        if not _is_number(score) or not math.isfinite(score):
            raise EvaluationError(f"{where}: 'score' must be a finite number, got {score!r}")
        if score < 0:
            raise EvaluationError(
                f"{where}: negative score {score}; scores rank detections and must be >= 0 "
                "(map log-probabilities or logits to [0, 1] first)"
            )
        x, y = np.asarray(keypoints[0::3], float), np.asarray(keypoints[1::3], float)
        box = result.get("bbox")
        if isinstance(box, list | tuple) and len(box) == 4 and all(map(_is_number, box)):
            box = [float(v) for v in box]
            area = box[2] * box[3]
        else:
            box = [x.min(), y.min(), x.max() - x.min(), y.max() - y.min()]
            area = box[2] * box[3]
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": [float(v) for v in keypoints],
                "score": float(score),
                "bbox": box,
                "area": float(area),
                "iscrowd": 0,
            }
        )
    if unknown_images:
        shown = ", ".join(repr(i) for i in sorted(unknown_images, key=str)[:5])
        more = f" and {len(unknown_images) - 5} more" if len(unknown_images) > 5 else ""
        raise EvaluationError(
            f"{name}: results refer to {len(unknown_images)} image ids that are not in the "
            f"ground truth {gt_name or ''}: {shown}{more}".replace("  ", " ")
        )
    if not annotations:
        warnings.warn(f"{name}: no keypoint results; every person counts as missed", stacklevel=2)
    dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": list(coco_gt.dataset["categories"]),
        "annotations": annotations,
    }
    return _coco_from_dict(dataset)
