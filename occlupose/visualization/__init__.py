"""Drawing skeletons, ground truth with hidden joints, and comparison panels (OpenCV)."""

from occlupose.visualization.draw import (
    draw_ground_truth,
    draw_people,
    joint_sides,
    limb_colours,
    score_colours,
    side_by_side,
)

__all__ = [
    "draw_ground_truth",
    "draw_people",
    "joint_sides",
    "limb_colours",
    "score_colours",
    "side_by_side",
]
