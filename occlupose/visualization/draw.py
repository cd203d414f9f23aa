"""Skeleton drawing with OpenCV: predictions, ground truth with hidden joints, comparison panels.

Images are ``uint8`` BGR (OpenCV's order) of shape (H, W, 3); grayscale (H, W) is
accepted and converted. Keypoints are in image pixels with pixel centres at integer
coordinates. The functions return a new image and never modify their input.

Colours are fixed per limb from the keypoint set: limbs on the person's left side
are warm (red to yellow), on the right side cool (cyan to blue), central limbs
green to purple, so left and right are told apart at a glance and the same limb has
the same colour in every image.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.person import Person

__all__ = [
    "draw_ground_truth",
    "draw_people",
    "joint_sides",
    "limb_colours",
    "score_colours",
    "side_by_side",
]

# OpenCV hue ranges (0-180) per side: left warm, right cool, centre green-purple.
_HUE_RANGES = {1: (0.0, 28.0), -1: (88.0, 125.0), 0: (45.0, 160.0)}
_SIDE_COLOURS = {1: (0, 140, 255), -1: (255, 140, 0), 0: (80, 200, 60)}  # BGR, for joints


def joint_sides(keypoint_set: KeypointSet) -> np.ndarray:
    """Per joint +1 (person's left), -1 (right) or 0 (centre), from names and flip pairs."""
    sides = np.zeros(keypoint_set.num_keypoints, dtype=np.int64)
    for j, name in enumerate(keypoint_set.keypoint_names):
        lowered = name.lower()
        if lowered.startswith(("left", "l_")):
            sides[j] = 1
        elif lowered.startswith(("right", "r_")):
            sides[j] = -1
    for left, right in keypoint_set.flip_pairs:  # (left, right) by convention
        if sides[left] == 0 and sides[right] == 0:
            sides[left], sides[right] = 1, -1
    return sides


def _limb_sides(keypoint_set: KeypointSet) -> list[int]:
    sides = joint_sides(keypoint_set)
    out = []
    for a, b in keypoint_set.limbs:
        pair = {int(sides[a]), int(sides[b])}
        # A limb with a left joint and no right one is a left limb (and vice versa).
        if 1 in pair and -1 not in pair:
            out.append(1)
        elif -1 in pair and 1 not in pair:
            out.append(-1)
        else:
            out.append(0)
    return out


def limb_colours(keypoint_set: KeypointSet) -> list[tuple[int, int, int]]:
    """One BGR colour per limb of ``keypoint_set`` (fixed; see the module docstring)."""
    limb_sides = _limb_sides(keypoint_set)
    colours: list[tuple[int, int, int]] = []
    for i, side in enumerate(limb_sides):
        same = [k for k, s in enumerate(limb_sides) if s == side]
        lo, hi = _HUE_RANGES[side]
        hue = lo + (hi - lo) * same.index(i) / max(len(same) - 1, 1)
        hsv = np.array([[[hue, 255, 235]]], dtype=np.uint8)
        b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
        colours.append((int(b), int(g), int(r)))
    return colours


def score_colours(scores: np.ndarray, colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """(N, 3) BGR colours of scores in [0, 1] through an OpenCV colormap (blue low, red high)."""
    levels = np.clip(np.round(np.asarray(scores, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels.reshape(-1, 1), colormap).reshape(-1, 3)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")


def _as_keypoint_array(
    people: Sequence[Person] | Sequence[np.ndarray] | np.ndarray, keypoint_set: KeypointSet
) -> np.ndarray:
    """(N, J, 3) float array from Persons, one (J, 3) array, or a stack of them."""
    if isinstance(people, np.ndarray):
        arr = people[None] if people.ndim == 2 else people
    else:
        arr_list = [p.keypoints if isinstance(p, Person) else np.asarray(p) for p in people]
        if not arr_list:
            return np.zeros((0, keypoint_set.num_keypoints, 3))
        arr = np.stack(arr_list)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (keypoint_set.num_keypoints, 3):
        raise ValueError(
            f"keypoints must be (N, {keypoint_set.num_keypoints}, 3) for keypoint set "
            f"{keypoint_set.name!r}, got {arr.shape}"
        )
    return arr


def _sizes(
    image: np.ndarray, person: np.ndarray, thickness: int | None, radius: int | None
) -> tuple[int, int]:
    """Line thickness and joint radius: scaled to the image, capped for small people."""
    side = min(image.shape[:2])
    labelled = person[person[:, 2] > 0, :2]
    extent = float(np.ptp(labelled, axis=0).max()) if len(labelled) > 1 else float(side)
    t = thickness if thickness is not None else max(1, int(round(min(side / 200, extent / 40))))
    r = radius if radius is not None else max(1, int(round(min(side / 110, extent / 25))))
    return t, r


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def draw_people(
    image: np.ndarray,
    people: Sequence[Person] | Sequence[np.ndarray] | np.ndarray,
    keypoint_set: KeypointSet,
    *,
    score_threshold: float = 0.1,
    thickness: int | None = None,
    radius: int | None = None,
    colormap: int = cv2.COLORMAP_TURBO,
) -> np.ndarray:
    """Draw predicted skeletons.

    Args:
        image: (H, W, 3) BGR or (H, W) uint8 image.
        people: :class:`~occlupose.structures.person.Person` list, or keypoints
            (N, J, 3) / (J, 3) of ``x, y, score``. A Person's completed joints
            (``Person.completed``) are drawn as hollow rings with a white rim.
        keypoint_set: gives the limbs and left/right sides.
        score_threshold: joints scoring below it are not drawn, nor their limbs.
        thickness, radius: line thickness and joint radius in pixels (by default
            scaled to the image size, and smaller for people that are small in it).
        colormap: OpenCV colormap for joint scores (TURBO: blue 0 to red 1).

    Returns:
        a new (H, W, 3) BGR image.
    """
    canvas = _as_bgr(image)
    kpts = _as_keypoint_array(people, keypoint_set)
    colours = limb_colours(keypoint_set)
    completed = np.zeros(kpts.shape[:2], dtype=bool)
    if not isinstance(people, np.ndarray):
        for i, p in enumerate(people):
            if isinstance(p, Person):
                completed[i] = p.completed
    for person, filled in zip(kpts, completed, strict=True):
        ok = person[:, 2] >= score_threshold
        t, r = _sizes(canvas, person[ok], thickness, radius)
        for (a, b), colour in zip(keypoint_set.limbs, colours, strict=True):
            if ok[a] and ok[b]:
                cv2.line(canvas, _pt(person[a]), _pt(person[b]), colour, t, cv2.LINE_AA)
        joint_colours = score_colours(person[:, 2], colormap)
        for j in np.flatnonzero(ok):
            centre = _pt(person[j])
            colour = tuple(int(c) for c in joint_colours[j])
            if filled[j]:
                # Completed, not found: a hollow ring with a white rim.
                cv2.circle(canvas, centre, r + 1, (255, 255, 255), max(1, t), cv2.LINE_AA)
                cv2.circle(canvas, centre, max(1, r - 1), colour, 1, cv2.LINE_AA)
                continue
            cv2.circle(canvas, centre, r + 1, (20, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(canvas, centre, r, colour, -1, cv2.LINE_AA)
    return canvas


def draw_ground_truth(
    image: np.ndarray,
    keypoints: np.ndarray,
    keypoint_set: KeypointSet,
    *,
    thickness: int | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """Draw annotated skeletons; hidden joints (v=1) as hollow circles with a cross.

    Args:
        image: (H, W, 3) BGR or (H, W) uint8 image.
        keypoints: (N, J, 3) or (J, 3) ``x, y, v`` with COCO visibility flags
            (0 unlabelled: not drawn, 1 labelled but hidden, 2 visible).
        keypoint_set: gives the limbs and left/right sides.
        thickness, radius: as in :func:`draw_people`.

    Limbs touching a hidden joint are drawn at half thickness. Visible joints are
    filled discs coloured by side (left orange, right blue, centre green).
    """
    canvas = _as_bgr(image)
    kpts = _as_keypoint_array(keypoints, keypoint_set)
    colours = limb_colours(keypoint_set)
    sides = joint_sides(keypoint_set)
    for person in kpts:
        v = person[:, 2]
        t, r = _sizes(canvas, person, thickness, radius)
        for (a, b), colour in zip(keypoint_set.limbs, colours, strict=True):
            if v[a] > 0 and v[b] > 0:
                width = t if v[a] == 2 and v[b] == 2 else max(1, t // 2)
                cv2.line(canvas, _pt(person[a]), _pt(person[b]), colour, width, cv2.LINE_AA)
        for j in np.flatnonzero(v > 0):
            cx, cy = _pt(person[j])
            colour = _SIDE_COLOURS[int(sides[j])]
            if v[j] == 2:
                cv2.circle(canvas, (cx, cy), r + 1, (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(canvas, (cx, cy), r, colour, -1, cv2.LINE_AA)
            else:
                # Hollow ring with a cross: the joint is labelled but not seen.
                ring = r + 1
                cv2.circle(canvas, (cx, cy), ring, colour, max(1, t), cv2.LINE_AA)
                d = max(1, int(round(ring * 0.7)))
                cv2.line(canvas, (cx - d, cy - d), (cx + d, cy + d), colour, 1, cv2.LINE_AA)
                cv2.line(canvas, (cx - d, cy + d), (cx + d, cy - d), colour, 1, cv2.LINE_AA)
    return canvas


def side_by_side(
    left: np.ndarray,
    right: np.ndarray,
    titles: tuple[str, str] | None = ("ground truth", "prediction"),
    *,
    gap: int = 4,
) -> np.ndarray:
    """Two images next to each other with a title bar over each.

    ``right`` is resized (aspect ratio kept) to ``left``'s height. Returns a BGR image
    of height ``H + title bar`` (no bar when ``titles`` is None).
    """
    left, right = _as_bgr(left), _as_bgr(right)
    h = left.shape[0]
    if right.shape[0] != h:
        w = max(1, int(round(right.shape[1] * h / right.shape[0])))
        right = cv2.resize(right, (w, h), interpolation=cv2.INTER_AREA)
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    panels = [left, spacer, right]
    if titles is None:
        return np.concatenate(panels, axis=1)
    bar_h = max(16, int(round(h / 14)))
    scale = bar_h / 30.0
    bars = []
    for panel, title in ((left, titles[0]), (spacer, ""), (right, titles[1])):
        bar = np.full((bar_h, panel.shape[1], 3), 32, dtype=np.uint8)
        if title:
            org = (4, int(bar_h * 0.72))
            font = cv2.FONT_HERSHEY_SIMPLEX
            cv2.putText(bar, title, org, font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        bars.append(bar)
    return np.concatenate([np.concatenate(bars, axis=1), np.concatenate(panels, axis=1)], axis=0)
