"""Reading COCO-format keypoint annotation files (see the package docs for the checks)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from occlupose.data.datasets.records import (
    AnnotationError,
    ImageRecord,
    KeypointDataset,
    LoadReport,
)
from occlupose.structures.keypoint_set import (
    COCO_KEYPOINTS,
    CROWDPOSE_KEYPOINTS,
    KeypointSet,
    keypoint_set_from_coco_category,
)

__all__ = ["BOX_AREA_FACTOR", "load_coco_keypoints", "load_crowdpose", "load_ochuman"]

logger = logging.getLogger(__name__)

#: ``area = BOX_AREA_FACTOR * w * h`` when an annotation has no ``area`` (CrowdPose).
BOX_AREA_FACTOR = 0.53


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise AnnotationError(
            path, f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except UnicodeDecodeError:
        raise AnnotationError(path, "not a UTF-8 text file (is it really a JSON file?)") from None


def _choose_category(
    path: Path, categories: Any, category_id: int | None
) -> tuple[int | None, Mapping]:
    if not isinstance(categories, list):
        raise AnnotationError(path, "'categories' must be a list")
    with_keypoints = [c for c in categories if isinstance(c, Mapping) and "keypoints" in c]
    if category_id is not None:
        with_keypoints = [c for c in with_keypoints if c.get("id") == category_id]
        if not with_keypoints:
            raise AnnotationError(path, f"no category with id {category_id} and a 'keypoints' list")
    if not with_keypoints:
        raise AnnotationError(path, "no entry of 'categories' has a 'keypoints' list")
    if len(with_keypoints) > 1:
        ids = [c.get("id") for c in with_keypoints]
        raise AnnotationError(
            path, f"several keypoint categories (ids {ids}); pass category_id=... to pick one"
        )
    category = with_keypoints[0]
    return category.get("id"), category


def _box_from_keypoints(kpts: np.ndarray) -> np.ndarray:
    labelled = kpts[kpts[:, 2] > 0]
    if len(labelled) == 0:
        return np.zeros(4, np.float32)
    x0, y0 = labelled[:, :2].min(axis=0)
    x1, y1 = labelled[:, :2].max(axis=0)
    return np.array([x0, y0, x1 - x0, y1 - y0], np.float32)


def load_coco_keypoints(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    keypoint_set: KeypointSet | None = None,
    *,
    name: str | None = None,
    category_id: int | None = None,
    check_image_files: bool = True,
    drop_images_without_people: bool = False,
    drop_images_without_annotations: bool = False,
    strict: bool = False,
) -> KeypointDataset:
    """Read a COCO-format person-keypoint annotation file.

    Args:
        annotation_file: COCO-format JSON with ``images``, ``annotations``, ``categories``.
        image_dir: folder the images' ``file_name`` entries are relative to.
        keypoint_set: the expected keypoint set; by default built from the file's keypoint
            category (built-in COCO/CrowdPose sets when the names match).
        name: dataset name for messages (default: the keypoint set's name).
        category_id: which category to read when a file has several with keypoints.
        check_image_files: skip images whose file does not exist (one ``stat`` each).
        drop_images_without_people: leave out images with no labelled, non-crowd person
            (occlupose's training set); they are kept by default (evaluation needs them).
        drop_images_without_annotations: leave out images without any person annotation
            (HigherHRNet's training set: images whose only annotations are crowd regions
            or people without keypoints stay, their loss masks teach "no person here").
        strict: raise :class:`AnnotationError` on the first problem that would
            otherwise be skipped or repaired.

    Returns:
        A :class:`KeypointDataset`; records keep the file's image order.

    Raises:
        FileNotFoundError: the annotation file, or every image file, is missing.
        AnnotationError: the file is not a usable COCO keypoint file (see module docs).
    """
    path = Path(annotation_file)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder {image_dir} (for {path}) does not exist")
    data = _read_json(path)
    if not isinstance(data, Mapping):
        raise AnnotationError(path, f"top level is a {type(data).__name__}, expected an object")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise AnnotationError(
            path, f"missing top-level key(s) {missing}; a COCO keypoint file has images, "
            "annotations and categories"
        )  # fmt: skip

    cat_id, category = _choose_category(path, data["categories"], category_id)
    num_names = len(category["keypoints"])
    if keypoint_set is None:
        try:
            keypoint_set = keypoint_set_from_coco_category(category)
        except ValueError as error:
            raise AnnotationError(path, f"bad keypoint category: {error}") from None
    elif keypoint_set.num_keypoints != num_names:
        raise AnnotationError(
            path,
            f"its keypoint category lists {num_names} keypoints but keypoint set "
            f"{keypoint_set.name!r} has {keypoint_set.num_keypoints}",
        )
    elif tuple(category["keypoints"]) != keypoint_set.keypoint_names:
        logger.warning(
            "%s: keypoint names differ from keypoint set %r; using the set's order as is",
            path,
            keypoint_set.name,
        )
    num_joints = keypoint_set.num_keypoints
    report = LoadReport(annotation_file=path)

    def problem(counter: str, message: str, count: int = 1) -> None:
        if strict:
            raise AnnotationError(path, message)
        setattr(report, counter, getattr(report, counter) + count)

    images: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(_as_list(path, data, "images")):
        try:
            image_id = int(entry["id"])
            info = {
                "file_name": str(entry["file_name"]),
                "width": int(entry["width"]),
                "height": int(entry["height"]),
                "crowd_index": entry.get("crowdIndex"),
            }
        except (KeyError, TypeError, ValueError) as error:
            raise AnnotationError(
                path, f"images[{index}] lacks or has a bad id/file_name/width/height ({error!r})"
            ) from None
        if image_id in images:
            raise AnnotationError(path, f"image id {image_id} appears twice in 'images'")
        info["people"] = []
        images[image_id] = info

    for index, ann in enumerate(_as_list(path, data, "annotations")):
        if not isinstance(ann, Mapping) or "image_id" not in ann:
            raise AnnotationError(path, f"annotations[{index}] has no image_id")
        if ann.get("category_id", cat_id) != cat_id:
            continue  # another category (e.g. a full COCO instances file)
        image = images.get(ann["image_id"])
        if image is None:
            problem(
                "skipped_unknown_image",
                f"annotation {ann.get('id', index)} points at unknown image id {ann['image_id']}",
            )
            continue
        try:
            kpts = np.asarray(ann.get("keypoints", [0] * 3 * num_joints), dtype=np.float32)
            ok = kpts.ndim == 1 and kpts.size == 3 * num_joints
        except (TypeError, ValueError):
            ok = False
        if not ok:
            size = np.size(ann.get("keypoints"))
            problem(
                "skipped_malformed",
                f"annotation {ann.get('id', index)} has {size} keypoint values, expected "
                f"{3 * num_joints} ({num_joints} keypoints x 3)",
            )
            continue
        kpts = kpts.reshape(num_joints, 3)
        kpts[~np.isfinite(kpts).all(axis=1)] = 0.0
        labelled = kpts[:, 2] > 0
        w, h = image["width"], image["height"]
        # Inside under either pixel convention (centres at integers or at +0.5).
        outside = labelled & (
            (kpts[:, 0] < -0.5) | (kpts[:, 1] < -0.5) | (kpts[:, 0] > w) | (kpts[:, 1] > h)
        )
        if outside.any():
            problem(
                "keypoints_outside_image",
                f"annotation {ann.get('id', index)} has {int(outside.sum())} labelled "
                f"keypoint(s) outside its {w}x{h} image",
                count=int(outside.sum()),
            )
            kpts[outside, 2] = 0.0
        box = ann.get("bbox")
        try:
            box = _box_from_keypoints(kpts) if box is None else np.asarray(box, np.float32)
        except (TypeError, ValueError):
            box = None
        if box is None or box.shape != (4,):
            problem("skipped_malformed", f"annotation {ann.get('id', index)}: bbox is not 4 values")
            continue
        area = ann.get("area")
        area = BOX_AREA_FACTOR * float(box[2] * box[3]) if area is None else float(area)
        image["people"].append(
            (kpts, box, area, bool(ann.get("iscrowd", 0)), ann.get("segmentation"), ann.get("id"))
        )

    records = []
    missing_examples = []
    for image_id, info in images.items():
        file_path = image_dir / info["file_name"]
        if check_image_files and not file_path.is_file():
            problem("skipped_missing_file", f"image file {file_path} does not exist")
            missing_examples.append(file_path)
            continue
        record = _make_record(image_id, file_path, info, num_joints)
        report.num_annotations += record.num_people
        report.num_crowd += int(record.iscrowd.sum())
        num_labelled = int(record.labelled.sum())
        report.num_labelled_people += num_labelled
        if record.num_people == 0:
            report.images_without_annotations += 1
        if num_labelled == 0:
            report.images_without_people += 1
            if drop_images_without_people or (
                drop_images_without_annotations and record.num_people == 0
            ):
                report.dropped_images += 1
                continue
        records.append(record)
    if images and len(missing_examples) == len(images):
        raise FileNotFoundError(
            f"none of the {len(images)} images of {path} is in {image_dir} (e.g. "
            f"{missing_examples[0]}); is the image folder right?"
        )
    if missing_examples:
        logger.warning(
            "%s: %d image files missing, e.g. %s", path, len(missing_examples), missing_examples[0]
        )
    report.num_images = len(records)
    problems = (
        report.skipped_unknown_image
        + report.skipped_malformed
        + report.skipped_missing_file
        + report.keypoints_outside_image
    )
    logger.log(logging.WARNING if problems else logging.INFO, "%s", report.summary())
    return KeypointDataset(
        name=name or keypoint_set.name,
        keypoint_set=keypoint_set,
        records=records,
        annotation_file=path,
        image_dir=image_dir,
        report=report,
    )


def _as_list(path: Path, data: Mapping, key: str) -> list:
    value = data[key]
    if not isinstance(value, list):
        raise AnnotationError(path, f"'{key}' must be a list, got {type(value).__name__}")
    return value


def _make_record(image_id: int, path: Path, info: Mapping, num_joints: int) -> ImageRecord:
    people = info["people"]
    n = len(people)
    crowd_index = info["crowd_index"]
    return ImageRecord(
        image_id=image_id,
        path=path,
        width=info["width"],
        height=info["height"],
        keypoints=(
            np.stack([p[0] for p in people]) if n else np.zeros((0, num_joints, 3), np.float32)
        ),
        boxes=np.stack([p[1] for p in people]) if n else np.zeros((0, 4), np.float32),
        areas=np.array([p[2] for p in people], np.float32),
        iscrowd=np.array([p[3] for p in people], bool),
        segmentations=[p[4] for p in people],
        annotation_ids=np.array([-1 if p[5] is None else p[5] for p in people], np.int64),
        crowd_index=None if crowd_index is None else float(crowd_index),
    )


def load_crowdpose(
    annotation_file: str | os.PathLike, image_dir: str | os.PathLike, **kwargs: Any
) -> KeypointDataset:
    """Read a CrowdPose file (14 keypoints, ``crowdIndex`` per image, no ``area``)."""
    kwargs.setdefault("name", "crowdpose")
    return load_coco_keypoints(annotation_file, image_dir, CROWDPOSE_KEYPOINTS, **kwargs)


def load_ochuman(
    annotation_file: str | os.PathLike, image_dir: str | os.PathLike, **kwargs: Any
) -> KeypointDataset:
    """Read OCHuman's COCO-format files (``ochuman_coco_format_*.json``, COCO's 17 keypoints)."""
    kwargs.setdefault("name", "ochuman")
    return load_coco_keypoints(annotation_file, image_dir, COCO_KEYPOINTS, **kwargs)
