"""A detected person: the unit that decoders return and that evaluation and drawing consume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Person"]


@dataclass
class Person:
    """One person found in an image.

    Attributes:
        keypoints: float array (J, 3) of ``x, y, score`` per joint, in image pixels
            of the original image (pixel centres at integer coordinates, COCO's
            convention). A joint that was not found has score 0.
        score: person confidence in [0, 1] (used to rank detections for AP).
        box: ``(x0, y0, x1, y1)`` in image pixels, from the joints with score > 0.
        completed: (J,) bool, the joints that were not found but filled in by a
            completer (a pose prior or the learned completer); they carry a lower
            score than every joint found. None: no joint completed.
    """

    keypoints: np.ndarray
    score: float
    completed: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 3:
            raise ValueError(f"Person.keypoints must have shape (J, 3), got {self.keypoints.shape}")
        self.score = float(self.score)
        j = self.keypoints.shape[0]
        if self.completed is None:
            self.completed = np.zeros(j, dtype=bool)
        self.completed = np.asarray(self.completed, dtype=bool)
        if self.completed.shape != (j,):
            raise ValueError(f"Person.completed must have shape ({j},), got {self.completed.shape}")

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def box(self) -> tuple[float, float, float, float]:
        found = self.keypoints[self.keypoints[:, 2] > 0]
        if len(found) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        x0, y0 = found[:, :2].min(axis=0)
        x1, y1 = found[:, :2].max(axis=0)
        return (float(x0), float(y0), float(x1), float(y1))

    def to_coco(self, image_id: int, category_id: int = 1) -> dict:
        """This person as one entry of a COCO keypoint-results file."""
        return {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [round(float(v), 3) for v in self.keypoints.reshape(-1)],
            "score": round(self.score, 5),
        }
