"""Readers for person-keypoint datasets in COCO format: COCO, CrowdPose, OCHuman, custom.

All of them are read by :func:`load_coco_keypoints`; the dataset-specific functions
only pick the keypoint set and the standard file layout. Nothing is downloaded: the
user points at files that exist.

Coordinates are kept as the annotation files store them: keypoints ``(x, y, v)`` in
pixels of the stored image, pixel centres at integer coordinates (COCO's and
OpenCV's convention); boxes are COCO ``[x, y, w, h]``.

What the loader checks, and what it does about it:

=====================================================  ===================================
problem                                                action
=====================================================  ===================================
file missing, not JSON, no ``images``/``annotations``  :class:`AnnotationError` naming it
an image entry without ``id``/``file_name``/size       :class:`AnnotationError`
no keypoint category / keypoint count != keypoint set  :class:`AnnotationError`
annotation pointing at an unknown image id             skipped, counted
annotation with the wrong number of keypoint values    skipped, counted
labelled keypoint outside the image                    marked unlabelled (v=0), counted
image file missing (``check_image_files=True``)        image skipped, counted; all missing
                                                       -> :class:`FileNotFoundError`
image with no labelled person                          kept (counted) or dropped on request
image with no person annotation at all                 kept (counted) or dropped on request
=====================================================  ===================================

With ``strict=True`` every "skipped"/"marked" row raises instead. Counts are logged
in one summary line at the end and kept in :attr:`KeypointDataset.report`.

Dataset quirks handled here:

* ``num_keypoints`` is ignored and recomputed from the flags (CrowdPose counts only
  its 12 body joints, not head/neck).
* ``area`` missing (CrowdPose) -> ``0.53 * w * h`` of the box, the value
  crowdposetools' and xtcocotools' ``use_area=False`` evaluation uses; COCO person
  masks cover about half their box.
* the ``skeleton`` of the JSON is not used when the keypoint names match a built-in
  set (CrowdPose ships COCO's 17-point skeleton); see
  :func:`~occlupose.structures.keypoint_set.keypoint_set_from_coco_category`.
* CrowdPose's ``crowdIndex`` is kept per image; its always-v=1 head/neck flags are
  kept as they are (the training targets use v>0, not v==2, so they do no harm).
"""

from occlupose.data.datasets.coco import (
    BOX_AREA_FACTOR,
    load_coco_keypoints,
    load_crowdpose,
    load_ochuman,
)
from occlupose.data.datasets.layouts import LAYOUTS, DatasetLayout, from_layout
from occlupose.data.datasets.records import (
    AnnotationError,
    ImageRecord,
    KeypointDataset,
    LoadReport,
)

__all__ = [
    "BOX_AREA_FACTOR",
    "LAYOUTS",
    "AnnotationError",
    "DatasetLayout",
    "ImageRecord",
    "KeypointDataset",
    "LoadReport",
    "from_layout",
    "load_coco_keypoints",
    "load_crowdpose",
    "load_ochuman",
]
