"""Standard folder layouts of COCO, CrowdPose and OCHuman, and :func:`from_layout`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occlupose.data.datasets.coco import load_coco_keypoints
from occlupose.data.datasets.records import KeypointDataset
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet

__all__ = ["LAYOUTS", "DatasetLayout", "from_layout"]


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset's files are under its root folder.

    ``annotation_files`` and ``image_dirs`` are candidate paths relative to the root,
    with ``{split}`` replaced by the split name; the first that exists is used.
    """

    name: str
    splits: tuple[str, ...]
    annotation_files: tuple[str, ...]
    image_dirs: tuple[str, ...]
    keypoint_set: KeypointSet | None = None


LAYOUTS: dict[str, DatasetLayout] = {
    "coco": DatasetLayout(
        name="coco",
        splits=("train", "val"),
        annotation_files=("annotations/person_keypoints_{split}2017.json",),
        image_dirs=("{split}2017", "images/{split}2017"),
        keypoint_set=COCO_KEYPOINTS,
    ),
    "crowdpose": DatasetLayout(
        name="crowdpose",
        splits=("train", "val", "test", "trainval"),
        annotation_files=("json/crowdpose_{split}.json", "annotations/crowdpose_{split}.json"),
        image_dirs=("images",),
        keypoint_set=CROWDPOSE_KEYPOINTS,
    ),
    "ochuman": DatasetLayout(
        name="ochuman",
        splits=("val", "test"),
        annotation_files=(
            "ochuman_coco_format_{split}_range_0.00_1.00.json",
            "annotations/ochuman_coco_format_{split}_range_0.00_1.00.json",
        ),
        image_dirs=("images",),
        keypoint_set=COCO_KEYPOINTS,
    ),
}


def from_layout(layout: str, root: str | os.PathLike, split: str, **kwargs: Any) -> KeypointDataset:
    """Read split ``split`` of a dataset stored in its standard layout under ``root``.

    Layouts (see :data:`LAYOUTS`): ``coco`` (``annotations/person_keypoints_{split}2017.json``
    with ``{split}2017/``), ``crowdpose`` (``json/crowdpose_{split}.json`` with
    ``images/``), ``ochuman`` (``ochuman_coco_format_{split}_range_0.00_1.00.json`` with
    ``images/``). Other keyword arguments go to :func:`load_coco_keypoints`.

    Raises:
        KeyError: unknown layout.
        ValueError: split not in the layout.
        FileNotFoundError: the files are not where the layout expects them; the message
            lists the paths that were tried.
    """
    try:
        spec = LAYOUTS[layout.lower()]
    except KeyError:
        raise KeyError(f"unknown dataset layout {layout!r}; known: {', '.join(LAYOUTS)}") from None
    if split not in spec.splits:
        raise ValueError(f"{spec.name} has splits {', '.join(spec.splits)}, not {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{spec.name} root folder {root} does not exist")
    annotation_file = _first_existing(root, spec.annotation_files, split)
    image_dir = _first_existing(root, spec.image_dirs, split)
    for found, candidates, what in (
        (annotation_file, spec.annotation_files, "annotation file"),
        (image_dir, spec.image_dirs, "image folder"),
    ):
        if found is None:
            tried = ", ".join(str(root / c.format(split=split)) for c in candidates)
            raise FileNotFoundError(
                f"{spec.name} {split} {what} not found; the {spec.name} layout expects {tried}"
            )
    kwargs.setdefault("name", spec.name)
    return load_coco_keypoints(annotation_file, image_dir, spec.keypoint_set, **kwargs)


def _first_existing(root: Path, candidates: Sequence[str], split: str) -> Path | None:
    for candidate in candidates:
        path = root / candidate.format(split=split)
        if path.exists():
            return path
    return None
