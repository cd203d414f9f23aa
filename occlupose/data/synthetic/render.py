"""Rasterise a synthetic scene and read keypoint visibility off the rendering.

Everything is first drawn into an *owner buffer*: a ``uint16`` image whose value at
each pixel says which object (and which part of it) is nearest to the camera there,
``object * 32 + part``. Objects are drawn far to near (painter's algorithm), people
part by part in their own depth order. Colours and textures are then looked up from
the owner buffer in a few vectorised numpy operations, and the same buffer decides
visibility, so labels and pixels cannot disagree.

Visibility of a keypoint (COCO's ``v``):

* ``0`` (and ``x = y = 0``) if it lies outside the image;
* ``2`` if its pixel shows one of the person's parts the keypoint lies on
  (:attr:`Body.own_parts`) and, in a small window around it, such pixels are at
  least as many as pixels of other people, occluders or the person's other parts
  (background is not counted, so thin limbs are not penalised);
* ``1`` otherwise: inside the image but covered by something nearer: another
  person, an occluder or the person's own body (an arm behind the torso, the far
  shoulder in a side view, the face of someone seen from behind).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from occlupose.data.synthetic.poses import PART_NAMES, Body

__all__ = ["Occluder", "RenderedPerson", "SyntheticScene", "compose_scene"]

_PART_BITS = 5  # owner id = object << 5 | part: room for 32 parts (people have 11)
_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel accurate drawing
_SCALE = 1 << _SHIFT
_NOISE_MARGIN = 64  # sensor-noise crops start anywhere in a 64x64 range
_KIND_BACKGROUND, _KIND_CLUTTER, _KIND_PERSON, _KIND_OCCLUDER = 0, 1, 2, 3


@dataclass
class Occluder:
    """A foreground object: a filled polygon in image pixels at a scene depth.

    ``kind`` is descriptive (``"box"``, ``"pole"``, ``"blob"``); larger ``depth`` is
    further away, on the same scale as the person depths given to
    :func:`compose_scene`.
    """

    kind: str
    polygon: np.ndarray
    depth: float


@dataclass
class RenderedPerson:
    """Ground truth of one rendered person.

    Attributes:
        keypoints: (P, 3) float ``x, y, v`` for :data:`POINT_NAMES`, in image pixels
            (pixel centres at integer coordinates); ``v`` as in COCO (see module doc).
        bbox: ``[x, y, w, h]`` of the full (amodal) silhouette, clipped to the image.
        mask: (H, W) bool, the visible silhouette.
        area: number of visible silhouette pixels.
        height: standing height in pixels.
        pose_kind, view: how the pose was sampled.
    """

    keypoints: np.ndarray
    bbox: list[float]
    mask: np.ndarray
    area: int
    height: float
    pose_kind: str
    view: str

    @property
    def occlusion_rate(self) -> float:
        """Hidden over labelled keypoints (``#v=1 / #v>0``); 0 with none labelled."""
        labelled = int((self.keypoints[:, 2] > 0).sum())
        return float((self.keypoints[:, 2] == 1).sum()) / labelled if labelled else 0.0


class SyntheticScene(NamedTuple):
    """A rendered scene: BGR ``uint8`` image (H, W, 3), its people, its occlusion level."""

    image: np.ndarray
    people: list[RenderedPerson]
    level: str


@dataclass
class _Palette:
    """Per-object colours (per part) and texture parameters, indexed by object."""

    colours: list[np.ndarray] = field(default_factory=list)  # (32, 3) per object
    kinds: list[int] = field(default_factory=list)
    # stripe amplitude, stripe wave vector (kx, ky), phase, noise amplitude
    textures: list[tuple[float, float, float, float, float]] = field(default_factory=list)

    def add(self, kind: int, colours: np.ndarray, texture: tuple) -> int:
        self.kinds.append(kind)
        self.colours.append(colours)
        self.textures.append(texture)
        return len(self.kinds) - 1


def _random_texture(rng: np.random.Generator, scale: float) -> tuple:
    """Plain, striped or noisy surface; ``scale`` (pixels) sets the stripe period."""
    choice = rng.random()
    stripe = noise = 0.0
    kx = ky = phase = 0.0
    if choice < 0.4:
        stripe = float(rng.uniform(0.08, 0.3))
        period = max(3.0, scale * float(rng.uniform(0.04, 0.12)))
        theta = float(rng.uniform(0, np.pi))
        kx, ky = 2 * np.pi / period * np.cos(theta), 2 * np.pi / period * np.sin(theta)
        phase = float(rng.uniform(0, 2 * np.pi))
    elif choice < 0.8:
        noise = float(rng.uniform(0.1, 0.35))
    return (stripe, kx, ky, phase, noise)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(25, 235, size=3)


def _person_appearance(rng: np.random.Generator, body: Body) -> np.ndarray:
    """Colours of the body parts: skin, shirt (with or without sleeves), trousers, face marks."""
    skin = np.array([60.0, 90.0, 140.0]) * rng.uniform(0.6, 1.6) + rng.uniform(-15, 15, 3)
    shirt, trousers = _random_colour(rng), _random_colour(rng)
    long_sleeves, long_legs = rng.random() < 0.6, rng.random() < 0.7
    colours = np.zeros((1 << _PART_BITS, 3))
    # Dark eyes and a shaded nose mark where the face points are (see poses._FACE_MARKS).
    by_name = {"torso": shirt, "neck": skin, "head": skin, "eyes": skin * 0.25, "nose": skin * 0.65}
    for side in ("left", "right"):
        by_name[f"{side}_upper_arm"] = shirt
        by_name[f"{side}_forearm"] = shirt if long_sleeves else skin
        by_name[f"{side}_thigh"] = trousers
        by_name[f"{side}_shin"] = trousers if long_legs else skin
    for part in body.parts:
        # Shade by depth so that a limb in front of same-coloured clothes stays visible.
        shade = float(np.clip(1.0 - 1.5 * part.depth, 0.7, 1.2))
        colours[part.part_id] = by_name[PART_NAMES[part.part_id]] * shade
    return colours


def _draw_primitive(buf: np.ndarray, prim: tuple, value: int) -> None:
    kind = prim[0]
    if kind == "limb":
        _, p0, p1, r0, r1 = prim
        a = np.round(np.asarray(p0) * _SCALE).astype(np.int32)
        b = np.round(np.asarray(p1) * _SCALE).astype(np.int32)
        ra, rb = (
            max(int(round(r0 * _SCALE)), _SCALE // 2),
            max(int(round(r1 * _SCALE)), _SCALE // 2),
        )
        cv2.circle(buf, (int(a[0]), int(a[1])), ra, value, -1, cv2.LINE_8, _SHIFT)
        cv2.circle(buf, (int(b[0]), int(b[1])), rb, value, -1, cv2.LINE_8, _SHIFT)
        d = np.asarray(p1, dtype=np.float64) - np.asarray(p0, dtype=np.float64)
        length = float(np.hypot(d[0], d[1]))
        if length > 1e-6:
            n = np.array([-d[1], d[0]]) / length
            quad = np.stack([p0 + n * r0, p1 + n * r1, p1 - n * r1, p0 - n * r0])
            cv2.fillConvexPoly(
                buf, np.round(quad * _SCALE).astype(np.int32), value, cv2.LINE_8, _SHIFT
            )
    elif kind == "ellipse":
        _, c, (ax, ay), angle = prim
        centre = (int(round(c[0] * _SCALE)), int(round(c[1] * _SCALE)))
        axes = (max(int(round(ax * _SCALE)), 1), max(int(round(ay * _SCALE)), 1))
        cv2.ellipse(buf, centre, axes, float(angle), 0, 360, value, -1, cv2.LINE_8, _SHIFT)
    else:
        pts = np.round(np.asarray(prim[1]) * _SCALE).astype(np.int32)
        cv2.fillPoly(buf, [pts], value, cv2.LINE_8, _SHIFT)


def _draw_clutter(
    owner: np.ndarray, palette: _Palette, rng: np.random.Generator, count: int
) -> None:
    """Background shapes behind everyone: rectangles, discs and thick lines."""
    size_y, size_x = owner.shape
    size = max(size_y, size_x)
    for _ in range(count):
        obj = palette.add(
            _KIND_CLUTTER,
            np.tile(_random_colour(rng), (1 << _PART_BITS, 1)),
            _random_texture(rng, size * 0.5),
        )
        value = obj << _PART_BITS
        c = rng.uniform(0, 1, 2) * (size_x, size_y)
        s = size * rng.uniform(0.05, 0.4)
        shape = rng.random()
        if shape < 0.4:
            rect = ((float(c[0]), float(c[1])), (float(s), float(s * rng.uniform(0.3, 2))),
                    float(rng.uniform(0, 180)))  # fmt: skip
            _draw_primitive(owner, ("polygon", cv2.boxPoints(rect)), value)
        elif shape < 0.7:
            _draw_primitive(owner, ("ellipse", c, (s / 2, s / 2 * rng.uniform(0.5, 1)), 0.0), value)
        else:
            end = c + rng.normal(0, size / 3, 2)
            r = size * rng.uniform(0.005, 0.03)
            _draw_primitive(owner, ("limb", c, end, r, r), value)


@functools.lru_cache(maxsize=4)
def _pixel_grid(size_y: int, size_x: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size_y, 0:size_x].astype(np.float32)
    return ys, xs


@functools.lru_cache(maxsize=4)
def _sensor_noise_bank(size_y: int, size_x: int) -> np.ndarray:
    """Fixed unit Gaussian noise, a little larger than the image; images use random crops.

    Cropping a shared bank is ~10x cheaper than drawing fresh per-pixel noise, and the
    result is still a deterministic function of the image's generator.
    """
    bank_rng = np.random.default_rng(0x5EED)
    return bank_rng.standard_normal((size_y + _NOISE_MARGIN, size_x + _NOISE_MARGIN, 3), np.float32)


def _colourise(owner: np.ndarray, palette: _Palette, rng: np.random.Generator) -> np.ndarray:
    """Turn the owner buffer into a textured BGR image."""
    size_y, size_x = owner.shape
    colours = np.concatenate(palette.colours).astype(np.float32)  # (objects * 32, 3)
    tex = np.asarray(palette.textures, dtype=np.float32).T  # (5, objects)
    obj = owner >> _PART_BITS
    # np.take is several times faster than fancy indexing for these per-pixel lookups.
    stripe, kx, ky, phase, noise_amp = (np.take(row, obj) for row in tex)
    ys, xs = _pixel_grid(size_y, size_x)
    stripes = stripe * np.sign(np.sin(xs * kx + ys * ky + phase))
    coarse = rng.standard_normal((size_y // 8 + 2, size_x // 8 + 2), dtype=np.float32)
    blotches = cv2.resize(coarse, (size_x, size_y), interpolation=cv2.INTER_LINEAR)
    shade = 1.0 + stripes + noise_amp * blotches
    image = np.take(colours, owner, axis=0) * shade[..., None]
    oy, ox = (int(v) for v in rng.integers(0, _NOISE_MARGIN + 1, size=2))
    noise = _sensor_noise_bank(size_y, size_x)[oy : oy + size_y, ox : ox + size_x]
    image += noise * float(rng.uniform(2, 7))
    image = np.clip(image, 0, 255).astype(np.uint8)
    # A light blur stands in for anti-aliasing and camera softness.
    return cv2.GaussianBlur(image, (3, 3), 0.6)


def _visibility(owner: np.ndarray, obj: int, body: Body, is_foreground: np.ndarray) -> np.ndarray:
    """(P, 3) keypoints ``x, y, v`` of one person (see the module docstring)."""
    size_y, size_x = owner.shape
    pts = body.points
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= size_x - 1) & (pts[:, 1] >= 0)
    inside &= pts[:, 1] <= size_y - 1
    radius = 1 if body.height < 120 else 2
    off = np.arange(-radius, radius + 1)
    px = np.clip(np.round(pts[:, 0]).astype(np.int64), 0, size_x - 1)
    py = np.clip(np.round(pts[:, 1]).astype(np.int64), 0, size_y - 1)
    wx = np.clip(px[:, None, None] + off[None, None, :], 0, size_x - 1)
    wy = np.clip(py[:, None, None] + off[None, :, None], 0, size_y - 1)
    window = owner[wy, wx].astype(np.int64)  # (P, k, k)
    w_obj, w_part = window >> _PART_BITS, window & ((1 << _PART_BITS) - 1)
    own = (w_obj == obj) & (((body.own_parts[:, None, None] >> w_part) & 1) == 1)
    other = ~own & is_foreground[w_obj]
    centre_own = own[:, radius, radius]
    seen = centre_own & (own.sum(axis=(1, 2)) >= other.sum(axis=(1, 2)))
    v = np.where(inside, np.where(seen, 2.0, 1.0), 0.0)
    xy = np.where(inside[:, None], pts, 0.0)
    return np.concatenate([xy, v[:, None]], axis=1)


def compose_scene(
    size: int | tuple[int, int],
    bodies: Sequence[Body],
    person_depths: Sequence[float],
    occluders: Sequence[Occluder],
    rng: np.random.Generator | int,
    *,
    clutter: int | None = None,
    level: str = "custom",
) -> SyntheticScene:
    """Draw people and occluders over a cluttered background and label the people.

    Args:
        size: image side (square) or ``(height, width)``.
        bodies: posed people (:func:`~occlupose.data.synthetic.poses.articulate`).
        person_depths: one scene depth per body; larger is further away. Whole
            people and occluders are drawn far to near.
        occluders: foreground objects with depths on the same scale.
        rng: generator (or seed) for colours, textures and clutter.
        clutter: number of background shapes (random 5-25 if None).
        level: stored on the result.

    Returns:
        the scene; ``people`` holds, in input order, every person with at least one
        visible pixel (people hidden completely or outside the image are dropped).
    """
    if len(bodies) != len(person_depths):
        raise ValueError(f"{len(bodies)} bodies but {len(person_depths)} person depths")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    size_y, size_x = (size, size) if isinstance(size, int) else size
    owner = np.zeros((size_y, size_x), dtype=np.uint16)
    palette = _Palette()
    palette.add(
        _KIND_BACKGROUND,
        np.tile(_random_colour(rng), (1 << _PART_BITS, 1)),
        _random_texture(rng, max(size_y, size_x)),
    )
    clutter = int(rng.integers(5, 26)) if clutter is None else clutter
    num_objects = 1 + clutter + len(bodies) + len(occluders)
    if num_objects > (1 << (16 - _PART_BITS)):  # owner ids must fit in uint16
        raise ValueError(f"too many objects in one scene ({num_objects} > 2048)")
    _draw_clutter(owner, palette, rng, clutter)

    items: list[tuple[float, int, object]] = [
        (float(d), i, b) for i, (b, d) in enumerate(zip(bodies, person_depths, strict=True))
    ]
    items += [(float(o.depth), len(bodies) + i, o) for i, o in enumerate(occluders)]
    person_objs: dict[int, int] = {}
    for _, index, item in sorted(items, key=lambda it: (-it[0], it[1])):
        if isinstance(item, Body):
            obj = palette.add(
                _KIND_PERSON, _person_appearance(rng, item), _random_texture(rng, item.height)
            )
            person_objs[index] = obj
            for part in item.parts:
                for prim in part.primitives:
                    _draw_primitive(owner, prim, (obj << _PART_BITS) | part.part_id)
        else:
            obj = palette.add(
                _KIND_OCCLUDER,
                np.tile(_random_colour(rng), (1 << _PART_BITS, 1)),
                _random_texture(rng, float(np.ptp(item.polygon[:, 1]))),
            )
            _draw_primitive(owner, ("polygon", item.polygon), obj << _PART_BITS)

    image = _colourise(owner, palette, rng)
    kinds = np.asarray(palette.kinds)
    is_foreground = (kinds == _KIND_PERSON) | (kinds == _KIND_OCCLUDER)
    owner_obj = owner >> _PART_BITS
    people = []
    for index, body in enumerate(bodies):
        obj = person_objs[index]
        mask = owner_obj == obj
        area = int(np.count_nonzero(mask))
        if area == 0:
            continue
        x0, y0, x1, y1 = body.extent
        x0, x1 = np.clip([x0, x1], 0, size_x)
        y0, y1 = np.clip([y0, y1], 0, size_y)
        people.append(
            RenderedPerson(
                keypoints=_visibility(owner, obj, body, is_foreground),
                bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                mask=mask,
                area=area,
                height=body.height,
                pose_kind=body.pose.kind,
                view=body.pose.view,
            )
        )
    return SyntheticScene(image, people, level)
