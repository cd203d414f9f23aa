"""Synthetic occluders: paste shapes over people and record which joints they hide.

Real occlusion labels are scarce and noisy (COCO's v=1 covers ~13 % of joints;
CrowdPose marks head and neck v=1 always). Pasting occluders makes occlusion whose
ground truth is exact: a joint is *hidden* when the pixel it lies on was painted by
an occluder. The generation-recovery module learns to complete heatmaps from these
pairs (visible joints in, every labelled joint out).

Occluders are placed on people: each one is centred near a random labelled joint
of a random person, sized relative to that person, and is one of

* a rectangle, ellipse or random polygon filled with a texture (noisy solid colour
  or stripes), or
* a patch cut from another image (``patch_sources``): an RGB source textures a
  random shape, an RGBA source (an object cut-out) brings its own shape (alpha > 127).

Edges are hard (no blending), so "under an occluder" is a yes/no per pixel.
Joint pixel = ``(floor(x + 0.5), floor(y + 0.5))`` (centres at integer coordinates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["Occlusion", "SyntheticOccluders", "cut_patches", "paste_occluders"]

_SHAPES = ("rectangle", "ellipse", "polygon")


class Occlusion(NamedTuple):
    """Result of :func:`paste_occluders`.

    Attributes:
        image: ``(H, W, 3)`` uint8, a copy of the input with the occluders painted in.
        hidden: bool ``(N, J)``: joint labelled (v>0), inside the image, and its pixel
            was painted by an occluder.
        mask: bool ``(H, W)``: pixels painted by an occluder.
    """

    image: np.ndarray
    hidden: np.ndarray
    mask: np.ndarray


def _joint_pixels(keypoints: np.ndarray, height: int, width: int) -> tuple[np.ndarray, ...]:
    """Rounded joint pixels and whether each joint is labelled and inside the image."""
    px = np.floor(keypoints[..., 0] + 0.5).astype(np.int64)
    py = np.floor(keypoints[..., 1] + 0.5).astype(np.int64)
    usable = (keypoints[..., 2] > 0) & (px >= 0) & (px < width) & (py >= 0) & (py < height)
    return px, py, usable


def _person_scales(keypoints: np.ndarray, usable: np.ndarray, default: float) -> np.ndarray:
    """sqrt(area) of each person's box around its usable joints (or ``default``)."""
    scales = np.full(keypoints.shape[0], default, np.float64)
    for n in range(keypoints.shape[0]):
        pts = keypoints[n, usable[n], :2]
        if len(pts) >= 2:
            w, h = np.ptp(pts, axis=0)
            # A person seen edge-on (all joints on a line) still has some width.
            scales[n] = max(np.sqrt(max(w, 1.0) * max(h, 1.0)), 0.5 * max(w, h), 8.0)
    return scales


def _shape_mask(rng: np.random.Generator, size: float, side: int) -> np.ndarray:
    """uint8 ``(side, side)`` mask of a random shape of about ``size`` px, centred."""
    mask = np.zeros((side, side), np.uint8)
    centre = np.array([(side - 1) / 2, (side - 1) / 2])
    kind = _SHAPES[rng.integers(len(_SHAPES))]
    half_major = size / 2
    half_minor = half_major * rng.uniform(0.35, 1.0)
    angle = rng.uniform(0, 180)
    if kind == "ellipse":
        axes = (max(1, round(half_major)), max(1, round(half_minor)))
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1, -1)
        return mask
    if kind == "rectangle":
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [half_major, half_minor]
    else:  # star-shaped random polygon
        count = int(rng.integers(5, 11))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = half_major * rng.uniform(0.4, 1.0, count)
        corners = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    polygon = corners @ rotation.T + centre
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """uint8 ``(side, side, 3)`` noisy solid colour or two-colour stripes."""
    if rng.random() < 0.5:
        colour = rng.integers(0, 256, 3)
        noise = rng.normal(0.0, rng.uniform(0, 30), (side, side, 1))
        return np.clip(colour + noise, 0, 255).astype(np.uint8)
    first, second = rng.integers(0, 256, (2, 3))
    period = rng.uniform(4, 20)
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:side, 0:side]
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) / period
    stripes = (np.floor(phase) % 2).astype(bool)[:, :, None]
    return np.where(stripes, first, second).astype(np.uint8)


def _patch(
    rng: np.random.Generator, sources: Sequence[np.ndarray], side: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``(side, side, 3)`` patch from a random source and its own mask if it has alpha."""
    source = sources[int(rng.integers(len(sources)))]
    h, w = source.shape[:2]
    if source.shape[2] == 4:  # an object cut-out: use all of it
        crop = source
    else:
        ch = int(rng.integers(max(1, h // 4), h + 1))
        cw = int(rng.integers(max(1, w // 4), w + 1))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = source[y0 : y0 + ch, x0 : x0 + cw]
    crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR)
    if crop.ndim == 3 and crop.shape[2] == 4:
        return np.ascontiguousarray(crop[:, :, :3]), (crop[:, :, 3] > 127).astype(np.uint8)
    return crop, None


def paste_occluders(
    image: np.ndarray,
    keypoints: np.ndarray,
    rng: np.random.Generator,
    *,
    probability: float = 0.5,
    max_occluders: int = 3,
    size_range: tuple[float, float] = (0.2, 0.6),
    patch_sources: Sequence[np.ndarray] | None = None,
    patch_probability: float = 0.5,
) -> Occlusion:
    """With ``probability``, paste 1..``max_occluders`` occluders over people.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (not modified).
        keypoints: ``(N, J, 3)`` ``x, y, v`` in the pixels of ``image``.
        rng: the only source of randomness.
        probability: chance that this image gets any occluder.
        max_occluders: the number of occluders is uniform in ``1..max_occluders``.
        size_range: occluder size (longer extent) as a fraction of the person's scale,
            sqrt of the area of the box around its labelled joints.
        patch_sources: images to cut patches from, ``(h, w, 3)`` RGB or ``(h, w, 4)``
            RGBA cut-outs; None: textured shapes only.
        patch_probability: chance that an occluder is a patch, when there are sources.

    Returns:
        :class:`Occlusion` with the new image, ``hidden (N, J)`` and the occluder mask.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    if max_occluders < 1:
        raise ValueError(f"max_occluders must be >= 1, got {max_occluders}")
    height, width = image.shape[:2]
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, J, 3), got {keypoints.shape}")
    px, py, usable = _joint_pixels(keypoints, height, width)
    occluded = np.zeros((height, width), bool)
    people = np.flatnonzero(usable.any(axis=1))
    if len(people) == 0 or rng.random() >= probability:
        return Occlusion(image.copy(), np.zeros(usable.shape, bool), occluded)

    out = image.copy()
    scales = _person_scales(keypoints, usable, default=0.25 * min(height, width))
    for _ in range(int(rng.integers(1, max_occluders + 1))):
        person = people[int(rng.integers(len(people)))]
        joints = np.flatnonzero(usable[person])
        joint = joints[int(rng.integers(len(joints)))]
        size = scales[person] * rng.uniform(*size_range)
        size = float(np.clip(size, 4.0, 2.0 * max(height, width)))
        cx = keypoints[person, joint, 0] + rng.normal(0.0, 0.25 * size)
        cy = keypoints[person, joint, 1] + rng.normal(0.0, 0.25 * size)
        side = int(np.ceil(size * 1.5)) | 1  # odd, so the shape centre is a pixel centre
        use_patch = patch_sources is not None and len(patch_sources) > 0
        use_patch = use_patch and rng.random() < patch_probability
        shape = _shape_mask(rng, size, side)
        if use_patch:
            texture, own_shape = _patch(rng, patch_sources, side)
            if own_shape is not None:
                shape = own_shape
        else:
            texture = _texture(rng, side)
        # Window of the canvas (image) and of the local patch, clipped to the image.
        x0, y0 = int(round(cx)) - side // 2, int(round(cy)) - side // 2
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + side, width), min(y0 + side, height)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        local = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        region = shape[local].astype(bool)
        out[iy0:iy1, ix0:ix1][region] = texture[local][region]
        occluded[iy0:iy1, ix0:ix1] |= region

    hidden = np.zeros(usable.shape, bool)
    hidden[usable] = occluded[py[usable], px[usable]]
    return Occlusion(out, hidden, occluded)


@dataclass(frozen=True)
class SyntheticOccluders:
    """The parameters of :func:`paste_occluders`, bundled for the training dataset."""

    probability: float = 0.5
    max_occluders: int = 3
    size_range: tuple[float, float] = (0.2, 0.6)
    patch_sources: Sequence[np.ndarray] | None = field(default=None, repr=False)
    patch_probability: float = 0.5

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator
    ) -> Occlusion:
        return paste_occluders(
            image,
            keypoints,
            rng,
            probability=self.probability,
            max_occluders=self.max_occluders,
            size_range=self.size_range,
            patch_sources=self.patch_sources,
            patch_probability=self.patch_probability,
        )


def cut_patches(
    images: Sequence[np.ndarray],
    count: int,
    rng: np.random.Generator,
    *,
    size_range: tuple[int, int] = (32, 160),
) -> list[np.ndarray]:
    """Cut ``count`` random square-ish RGB patches out of ``images`` to use as
    ``patch_sources`` (e.g. a few hundred crops of training images)."""
    if not images:
        raise ValueError("cut_patches needs at least one image")
    patches = []
    for _ in range(count):
        image = images[int(rng.integers(len(images)))]
        h, w = image.shape[:2]
        side_h = int(min(h, rng.integers(size_range[0], size_range[1] + 1)))
        side_w = int(min(w, side_h * rng.uniform(0.5, 2.0)))
        y0 = int(rng.integers(0, h - side_h + 1))
        x0 = int(rng.integers(0, w - max(side_w, 1) + 1))
        patches.append(image[y0 : y0 + side_h, x0 : x0 + max(side_w, 1), :3].copy())
    return patches
