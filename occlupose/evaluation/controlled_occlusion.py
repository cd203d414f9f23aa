"""Controlled occlusion of test images: AP as a function of how much of each person is hidden.

:func:`occlude_image` pastes textured occluders over a chosen fraction of every person's
visible keypoints. It is deterministic in ``(seed, image id)``, so every model evaluated
at a rate sees exactly the same pixels, and the ground truth stays unchanged: a model
is asked to find keypoints it cannot see, as with real occlusion. Any annotated dataset,
real photos included, can so be evaluated at rates 0, 0.1, ..., 0.5.

How a person is occluded (coordinates are COCO's: pixel centres at integer ``x, y``):

* ``k`` of its ``n`` visible (``v = 2``, inside the image) keypoints are chosen at random,
  ``k = rate * n`` rounded stochastically, so the expected covered fraction is ``rate``;
* each chosen keypoint gets one occluder: an ellipse, rotated rectangle or irregular
  polygon whose size is drawn relative to the person's scale ``sqrt(box w * h)`` and
  capped so that no visible keypoint that was not chosen (of this or another person) is
  covered. It is filled, by ``kind``, with a random texture (``"textured"``: noise,
  stripes, checks or smooth blobs), with a patch of the same photo cut from elsewhere
  (``"patches"``: real pixels, often a piece of background or of another person), or
  with either at random (``"mixed"``).

When keypoints are too close together for that (tiny people), a chosen keypoint is still
covered and its neighbour may be covered with it; the returned mask is measured on the
rendered occluders, so it always says what is hidden.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from occlupose.structures.keypoint_set import KeypointSet

__all__ = ["OCCLUDER_KINDS", "occlude_image"]

#: What occluders are filled with (see the module docstring).
OCCLUDER_KINDS = ("textured", "patches", "mixed")

_SHIFT = 4  # fractional bits of polygon vertices given to cv2.fillPoly
_MARGIN = 1.5  # pixels kept between an occluder and a keypoint it must not cover
_MIN_INNER = 1.5  # pixels between a covered keypoint and the occluder's edge


def _image_seed(seed: int, image_id: object) -> np.random.SeedSequence:
    if isinstance(image_id, int | np.integer) and image_id >= 0:
        key = int(image_id)
    else:
        key = zlib.crc32(str(image_id).encode())
    return np.random.SeedSequence([int(seed), key])


def _person_scale(annotation: Mapping, keypoints: np.ndarray) -> float:
    """``sqrt(w * h)`` of the person's box, or of its labelled keypoints without a box."""
    box = annotation.get("bbox")
    if box is not None and len(box) == 4:
        w, h = float(box[2]), float(box[3])
    else:
        labelled = keypoints[keypoints[:, 2] > 0, :2]
        w, h = np.ptp(labelled, axis=0) if len(labelled) else (1.0, 1.0)
    return math.sqrt(max(w * h, 1.0))


def _unit_shape(rng: np.random.Generator) -> np.ndarray:
    """A polygon (V, 2) around the origin with its farthest vertex at distance 1."""
    kind = rng.integers(3)
    angle = rng.uniform(0, math.pi)
    if kind == 0:  # ellipse
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), rng.uniform(0.5, 1.0) * np.sin(t)], axis=1)
    elif kind == 1:  # rectangle
        hh = rng.uniform(0.4, 1.0)
        pts = np.array([[-1, -hh], [1, -hh], [1, hh], [-1, hh]], dtype=np.float64)
    else:  # irregular polygon, star-shaped around the origin
        n = int(rng.integers(6, 10))
        t = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * (2 * math.pi / n)
        radius = rng.uniform(0.7, 1.0, n)
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = pts @ rot.T
    return pts / np.linalg.norm(pts, axis=1).max()


def _inner_radius(pts: np.ndarray) -> float:
    """Distance from the origin to the nearest edge of a polygon that contains it."""
    a, b = pts, np.roll(pts, -1, axis=0)
    ab = b - a
    t = np.clip(-(a * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-12), 0, 1)
    closest = a + t[:, None] * ab
    return float(np.linalg.norm(closest, axis=1).min())


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random (h, w, 3) uint8 texture."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # noisy flat colour
        tex = c0[None, None] + rng.normal(0, 20, (h, w, 3))
    elif kind == 1:  # stripes
        theta = rng.uniform(0, math.pi)
        period = rng.uniform(4, 16)
        phase = (xx * math.cos(theta) + yy * math.sin(theta)) * (2 * math.pi / period)
        s = (0.5 + 0.5 * np.sin(phase))[..., None]
        tex = c0 * s + c1 * (1 - s)
    elif kind == 2:  # checks
        cell = int(rng.integers(3, 12))
        s = (((xx // cell) + (yy // cell)) % 2)[..., None]
        tex = c0 * s + c1 * (1 - s)
    else:  # smooth blobs: upsampled coarse noise
        coarse = rng.uniform(0, 255, (max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
        tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(tex, 0, 255).astype(np.uint8)


def _photo_patch(
    rng: np.random.Generator, image: np.ndarray, x0: int, y0: int, h: int, w: int
) -> np.ndarray:
    """An (h, w, 3) piece of ``image`` that overlaps the window at ``x0, y0`` least.

    Of four random positions the one with the smallest overlap is taken (the first
    without any); a window as large as the image is mirrored so it still differs.
    """
    height, width = image.shape[:2]
    best, best_overlap = (0, 0), None
    for _ in range(4):
        py = int(rng.integers(0, height - h + 1))
        px = int(rng.integers(0, width - w + 1))
        overlap = max(0, min(px + w, x0 + w) - max(px, x0)) * max(
            0, min(py + h, y0 + h) - max(py, y0)
        )
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = (px, py), overlap
        if overlap == 0:
            break
    px, py = best
    patch = image[py : py + h, px : px + w]
    return patch[::-1, ::-1] if best_overlap == h * w else patch


def _choose_targets(
    rng: np.random.Generator,
    points: np.ndarray,
    owner: np.ndarray,
    counts: np.ndarray,
    scales: np.ndarray,
    min_size: float,
) -> np.ndarray:
    """Pick ``counts[p]`` of person p's visible points, preferring ones with room around them.

    A point has room when the nearest point that stays visible is far enough for an
    occluder of ``min_size * scale`` (pass 1) or of a few pixels (pass 2); pass 3 takes
    the rest regardless. Choosing a point only frees room for the others.
    """
    chosen = np.zeros(len(points), dtype=bool)
    dist = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    order = {p: rng.permutation(np.flatnonzero(owner == p)) for p in range(len(counts))}
    for pass_index in range(3):
        for p, candidates in order.items():
            for j in candidates:
                if chosen[owner == p].sum() >= counts[p]:
                    break
                if chosen[j]:
                    continue
                room = dist[j, ~chosen].min(initial=np.inf) - _MARGIN
                needed = (max(min_size * scales[p], 3.0), 2 * _MIN_INNER, -np.inf)[pass_index]
                if room >= needed:
                    chosen[j] = True
    return chosen


def occlude_image(
    image: np.ndarray,
    annotations: Sequence[Mapping],
    rate: float,
    seed: int,
    keypoint_set: KeypointSet,
    *,
    image_id: object | None = None,
    size_range: tuple[float, float] = (0.08, 0.18),
    kind: str = "textured",
) -> tuple[np.ndarray, np.ndarray]:
    """Cover about ``rate`` of each person's visible keypoints with textured occluders.

    Args:
        image: (H, W, 3) uint8 image (any channel order); not modified.
        annotations: the COCO annotations of this image (``keypoints`` as
            ``[x, y, v] * J``, ``bbox``); crowd regions and people without visible
            keypoints get no occluders.
        rate: fraction in [0, 1] of each person's visible keypoints to cover.
        seed: global seed; it is combined with the image id, so each image has its
            own, reproducible occluders.
        keypoint_set: the dataset's keypoints (J).
        image_id: the image's id; default: the ``image_id`` of the annotations.
        size_range: occluder size (farthest extent from its centre) as a fraction of
            the person scale ``sqrt(box w * h)``, before capping.
        kind: what occluders are filled with, one of :data:`OCCLUDER_KINDS`:
            ``"textured"`` (random textures), ``"patches"`` (pieces of this image from
            elsewhere) or ``"mixed"`` (either, at random per occluder). The shapes,
            positions and covered keypoints do not depend on it.

    Returns:
        ``(occluded, hidden)``: the occluded (H, W, 3) uint8 copy, and an (N, J) bool
        array, True where a labelled keypoint (``v > 0``) of annotation ``n`` lies under
        an occluder.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"occlusion rate must be in [0, 1], got {rate}")
    if kind not in OCCLUDER_KINDS:
        raise ValueError(f"occluder kind must be one of {', '.join(OCCLUDER_KINDS)}, got {kind!r}")
    h, w = image.shape[:2]
    num_joints = keypoint_set.num_keypoints
    keypoints = np.zeros((len(annotations), num_joints, 3), dtype=np.float64)
    for n, ann in enumerate(annotations):
        values = np.asarray(ann.get("keypoints", []), dtype=np.float64)
        if values.size != 3 * num_joints:
            raise ValueError(
                f"annotation {ann.get('id', n)} has {values.size // 3} keypoints, "
                f"dataset {keypoint_set.name!r} has {num_joints}"
            )
        keypoints[n] = values.reshape(num_joints, 3)
    if image_id is None:
        ids = {ann.get("image_id") for ann in annotations}
        if len(ids) > 1:
            raise ValueError(f"annotations belong to several images {sorted(ids)}")
        image_id = ids.pop() if ids else 0

    occluded = image.copy()
    pixels = np.rint(keypoints[..., :2]).astype(np.int64)  # (N, J, 2) x, y
    inside = (pixels[..., 0] >= 0) & (pixels[..., 0] < w) & (pixels[..., 1] >= 0)
    inside &= pixels[..., 1] < h
    labelled = (keypoints[..., 2] > 0) & inside
    if rate == 0.0 or len(annotations) == 0:
        return occluded, np.zeros((len(annotations), num_joints), dtype=bool)

    rng = np.random.default_rng(_image_seed(seed, image_id))
    # Patches draw from a stream of their own, so that every kind covers the same spots.
    patch_rng = np.random.default_rng(_image_seed(seed, image_id).spawn(1)[0])
    visible = (keypoints[..., 2] == 2) & inside
    for n, ann in enumerate(annotations):
        if ann.get("iscrowd", 0):
            visible[n] = False
    person, joint = np.nonzero(visible)
    points = pixels[person, joint].astype(np.float64)
    n_visible = visible.sum(axis=1)
    exact = rate * n_visible
    counts = np.floor(exact).astype(int)
    counts += rng.random(len(annotations)) < (exact - counts)
    scales = np.array([_person_scale(a, kp) for a, kp in zip(annotations, keypoints, strict=True)])
    chosen = _choose_targets(rng, points, person, counts, scales, size_range[0] * 0.5)

    mask = np.zeros((h, w), dtype=np.uint8)
    keep = points[~chosen]
    for i in np.flatnonzero(chosen):
        target = points[i]
        shape = _unit_shape(rng)
        inner = _inner_radius(shape)
        offset_frac = rng.uniform(0, 0.5)
        direction = rng.uniform(0, 2 * math.pi)
        size = rng.uniform(*size_range) * scales[person[i]]
        if len(keep):
            room = np.linalg.norm(keep - target, axis=1).min() - _MARGIN
            size = min(size, room / (1 + offset_frac * inner))
        # The target must stay _MIN_INNER inside the occluder's edge.
        size = max(size, _MIN_INNER / (inner * (1 - offset_frac)))
        offset = offset_frac * inner * size
        centre = target + offset * np.array([math.cos(direction), math.sin(direction)])
        vertices = centre + shape * size
        x0, y0 = np.floor(vertices.min(axis=0)).astype(int)
        x1, y1 = np.ceil(vertices.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        local = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        fixed = np.rint((vertices - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(local, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        texture = _texture(rng, y1 - y0, x1 - x0)
        if kind == "patches" or (kind == "mixed" and patch_rng.random() < 0.5):
            texture = _photo_patch(patch_rng, image, x0, y0, y1 - y0, x1 - x0)
        region = occluded[y0:y1, x0:x1]
        region[local > 0] = texture[local > 0]
        mask[y0:y1, x0:x1] |= local

    hidden = np.zeros((len(annotations), num_joints), dtype=bool)
    hidden[labelled] = mask[pixels[labelled][:, 1], pixels[labelled][:, 0]] > 0
    return occluded, hidden
