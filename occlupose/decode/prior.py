"""Completing people with a pose prior: the training pose that best fits the joints found.

Grouping leaves out every joint it found no peak for, and a joint left out scores zero
in OKS however close a guess would have been. :class:`PosePrior` keeps reference poses
(the fully labelled people of a training set, hidden joints included) and fills a
person's missing joints from the reference that fits the found ones best under a
similarity transform (scale, rotation, translation): a nearest-neighbour pose prior
applied after grouping. It complements the generation-recovery module, which completes
heatmaps, for joints that stay below the detection threshold.

The fit is in closed form with complex numbers: for reference joints ``a`` and found
joints ``b`` (both centred), ``z = <a, b> / <a, a>`` minimises ``|z a - b|^2``; the
reference with the smallest residual wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["PosePrior", "fit_reference_pose"]


def fit_reference_pose(
    keypoints: np.ndarray, known: np.ndarray, references: np.ndarray
) -> tuple[np.ndarray, float]:
    """The reference pose that best fits the ``known`` keypoints, mapped onto them.

    Args:
        keypoints: (J, 2) positions; only the ``known`` ones are read.
        known: (J,) bool, at least two True.
        references: (M, J, 2) poses.

    Returns:
        ``(pose, residual)``: the (J, 2) best reference after its least-squares
        similarity transform onto the known keypoints, and the sum of squared distances
        left at the known keypoints.
    """
    references = np.asarray(references, dtype=np.float64)
    return _fit(keypoints, known, references[:, :, 0] + 1j * references[:, :, 1])


def _fit(keypoints: np.ndarray, known: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`fit_reference_pose` on (M, J) complex references ``x + iy``."""
    known = np.asarray(known, dtype=bool)
    if known.sum() < 2:
        raise ValueError("fitting a similarity transform needs at least two known keypoints")
    keypoints = np.asarray(keypoints, dtype=np.float64)
    target = keypoints[known, 0] + 1j * keypoints[known, 1]
    ref_mean = refs[:, known].mean(axis=1, keepdims=True)
    a = refs[:, known] - ref_mean
    b = target - target.mean()
    norm = np.maximum((np.abs(a) ** 2).sum(axis=1), 1e-12)
    z = (np.conj(a) * b).sum(axis=1) / norm  # scale and rotation per reference
    residual = (np.abs(b) ** 2).sum() - np.abs(z) ** 2 * norm
    best = int(np.argmin(residual))
    fitted = z[best] * (refs[best] - ref_mean[best]) + target.mean()
    return np.stack([fitted.real, fitted.imag], axis=1), float(max(residual[best], 0.0))


class PosePrior:
    """Reference poses for completing the people a grouper returns.

    Args:
        poses: (M, J, 2) reference poses, every joint placed (any coordinate frame: the
            fit removes position, scale and rotation), e.g.
            :func:`occlupose.evaluation.labelled_poses` of the training annotations.
        max_poses: keep at most this many (a seeded random subset), which bounds the
            cost per person; None keeps all.
        min_known: people with fewer found joints are left as they are (two points fix a
            similarity transform exactly, so two tell nothing about the pose).
        seed: the subset's seed.
    """

    def __init__(
        self,
        poses: np.ndarray,
        *,
        max_poses: int | None = 2000,
        min_known: int = 3,
        seed: int = 0,
    ) -> None:
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[2] != 2 or len(poses) == 0:
            raise ValueError(f"reference poses must have shape (M, J, 2), got {poses.shape}")
        if not np.isfinite(poses).all():
            raise ValueError("reference poses must be finite")
        if min_known < 2:
            raise ValueError(f"min_known must be at least 2, got {min_known}")
        if max_poses is not None and len(poses) > max_poses:
            keep = np.random.default_rng(seed).choice(len(poses), max_poses, replace=False)
            poses = poses[np.sort(keep)]
        # Centred and scaled to unit spread: the fit is invariant to both, and float32
        # storage keeps precision.
        poses = poses - poses.mean(axis=1, keepdims=True)
        spread = np.sqrt((poses**2).sum(axis=(1, 2), keepdims=True) / poses.shape[1])
        self.poses = (poses / np.maximum(spread, 1e-12)).astype(np.float32)
        self.min_known = int(min_known)
        # The fit works on complex points; converting once keeps it out of every person.
        self._complex = self.poses[:, :, 0].astype(np.float64) + 1j * self.poses[:, :, 1]

    @property
    def num_joints(self) -> int:
        return int(self.poses.shape[1])

    def complete(self, people: np.ndarray) -> np.ndarray:
        """Fill the missing joints of every person with enough found ones.

        Args:
            people: (N, J, 3) ``x, y, score``; a joint with score <= 0 is missing.

        Returns:
            A copy with missing joints placed by the best-fitting reference. Their score
            is half the lowest found score of that person, so they rank below every
            joint that was found; the caller's person scores are not changed.
        """
        people = np.array(people, dtype=np.float32, copy=True)
        if people.ndim != 3 or people.shape[2] != 3:
            raise ValueError(f"people must have shape (N, J, 3), got {people.shape}")
        if people.shape[1] != self.num_joints:
            raise ValueError(
                f"people have {people.shape[1]} joints, the pose prior {self.num_joints}"
            )
        for person in people:
            found = person[:, 2] > 0
            if found.sum() < self.min_known or found.all():
                continue
            pose, _ = _fit(person[:, :2], found, self._complex)
            person[~found, :2] = pose[~found]
            person[~found, 2] = 0.5 * person[found, 2].min()
        return people

    def complete_people(self, people: np.ndarray) -> np.ndarray:
        """:meth:`complete`, under the name the decoder calls (see ``PeopleCompleter``)."""
        return self.complete(people)

    def metadata(self) -> dict[str, Any]:
        """Checkpoint entries that :meth:`from_metadata` reads back (a float32 tensor of
        the references and ``min_known``)."""
        return {
            "pose_prior": torch.from_numpy(self.poses.copy()),
            "pose_prior_min_known": self.min_known,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> PosePrior | None:
        """The prior stored by :meth:`metadata` in a checkpoint's metadata, or None."""
        poses = metadata.get("pose_prior")
        if poses is None:
            return None
        poses = poses.numpy() if isinstance(poses, torch.Tensor) else np.asarray(poses)
        # Stored normalised: normalising again changes them only by float32 rounding.
        return cls(poses, max_poses=None, min_known=int(metadata.get("pose_prior_min_known", 3)))
