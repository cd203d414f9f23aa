"""The learned pose completer: fills a person's hidden joints from its known ones.

:class:`PoseCompleter` wraps a :class:`~occlupose.models.PoseCompletionGenerator` with
the normalisation it was trained in (:func:`normalise_known`), so callers work in image
pixels::

    from occlupose.decode import load_completer

    completer = load_completer("coco")  # or "crowdpose": the bundled completers
    filled = completer.complete(keypoints, known)  # (P, J, 2), (P, J) -> (P, J, 2)

Normalisation: the template (the training set's mean pose) is fitted to the known
joints by a similarity transform; its scale ``s`` and the known joints' centre define
the frame ``(x - centre_known) / s + centre_template``. Rotation is kept (people are
mostly upright, and which way is down is information). The generator predicts every
joint in that frame, which is mapped back to pixels.

Defined results for bad input: known joints with non-finite coordinates count as
hidden; a person with fewer than ``min_known`` (2) usable known joints, or whose known
joints all coincide (no scale), gets NaN for its hidden joints; a person with every
joint known comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from occlupose.models.pose_completion import PoseCompletionGenerator
from occlupose.structures.keypoint_set import KeypointSet, get_keypoint_set

__all__ = ["BUNDLED_COMPLETERS", "PoseCompleter", "load_completer", "normalise_known"]

_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
BUNDLED_COMPLETERS: dict[str, str] = {
    "coco": "completer_coco.pt",
    "crowdpose": "completer_crowdpose.pt",
}


def normalise_known(
    points: Tensor, known: Tensor, template: Tensor, min_known: int = 2
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Points in the frame fixed by the known joints (see the module docstring).

    Args:
        points: (B, J, 2) pixels; hidden entries may hold anything but must be finite.
        known: (B, J) bool.
        template: (J, 2) mean pose.
        min_known: fewer usable known joints leave the person not ``ok``.

    Returns:
        ``(normalised (B, J, 2), scale (B,), centre_points (B, 2), centre_template (B, 2),
        ok (B,) bool)``; pixels are ``(normalised - centre_template) * scale +
        centre_points``. Rows that are not ``ok`` hold finite placeholders.
    """
    m = known.to(points.dtype).unsqueeze(-1)
    count = m.sum(dim=1).clamp_min(1.0)
    c_pts = (points * m).sum(dim=1) / count
    c_tpl = (template * m).sum(dim=1) / count
    a = (template - c_tpl[:, None]) * m
    b = (points - c_pts[:, None]) * m
    dot = (a * b).sum(dim=(1, 2))
    cross = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(dim=1)
    a2 = a.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)
    scale = torch.sqrt(dot**2 + cross**2) / a2
    spread = b.pow(2).sum(dim=(1, 2)).div(count.squeeze(-1)).sqrt()
    ok = (known.sum(dim=1) >= min_known) & (spread > 1e-6) & (scale > 0)
    scale = torch.where(ok, scale, torch.ones_like(scale))
    normalised = (points - c_pts[:, None]) / scale[:, None, None] + c_tpl[:, None]
    return normalised, scale, c_pts, c_tpl, ok


class PoseCompleter:
    """A trained pose-level generator and its frame, working in image pixels.

    Args:
        generator: the network; its ``template`` buffer is the normalisation template.
        keypoint_set: the joints it completes.
        min_known: people with fewer usable known joints are not completed (NaN).
        metadata: free-form facts kept with the weights (data, recipe, results).
    """

    def __init__(
        self,
        generator: PoseCompletionGenerator,
        keypoint_set: KeypointSet | str,
        *,
        min_known: int = 2,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.keypoint_set = get_keypoint_set(keypoint_set)
        if generator.num_joints != self.keypoint_set.num_keypoints:
            raise ValueError(
                f"the generator has {generator.num_joints} joints, keypoint set "
                f"{self.keypoint_set.name!r} {self.keypoint_set.num_keypoints}"
            )
        if min_known < 2:
            raise ValueError(f"min_known must be at least 2, got {min_known}")
        self.generator = generator.eval()
        self.min_known = int(min_known)
        self.metadata = dict(metadata or {})

    @property
    def num_joints(self) -> int:
        return self.generator.num_joints

    def complete(self, keypoints: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Every joint of every person, the known ones unchanged.

        Args:
            keypoints: (P, J, 2) image pixels; hidden entries may hold anything.
            known: (P, J) bool.

        Returns:
            (P, J, 2) float32. Known joints are returned as given; hidden joints of a
            person that cannot be completed (see the module docstring) are NaN.
        """
        keypoints = np.asarray(keypoints, dtype=np.float32)
        known = np.asarray(known)
        j = self.num_joints
        if keypoints.ndim != 3 or keypoints.shape[1:] != (j, 2):
            raise ValueError(f"keypoints must have shape (P, {j}, 2), got {keypoints.shape}")
        if known.shape != keypoints.shape[:2] or known.dtype != bool:
            raise ValueError(f"known must be bool of shape {keypoints.shape[:2]}")
        out = keypoints.copy()
        if len(out) == 0:
            return out
        usable = known & np.isfinite(keypoints).all(axis=2)
        points = torch.from_numpy(np.where(usable[..., None], keypoints, 0.0).astype(np.float32))
        mask = torch.from_numpy(usable)
        with torch.no_grad():
            template = self.generator.template
            normalised, scale, c_pts, c_tpl, ok = normalise_known(
                points, mask, template, self.min_known
            )
            pred = self.generator(normalised, mask)
            pixels = (pred - c_tpl[:, None]) * scale[:, None, None] + c_pts[:, None]
        pixels = pixels.numpy()
        pixels[~ok.numpy()] = np.nan
        fill = ~known
        out[fill] = pixels[fill]
        # Known joints whose coordinates were not finite were treated as hidden.
        bad = known & ~usable
        out[bad] = pixels[bad]
        return out

    def complete_people(self, people: np.ndarray) -> np.ndarray:
        """The decoder's form: (N, J, 3) ``x, y, score`` with score <= 0 for a missing
        joint. Completed joints get half the person's lowest found score (below every
        joint found); people that cannot be completed are returned as they are."""
        people = np.array(people, dtype=np.float32, copy=True)
        if people.ndim != 3 or people.shape[1:] != (self.num_joints, 3):
            raise ValueError(
                f"people must have shape (N, {self.num_joints}, 3), got {people.shape}"
            )
        found = people[:, :, 2] > 0
        filled = self.complete(people[:, :, :2], found)
        for person, xy, mask in zip(people, filled, found, strict=True):
            missing = ~mask
            if mask.all() or not mask.any() or not np.isfinite(xy[missing]).all():
                continue
            person[missing, :2] = xy[missing]
            person[missing, 2] = 0.5 * person[mask, 2].min()
        return people

    def save(self, path: str | Path) -> None:
        """A plain state dict (float16 weights) plus metadata, loadable with
        ``weights_only=True``."""
        g = self.generator
        torch.save(
            {
                # Weights in float16 halve the file (the bundled ones: 1.1 MB); the
                # template stays float32. Loading casts back to float32.
                "state_dict": {
                    k: v.detach().cpu().to(torch.float32 if k == "template" else torch.float16)
                    for k, v in g.state_dict().items()
                },
                "keypoint_set": self.keypoint_set.name,
                "num_joints": g.num_joints,
                "hidden": g.body[0].out_features,
                "depth": sum(isinstance(m, torch.nn.Linear) for m in g.body) - 1,
                "min_known": self.min_known,
                "metadata": self.metadata,
            },
            path,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> PoseCompleter:
        data = torch.load(path, map_location="cpu", weights_only=True)
        generator = PoseCompletionGenerator(
            data["num_joints"], hidden=data["hidden"], depth=data["depth"]
        )
        generator.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
        return cls(
            generator,
            data["keypoint_set"],
            min_known=data["min_known"],
            metadata=data.get("metadata"),
        )


def load_completer(keypoint_set: KeypointSet | str) -> PoseCompleter:
    """The completer bundled with occlupose for ``"coco"`` or ``"crowdpose"``.

    Raises:
        ValueError: no completer is bundled for that keypoint set.
    """
    name = keypoint_set.name if isinstance(keypoint_set, KeypointSet) else str(keypoint_set)
    if name not in BUNDLED_COMPLETERS:
        raise ValueError(
            f"no completer is bundled for keypoint set {name!r}; "
            f"bundled: {', '.join(sorted(BUNDLED_COMPLETERS))}"
        )
    return PoseCompleter.from_file(_WEIGHTS / BUNDLED_COMPLETERS[name])
