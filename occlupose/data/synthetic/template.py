"""A fixed standing person: known poses for tests and benchmarks of decoders and models."""

from __future__ import annotations

import numpy as np

__all__ = ["STANDING_COCO", "standing_person"]

# A COCO-17 person facing the camera, 1 unit tall, origin at the pelvis, y down.
# fmt: off
STANDING_COCO = np.array([
    (0.00, -0.46), (0.04, -0.49), (-0.04, -0.49), (0.09, -0.47), (-0.09, -0.47),
    (0.17, -0.30), (-0.17, -0.30), (0.22, -0.10), (-0.22, -0.10), (0.24, 0.08),
    (-0.24, 0.08), (0.10, 0.04), (-0.10, 0.04), (0.11, 0.27), (-0.11, 0.27),
    (0.12, 0.50), (-0.12, 0.50),
])
# fmt: on


def standing_person(cx: float, cy: float, height: float) -> np.ndarray:
    """(17, 3) COCO keypoints ``x, y, v=2`` of :data:`STANDING_COCO` scaled to ``height``
    pixels with its pelvis at ``(cx, cy)``."""
    keypoints = np.full((17, 3), 2.0)
    keypoints[:, :2] = STANDING_COCO * height + (cx, cy)
    return keypoints
