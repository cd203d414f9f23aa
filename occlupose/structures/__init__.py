"""Data structures shared across occlupose: keypoint sets, network outputs, detected people."""

from occlupose.structures.keypoint_set import (
    COCO_KEYPOINTS,
    CROWDPOSE_KEYPOINTS,
    KeypointSet,
    get_keypoint_set,
    keypoint_set_from_coco_category,
    register_keypoint_set,
)
from occlupose.structures.person import Person
from occlupose.structures.pose_outputs import PoseOutputs

__all__ = [
    "COCO_KEYPOINTS",
    "CROWDPOSE_KEYPOINTS",
    "KeypointSet",
    "Person",
    "PoseOutputs",
    "get_keypoint_set",
    "keypoint_set_from_coco_category",
    "register_keypoint_set",
]
