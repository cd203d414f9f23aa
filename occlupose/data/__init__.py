"""Datasets, image I/O, loss masks, augmentation and synthetic occluders.

Heavier pieces are imported from their modules: the training dataset from
``occlupose.data.bottom_up`` (it needs torch and the target encoders in
``occlupose.data.targets``) and the synthetic benchmark from ``occlupose.data.synthetic``.
"""

from occlupose.data.augment import (
    ColorJitter,
    OfficialAffine,
    RandomAffine,
    ResizedImage,
    fit_matrix,
    letterbox,
    official_affine,
    resize_short_side,
    transform_keypoints,
    warp_image,
)
from occlupose.data.datasets import (
    LAYOUTS,
    AnnotationError,
    ImageRecord,
    KeypointDataset,
    LoadReport,
    from_layout,
    load_coco_keypoints,
    load_crowdpose,
    load_ochuman,
)
from occlupose.data.image_io import ImageReadError, read_image
from occlupose.data.masks import ignore_mask
from occlupose.data.occluders import Occlusion, SyntheticOccluders, cut_patches, paste_occluders

__all__ = [
    "LAYOUTS",
    "AnnotationError",
    "ColorJitter",
    "ImageReadError",
    "ImageRecord",
    "KeypointDataset",
    "LoadReport",
    "Occlusion",
    "OfficialAffine",
    "RandomAffine",
    "ResizedImage",
    "SyntheticOccluders",
    "cut_patches",
    "fit_matrix",
    "from_layout",
    "ignore_mask",
    "letterbox",
    "load_coco_keypoints",
    "load_crowdpose",
    "load_ochuman",
    "official_affine",
    "paste_occluders",
    "read_image",
    "resize_short_side",
    "transform_keypoints",
    "warp_image",
]
