"""Scene layout for the synthetic occlusion benchmark: who stands where, and what is in front.

An occlusion level fixes how many people a scene holds, how much their boxes may
overlap, how often they stand in groups, how many foreground occluders are placed
over them and how large those are, and how often people are seen from the side or
behind (self-occlusion). The levels are tuned so that the per-person occlusion rates
(``#v=1 / #v>0``) of ``none``, ``low``, ``medium`` and ``high`` are clearly separated;
``benchmarks/synth_speed.py`` and ``occlupose synth`` print the distributions.

Every random choice comes from one ``numpy.random.Generator``; :func:`image_rng`
derives it from ``(seed, image_index)`` so that any image can be rendered alone, in
any order or in parallel, with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from occlupose.data.synthetic.poses import Body, articulate, sample_pose
from occlupose.data.synthetic.render import Occluder, SyntheticScene, compose_scene

__all__ = [
    "OCCLUSION_LEVELS",
    "OCCLUSION_CHOICES",
    "OcclusionLevel",
    "image_rng",
    "render_image",
    "render_scene",
    "sample_layout",
]


@dataclass(frozen=True)
class OcclusionLevel:
    """How crowded and occluded the scenes of one level are.

    Attributes:
        name: level name.
        num_people: inclusive range of people per image (fewer when they do not fit).
        max_overlap: largest fraction of a person's box that another person's box
            may cover.
        group_prob: probability that a person is placed next to one already placed.
        occluders_per_person: mean number of foreground occluders per person (Poisson).
        occluder_size: range of occluder size as a fraction of the target's height.
        view_weights: relative frequency of the views in
            :data:`~occlupose.data.synthetic.poses.VIEWS`.
    """

    name: str
    num_people: tuple[int, int]
    max_overlap: float
    group_prob: float
    occluders_per_person: float
    occluder_size: tuple[float, float]
    view_weights: dict[str, float]


_FRONTAL = {"front": 0.85, "three_quarter": 0.15}
_MOSTLY_FRONTAL = {"front": 0.55, "three_quarter": 0.3, "side": 0.05, "back": 0.1}
_ALL_VIEWS = {
    "front": 0.3,
    "three_quarter": 0.25,
    "side": 0.2,
    "back_three_quarter": 0.1,
    "back": 0.15,
}

OCCLUSION_LEVELS: dict[str, OcclusionLevel] = {
    "none": OcclusionLevel("none", (1, 4), 0.0, 0.0, 0.0, (0.0, 0.0), _FRONTAL),
    "low": OcclusionLevel("low", (1, 5), 0.1, 0.2, 0.4, (0.12, 0.3), _MOSTLY_FRONTAL),
    "medium": OcclusionLevel("medium", (2, 6), 0.3, 0.4, 0.7, (0.2, 0.4), _ALL_VIEWS),
    "high": OcclusionLevel("high", (3, 8), 0.6, 0.6, 1.1, (0.25, 0.5), _ALL_VIEWS),
}
# "mixed" draws one of the levels per image.
OCCLUSION_CHOICES: tuple[str, ...] = (*OCCLUSION_LEVELS, "mixed")

# People's standing height as a fraction of the image side: ~30 px at 256 up to
# people taller than the image.
_HEIGHT_RANGE = (0.12, 1.05)
_TRIES_PER_PERSON = 15


def image_rng(seed: int, image_index: int) -> np.random.Generator:
    """The generator of image ``image_index`` of a dataset made with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(image_index)]))


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection over the smaller of two ``(x0, y0, x1, y1)`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-9)


def _place_people(
    rng: np.random.Generator, size: int, level: OcclusionLevel
) -> list[tuple[Body, float]]:
    lo, hi = level.num_people
    count = int(rng.integers(lo, hi + 1))
    log_lo, log_hi = np.log(_HEIGHT_RANGE[0] * size), np.log(_HEIGHT_RANGE[1] * size)
    scene_height = float(np.exp(rng.uniform(log_lo, log_hi)))
    placed: list[tuple[Body, float]] = []
    for _ in range(count):
        height = float(
            np.clip(scene_height * np.exp(rng.normal(0, 0.25)), *np.exp([log_lo, log_hi]))
        )
        body = articulate(sample_pose(rng, view_weights=level.view_weights), height, (0.0, 0.0))
        x0, y0, x1, y1 = body.extent
        for _ in range(_TRIES_PER_PERSON):
            if placed and rng.random() < level.group_prob:
                # Next to someone already placed: shoulder to shoulder or half behind.
                other = placed[int(rng.integers(len(placed)))][0].extent
                ow, oh = other[2] - other[0], other[3] - other[1]
                cx = (other[0] + other[2]) / 2 + rng.choice([-1, 1]) * rng.uniform(0.3, 0.9) * ow
                cy = (other[1] + other[3]) / 2 + rng.uniform(-0.25, 0.25) * oh
            else:
                cx, cy = rng.uniform(0.05, 0.95) * size, rng.uniform(0.1, 0.9) * size
            box = (x0 + cx, y0 + cy, x1 + cx, y1 + cy)
            if all(_overlap(box, b.extent) <= level.max_overlap for b, _ in placed):
                break
        else:
            continue
        # Bigger people are mostly nearer to the camera.
        depth = -np.log(height) + rng.normal(0, 0.3)
        placed.append((body.moved(cx, cy), float(depth)))
    return placed


def _occluder(rng: np.random.Generator, target: Body, depth: float, size: int, scale: float):
    """An occluder over a random point of ``target``, just in front of it."""
    anchor = target.points[int(rng.integers(len(target.points)))]
    anchor = anchor + rng.normal(0, 0.08 * target.height, 2)
    extent = scale * target.height
    choice = rng.random()
    if choice < 0.45:
        kind = "box"
        dims = (extent * rng.uniform(0.6, 1.4), extent * rng.uniform(0.6, 1.4))
        rect = ((float(anchor[0]), float(anchor[1])), tuple(map(float, dims)), rng.uniform(-20, 20))
        polygon = cv2.boxPoints(rect).astype(np.float64)
    elif choice < 0.7:
        kind = "pole"  # long and thin, crossing the whole image
        dims = (max(2.0, extent * rng.uniform(0.15, 0.35)), 3.0 * size)
        rect = ((float(anchor[0]), float(anchor[1])), dims, rng.uniform(-15, 15))
        polygon = cv2.boxPoints(rect).astype(np.float64)
    else:
        kind = "blob"
        angles = np.sort(rng.uniform(0, 2 * np.pi, 10))
        radii = extent / 2 * rng.uniform(0.6, 1.2, 10)
        polygon = anchor + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    return Occluder(kind, polygon, depth - float(rng.uniform(0.01, 0.05)))


def sample_layout(
    rng: np.random.Generator, size: int, level: OcclusionLevel
) -> tuple[list[Body], list[float], list[Occluder]]:
    """People (posed and placed), their depths and the occluders of one scene."""
    placed = _place_people(rng, size, level)
    occluders = []
    if placed and level.occluders_per_person > 0:
        for _ in range(int(rng.poisson(level.occluders_per_person * len(placed)))):
            body, depth = placed[int(rng.integers(len(placed)))]
            scale = float(rng.uniform(*level.occluder_size))
            occluders.append(_occluder(rng, body, depth, size, scale))
    return [b for b, _ in placed], [d for _, d in placed], occluders


def render_scene(
    rng_or_seed: np.random.Generator | int,
    size: int = 256,
    occlusion: str | OcclusionLevel = "mixed",
) -> SyntheticScene:
    """Render one random scene.

    Args:
        rng_or_seed: generator (consumed) or seed.
        size: image side in pixels (square images).
        occlusion: ``none``, ``low``, ``medium``, ``high``, ``mixed`` (one of the four
            drawn uniformly per scene) or a custom :class:`OcclusionLevel`.

    Returns:
        ``(image, people, level)``: BGR ``uint8`` (size, size, 3) image, its
        :class:`~occlupose.data.synthetic.render.RenderedPerson` list and the level's name.
    """
    if isinstance(occlusion, str) and occlusion not in OCCLUSION_CHOICES:
        raise ValueError(
            f"unknown occlusion level {occlusion!r}; choose from {', '.join(OCCLUSION_CHOICES)}"
        )
    if size < 32:
        raise ValueError(f"image size must be at least 32 pixels, got {size}")
    rng = (
        rng_or_seed
        if isinstance(rng_or_seed, np.random.Generator)
        else np.random.default_rng(rng_or_seed)
    )
    if occlusion == "mixed":
        names = list(OCCLUSION_LEVELS)
        occlusion = names[int(rng.integers(len(names)))]
    level = OCCLUSION_LEVELS[occlusion] if isinstance(occlusion, str) else occlusion
    bodies, depths, occluders = sample_layout(rng, size, level)
    return compose_scene(size, bodies, depths, occluders, rng, level=level.name)


def render_image(
    seed: int, image_index: int, size: int = 256, occlusion: str | OcclusionLevel = "mixed"
) -> SyntheticScene:
    """Image ``image_index`` of the dataset ``generate_dataset(..., seed=seed)`` writes."""
    return render_scene(image_rng(seed, image_index), size, occlusion)
