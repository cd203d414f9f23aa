"""Loss masks: which pixels of the heatmap loss count.

Bottom-up training compares predicted heatmaps with targets over the whole image,
so people the targets do not describe must not be penalised: a network that fires
on them would be punished for being right. As in HigherHRNet, two kinds of regions
are masked out (mask 0, "ignored"):

* crowd regions (``iscrowd=1``), given as RLE or polygons;
* people annotated without any labelled keypoint (too small or too occluded to
  label), through their segmentation, or their box when they have none (CrowdPose
  has no segmentations; HigherHRNet then masks nothing, which teaches the network to
  ignore those people).

Everywhere else the mask is 1 and the loss counts.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from occlupose.data.datasets import ImageRecord

__all__ = ["box_to_mask", "ignore_mask", "segmentation_to_mask"]

logger = logging.getLogger(__name__)


def _decode(rle: Any) -> np.ndarray:
    # pycocotools' Cython decoder trips NumPy 2's "copy keyword" DeprecationWarning on
    # every call; the result is correct, the warning is noise for our users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray | None:
    """Rasterise a COCO segmentation to a bool ``(height, width)`` mask.

    Accepts a list of polygons (``[[x0, y0, x1, y1, ...], ...]``), an uncompressed RLE
    (``{"size": [h, w], "counts": [...]}``, as crowd regions are stored) or a compressed
    RLE (``counts`` a string). Returns None when there is nothing usable (empty or
    degenerate polygons, an RLE of another image size).
    """
    if isinstance(segmentation, Mapping):
        size = list(segmentation.get("size", []))
        if size != [height, width] or "counts" not in segmentation:
            return None
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(dict(segmentation), height, width)
        else:
            rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
        return _decode(rle)
    if isinstance(segmentation, list):
        # pycocotools needs at least 3 points per polygon; drop degenerate ones.
        polygons = [
            [float(v) for v in poly]
            for poly in segmentation
            if isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
        ]
        if not polygons:
            return None
        rles = mask_utils.frPyObjects(polygons, height, width)
        return _decode(mask_utils.merge(rles))
    return None


def box_to_mask(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool ``(height, width)`` mask of the pixels a COCO ``[x, y, w, h]`` box touches."""
    mask = np.zeros((height, width), bool)
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = True
    return mask


def ignore_mask(record: ImageRecord) -> np.ndarray:
    """The loss mask of one image: uint8 ``(height, width)``, 1 = counts, 0 = ignored.

    Ignored: every crowd annotation and every person without a labelled keypoint
    (segmentation, else box). As in HigherHRNet, a crowd region that overlaps a
    labelled person masks that person's pixels too.
    """
    height, width = record.height, record.width
    ignored = np.zeros((height, width), bool)
    labelled = (record.keypoints[:, :, 2] > 0).any(axis=1)
    for i in range(record.num_people):
        if labelled[i] and not record.iscrowd[i]:
            continue
        region = None
        if record.segmentations[i] is not None:
            try:
                region = segmentation_to_mask(record.segmentations[i], height, width)
            except (TypeError, ValueError) as error:
                logger.warning(
                    "%s: annotation %d has an unusable segmentation (%s); masking its box",
                    record.path,
                    int(record.annotation_ids[i]),
                    error,
                )
        if region is None:
            region = box_to_mask(record.boxes[i], height, width)
        ignored |= region
    return (~ignored).astype(np.uint8)
