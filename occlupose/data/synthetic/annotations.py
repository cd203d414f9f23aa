"""COCO / CrowdPose-format annotation entries for rendered scenes, crowd index, occlusion rates.

The written files are plain COCO person-keypoint files (``info``, ``images``,
``annotations``, ``categories``) that ``pycocotools.coco.COCO`` and the dataset
readers load unchanged. Extra per-image fields, ignored by COCO readers:
``crowdIndex`` (CrowdPose's crowding measure, written for both formats) and
``occlusion_level`` (the level the image was rendered at).

Which keypoints are written, in which order, and the category's skeleton come from a
:class:`~occlupose.structures.keypoint_set.KeypointSet`; any set whose keypoint names
are among :data:`~occlupose.data.synthetic.poses.POINT_NAMES` can be written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from occlupose.data.synthetic.poses import POINT_NAMES
from occlupose.data.synthetic.render import RenderedPerson
from occlupose.structures.keypoint_set import KeypointSet

__all__ = [
    "OCCLUSION_BINS",
    "category_entry",
    "crowd_index",
    "occlusion_histogram",
    "occlusion_rate",
    "person_annotation",
    "select_keypoints",
]

# Histogram bins of the per-person occlusion rate: exactly 0, (0, .2], (.2, .4], > .4.
OCCLUSION_BINS: tuple[str, ...] = ("0", "(0,.2]", "(.2,.4]", ">.4")


def select_keypoints(keypoints: np.ndarray, keypoint_set: KeypointSet) -> np.ndarray:
    """Reorder rendered keypoints (P, 3) over ``POINT_NAMES`` into ``keypoint_set`` order (J, 3)."""
    missing = [n for n in keypoint_set.keypoint_names if n not in POINT_NAMES]
    if missing:
        raise ValueError(
            f"keypoint set {keypoint_set.name!r} has keypoints the synthetic renderer does not "
            f"draw: {', '.join(missing)}; it draws {', '.join(POINT_NAMES)}"
        )
    return keypoints[[POINT_NAMES.index(n) for n in keypoint_set.keypoint_names]]


def category_entry(keypoint_set: KeypointSet) -> dict:
    """The ``person`` category with keypoint names and the 1-based COCO ``skeleton``."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(keypoint_set.keypoint_names),
        "skeleton": [[a + 1, b + 1] for a, b in keypoint_set.limbs],
    }


def occlusion_rate(keypoints: np.ndarray) -> float | None:
    """``#(v=1) / #(v>0)`` of one person's (J, 3) keypoints; None with none labelled."""
    v = np.asarray(keypoints)[:, 2]
    labelled = int(np.count_nonzero(v > 0))
    return float(np.count_nonzero(v == 1)) / labelled if labelled else None


def crowd_index(keypoints: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]) -> float:
    """CrowdPose's crowd index of one image.

    For person ``i`` with ``N_a`` labelled keypoints (v > 0), ``N_b`` is the number
    of labelled keypoints of *other* people inside ``i``'s box (edges included);
    the index is the mean of ``N_b / N_a`` over the people with ``N_a > 0``
    (Li et al., CrowdPose, CVPR 2019). 0 for images with fewer than two people.

    Args:
        keypoints: per person a (J, 3) array ``x, y, v``.
        boxes: per person a COCO box ``[x, y, w, h]``.
    """
    if len(keypoints) != len(boxes):
        raise ValueError(f"{len(keypoints)} keypoint arrays but {len(boxes)} boxes")
    ratios = []
    for i, (own, (x, y, w, h)) in enumerate(zip(keypoints, boxes, strict=True)):
        n_own = int(np.count_nonzero(np.asarray(own)[:, 2] > 0))
        if n_own == 0:
            continue
        n_other = 0
        for j, other in enumerate(keypoints):
            if j == i:
                continue
            other = np.asarray(other)
            labelled = other[other[:, 2] > 0]
            inside = (labelled[:, 0] >= x) & (labelled[:, 0] <= x + w)
            inside &= (labelled[:, 1] >= y) & (labelled[:, 1] <= y + h)
            n_other += int(np.count_nonzero(inside))
        ratios.append(n_other / n_own)
    return float(np.mean(ratios)) if ratios else 0.0


def person_annotation(
    person: RenderedPerson,
    keypoint_set: KeypointSet,
    image_id: int,
    annotation_id: int,
) -> dict:
    """One COCO annotation: keypoints in ``keypoint_set`` order, RLE of the visible mask.

    ``bbox`` is the box of the full silhouette (hidden parts included, clipped to the
    image), ``area`` and ``segmentation`` cover the visible silhouette only.
    """
    kpts = select_keypoints(person.keypoints, keypoint_set)
    flat: list[float | int] = []
    for x, y, v in kpts:
        flat += [round(float(x), 2), round(float(y), 2), int(v)]
    rle = mask_utils.encode(np.asfortranarray(person.mask.astype(np.uint8)))
    return {
        "id": int(annotation_id),
        "image_id": int(image_id),
        "category_id": 1,
        "keypoints": flat,
        "num_keypoints": int(np.count_nonzero(kpts[:, 2] > 0)),
        "bbox": [round(float(b), 2) for b in person.bbox],
        "area": int(person.area),
        "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()},
        "iscrowd": 0,
    }


def occlusion_histogram(
    dataset: Mapping, *, level_key: str = "occlusion_level"
) -> dict[str, dict[str, float]]:
    """Per-level histogram of person occlusion rates of a COCO-format dataset dict.

    Images are grouped by their ``level_key`` field (``"all"`` when absent); people
    with no labelled keypoint are left out.

    Returns:
        ``{level: {bin: fraction of people, ..., "people": count, "mean": mean rate,
        "median": median rate}}`` with the bins of :data:`OCCLUSION_BINS`.
    """
    level_of = {img["id"]: str(img.get(level_key, "all")) for img in dataset["images"]}
    rates: dict[str, list[float]] = {}
    for ann in dataset["annotations"]:
        rate = occlusion_rate(np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3))
        if rate is not None:
            rates.setdefault(level_of[ann["image_id"]], []).append(rate)
    table = {}
    for level, values in rates.items():
        r = np.asarray(values)
        counts = (
            np.count_nonzero(r == 0),
            np.count_nonzero((r > 0) & (r <= 0.2)),
            np.count_nonzero((r > 0.2) & (r <= 0.4)),
            np.count_nonzero(r > 0.4),
        )
        row = {name: c / len(r) for name, c in zip(OCCLUSION_BINS, counts, strict=True)}
        row.update(people=float(len(r)), mean=float(r.mean()), median=float(np.median(r)))
        table[level] = row
    return table
