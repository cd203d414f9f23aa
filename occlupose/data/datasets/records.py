"""The in-memory form of a keypoint dataset: one :class:`ImageRecord` per image."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occlupose.data.image_io import DEFAULT_MAX_PIXELS, ImageReadError, read_image
from occlupose.structures.keypoint_set import KeypointSet
from occlupose.utils.errors import UserError

__all__ = ["AnnotationError", "ImageRecord", "KeypointDataset", "LoadReport"]


class AnnotationError(UserError, ValueError):
    """An annotation file is unusable; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


@dataclass
class ImageRecord:
    """One image and every person annotated in it (N people, J keypoints).

    Attributes:
        image_id: the ``id`` of the image entry.
        path: image file (``image_dir / file_name``).
        width, height: image size in pixels, from the annotation file.
        keypoints: float32 (N, J, 3) ``x, y, v``; v=0 unlabelled, 1 labelled but not
            visible, 2 visible. Crowd annotations usually have all v=0.
        boxes: float32 (N, 4) COCO ``[x, y, w, h]``.
        areas: float32 (N,) segment area (or ``0.53 * w * h``, see module docs).
        iscrowd: bool (N,) the annotation is a crowd region.
        segmentations: N entries, each a polygon list, an RLE dict or None.
        annotation_ids: int64 (N,).
        crowd_index: CrowdPose's per-image ``crowdIndex``, None for other datasets.
    """

    image_id: int
    path: Path
    width: int
    height: int
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    iscrowd: np.ndarray
    segmentations: list[Any]
    annotation_ids: np.ndarray
    crowd_index: float | None = None

    @property
    def num_people(self) -> int:
        """Number of annotations (crowd regions included)."""
        return int(self.keypoints.shape[0])

    @property
    def labelled(self) -> np.ndarray:
        """bool (N,): not a crowd region and at least one keypoint with v>0."""
        return (self.keypoints[:, :, 2] > 0).any(axis=1) & ~self.iscrowd

    def read_image(self, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB, checked against the annotated size.

        If EXIF orientation makes the decoded image the transpose of the annotated
        size, the stored (un-rotated) pixels are returned: the annotations were made
        on those.

        Raises:
            ImageReadError: unreadable file, or a size that differs from the annotation.
        """
        image = read_image(self.path, max_pixels=max_pixels)
        if image.shape[:2] == (self.width, self.height) and self.width != self.height:
            image = read_image(self.path, max_pixels=max_pixels, apply_exif_orientation=False)
        if image.shape[:2] != (self.height, self.width):
            raise ImageReadError(
                self.path,
                f"image is {image.shape[1]}x{image.shape[0]} but its annotation (image id "
                f"{self.image_id}) says {self.width}x{self.height}",
            )
        return image


@dataclass
class LoadReport:
    """What :func:`load_coco_keypoints` read, skipped and changed."""

    annotation_file: Path
    num_images: int = 0
    num_annotations: int = 0
    num_labelled_people: int = 0
    num_crowd: int = 0
    skipped_unknown_image: int = 0
    skipped_malformed: int = 0
    skipped_missing_file: int = 0
    keypoints_outside_image: int = 0
    images_without_people: int = 0
    images_without_annotations: int = 0
    dropped_images: int = 0

    def summary(self) -> str:
        text = (
            f"{self.annotation_file}: {self.num_images} images, {self.num_annotations} person "
            f"annotations ({self.num_labelled_people} with keypoints, {self.num_crowd} crowd); "
            f"{self.images_without_people} images without labelled people "
            f"({self.images_without_annotations} without any annotation)"
        )
        if self.dropped_images:
            text += f", {self.dropped_images} of them dropped"
        problems = [
            (self.skipped_unknown_image, "annotations with an unknown image id skipped"),
            (self.skipped_malformed, "annotations with malformed keypoints/bbox skipped"),
            (self.skipped_missing_file, "images with a missing file skipped"),
            (self.keypoints_outside_image, "keypoints outside the image set to v=0"),
        ]
        details = [f"{count} {what}" for count, what in problems if count]
        return text + ("; " + ", ".join(details) if details else "")


@dataclass
class KeypointDataset(Sequence[ImageRecord]):
    """Image records plus the keypoint set they use; indexes like a list of records."""

    name: str
    keypoint_set: KeypointSet
    records: list[ImageRecord]
    annotation_file: Path | None = None
    image_dir: Path | None = None
    report: LoadReport | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):  # int -> record, slice -> list of records
        return self.records[index]

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __repr__(self) -> str:
        return (
            f"KeypointDataset(name={self.name!r}, images={len(self.records)}, "
            f"keypoints={self.keypoint_set.num_keypoints}, annotation_file={self.annotation_file})"
        )
