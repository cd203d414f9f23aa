"""Known poses for the decoder tests: COCO-17 stick people rendered into network-like maps.

The helpers are handed to tests through the ``synth`` fixture (the suite runs with
``--import-mode=importlib``, so test modules cannot import each other).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from occlupose.data.synthetic.template import standing_person
from occlupose.data.targets import render_heatmaps, render_limb_fields, render_tag_maps
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIGMA = 2.0
LIMB_WIDTH = 1.5
TAG_RADIUS = 3.0


def person(
    cx: float,
    cy: float,
    height: float,
    *,
    missing: tuple[int, ...] = (),
    moved: dict[int, tuple[float, float]] | None = None,
) -> np.ndarray:
    """(17, 3) keypoints ``x, y, v``: the template scaled to ``height`` around ``(cx, cy)``.

    ``missing`` joints get ``v = 0``; ``moved`` places joints at absolute positions.
    """
    kp = standing_person(cx, cy, height)
    kp[:, 2] = 1
    for j, xy in (moved or {}).items():
        kp[j, :2] = xy
    kp[list(missing), 2] = 0
    return kp


def tag_maps_for(people: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps and ideal tag maps; person ``n`` has tag ``2 (n + 1)``."""
    heatmaps = render_heatmaps(people, size, SIGMA)
    tags = render_tag_maps(people, 2.0 * (np.arange(len(people)) + 1), size, TAG_RADIUS)
    return heatmaps, tags


def limb_maps_for(people: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps and limb fields for COCO's skeleton."""
    heatmaps = render_heatmaps(people, size, SIGMA)
    fields = render_limb_fields(people, COCO_KEYPOINTS.limbs, size, LIMB_WIDTH)
    return heatmaps, fields


def assert_recovers(decoded: np.ndarray, truth: np.ndarray, size: tuple[int, int]) -> None:
    """Every true person is one decoded person with every labelled in-map joint within 1 px.

    ``decoded`` (N, J, 3) uses the decoders' pixel-corner convention (0.5 is subtracted);
    ``truth`` (P, J, 3) pixel centres. Decoded people are matched one to one; extra
    decoded people are allowed only if they hold no true joint.
    """
    height, width = size
    xy = decoded[:, :, :2] - 0.5
    found = decoded[:, :, 2] > 0
    used: set[int] = set()
    for p, gt in enumerate(truth):
        inside = (
            (gt[:, 2] > 0)
            & (gt[:, 0] >= -0.5)
            & (gt[:, 0] < width - 0.5)
            & (gt[:, 1] >= -0.5)
            & (gt[:, 1] < height - 0.5)
        )
        close = found & (np.hypot(*(xy - gt[None, :, :2]).transpose(2, 0, 1)) < 1.0)
        hits = (close & inside[None]).sum(axis=1)
        best = int(np.argmax(hits))
        assert hits[best] == inside.sum(), (
            f"person {p}: best decoded person {best} has {hits[best]} of {inside.sum()} "
            f"joints within 1 px; missing joints {np.flatnonzero(inside & ~close[best])}"
        )
        assert best not in used, f"person {p} decoded into the same person as another"
        used.add(best)


@pytest.fixture(scope="session")
def synth() -> SimpleNamespace:
    """The helpers above: ``person``, ``tag_maps_for``, ``limb_maps_for``, ``assert_recovers``."""
    return SimpleNamespace(
        person=person,
        tag_maps_for=tag_maps_for,
        limb_maps_for=limb_maps_for,
        assert_recovers=assert_recovers,
    )
