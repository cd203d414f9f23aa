"""Training targets rendered from keypoint annotations, and their inverse for tests.

All functions take ``keypoints`` as a float array (N, J, 3) of ``x, y, v`` per person
and joint, already in *output-map pixels* with pixel centres at integer coordinates
(pixel ``(c, r)`` covers ``[c - 0.5, c + 0.5) x [r - 0.5, r + 0.5)``). A joint is
*labelled* when ``v > 0`` and *inside* a map of size ``(H, W)`` when its nearest pixel
``(round(x), round(y))`` lies in ``[0, W) x [0, H)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "joint_index_array",
    "render_heatmaps",
    "render_limb_fields",
    "render_tag_maps",
]


# Elements of one chunk of limb-segment boxes in render_limb_fields (~0.5 MB per array).
_LIMB_CHUNK = 1 << 16


def _check_keypoints(keypoints: np.ndarray) -> np.ndarray:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim == 2 and keypoints.shape[0] == 0:
        keypoints = keypoints.reshape(0, 0, 3)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, J, 3) of x, y, v; got {keypoints.shape}")
    return keypoints


def _check_size(output_size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(s) for s in output_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"output_size must be (H, W) with positive entries, got {output_size}")
    return height, width


def _nearest_pixel(keypoints: np.ndarray, height: int, width: int):
    """Rounded pixel (N, J) int arrays and the mask of labelled joints inside the map."""
    xi = np.floor(keypoints[..., 0] + 0.5).astype(np.int64)
    yi = np.floor(keypoints[..., 1] + 0.5).astype(np.int64)
    valid = (keypoints[..., 2] > 0) & (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    return xi, yi, valid


def render_heatmaps(
    keypoints: np.ndarray,
    output_size: tuple[int, int],
    sigma: float,
    *,
    centre: str = "subpixel",
) -> np.ndarray:
    """Gaussian heatmaps, one channel per joint type.

    Every labelled joint inside the map adds ``exp(-((u - x)^2 + (v - y)^2) / (2 sigma^2))``
    on the pixels ``(u, v)`` of a window around it; overlapping people take the maximum.
    Where the Gaussian is centred:

    * ``"subpixel"``: at the joint's exact position (peak value 1 only when it falls on
      a pixel centre), window radius ``ceil(3 sigma)``;
    * ``"pixel"``: at the joint's nearest pixel ``(round(x), round(y))`` (value 1 there),
      window radius ``int(3 sigma + 1)``: HigherHRNet's ``HeatmapGenerator``, whose
      (6 sigma + 3)-pixel kernel this is for integer sigma. (That generator takes the
      pixel ``int(x)`` of its own coordinates; pass ``np.trunc`` of them to get it.)

    Args:
        keypoints: (N, J, 3) ``x, y, v`` in output pixels.
        output_size: ``(H, W)`` of the maps.
        sigma: Gaussian standard deviation in output pixels (> 0).
        centre: ``"subpixel"`` or ``"pixel"``.

    Returns:
        (J, H, W) float32 heatmaps.
    """
    keypoints = _check_keypoints(keypoints)
    height, width = _check_size(output_size)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if centre == "subpixel":
        radius = int(np.ceil(3 * sigma))
    elif centre == "pixel":
        radius = int(3 * sigma + 1)
        keypoints = keypoints.copy()
        keypoints[..., :2] = np.floor(keypoints[..., :2] + 0.5)
    else:
        raise ValueError(f"centre must be 'subpixel' or 'pixel', got {centre!r}")
    num_joints = keypoints.shape[1]
    side = 2 * radius + 1
    # A border of ``radius`` takes the parts of windows that fall off the map, so every
    # window is a plain slice; it is cut away at the end.
    canvas = np.zeros((num_joints, height + 2 * radius, width + 2 * radius), dtype=np.float32)
    xi, yi, valid = _nearest_pixel(keypoints, height, width)
    people, joints = np.nonzero(valid)
    if len(people):
        offsets = np.arange(-radius, radius + 1)
        cx, cy = xi[people, joints], yi[people, joints]
        dx = cx[:, None] + offsets - keypoints[people, joints, 0][:, None]
        dy = cy[:, None] + offsets - keypoints[people, joints, 1][:, None]
        # The 2-D Gaussian is separable: outer products of 1-D ones, all windows at once.
        gx = np.exp(-(dx**2) / (2 * sigma**2))
        gy = np.exp(-(dy**2) / (2 * sigma**2))
        windows = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
        for k in range(len(people)):
            region = canvas[joints[k], cy[k] : cy[k] + side, cx[k] : cx[k] + side]
            np.maximum(region, windows[k], out=region)
    return np.ascontiguousarray(canvas[:, radius : radius + height, radius : radius + width])


def render_limb_fields(
    keypoints: np.ndarray,
    limbs: Sequence[tuple[int, int]],
    output_size: tuple[int, int],
    width: float,
) -> np.ndarray:
    """Part-affinity fields: the unit vector of each limb on the pixels it covers.

    For limb ``l = (a, b)`` and every person with both ends labelled (``v > 0``, even
    outside the map: the visible part of the limb is still drawn), every pixel whose
    distance to the segment ``a -> b`` is at most ``width`` receives the unit vector
    from ``a`` to ``b``. Where several people's limbs cover a pixel the vectors are
    averaged. Degenerate limbs (both ends at the same point) are skipped.

    Args:
        keypoints: (N, J, 3) ``x, y, v`` in output pixels.
        limbs: L joint pairs ``(a, b)``, e.g. ``KeypointSet.limbs``.
        output_size: ``(H, W)`` of the maps.
        width: half-width of the field around the segment, in output pixels.

    Returns:
        (2L, H, W) float32; channel ``2l`` holds the x component of limb ``l``,
        channel ``2l + 1`` its y component.
    """
    keypoints = _check_keypoints(keypoints)
    height, map_width = _check_size(output_size)
    if width <= 0:
        raise ValueError(f"limb field width must be positive, got {width}")
    pairs = np.asarray([(int(a), int(b)) for a, b in limbs], dtype=np.int64).reshape(-1, 2)
    num_joints, num_limbs = keypoints.shape[1], len(pairs)
    for a, b in pairs:
        if not (0 <= a < num_joints and 0 <= b < num_joints):
            raise ValueError(f"limb ({a}, {b}) refers to a joint outside 0..{num_joints - 1}")
    fields = np.zeros((2 * num_limbs, height, map_width), dtype=np.float32)
    labelled = keypoints[..., 2] > 0
    # Every drawn (limb, person) segment, limb-major and people in order.
    limb, person = np.nonzero((labelled[:, pairs[:, 0]] & labelled[:, pairs[:, 1]]).T)
    start = keypoints[person, pairs[limb, 0], :2]
    end = keypoints[person, pairs[limb, 1], :2]
    direction = end - start
    length = np.hypot(*direction.T)
    # Only the bounding box of a capsule can be covered.
    low = np.maximum(np.floor(np.minimum(start, end) - width).astype(np.int64), 0)
    high = np.minimum(
        np.ceil(np.maximum(start, end) + width).astype(np.int64), [map_width - 1, height - 1]
    )
    keep = (length >= 1e-6) & (low <= high).all(axis=1)  # degenerate or off the map
    if not keep.any():
        return fields
    limb, start, length = limb[keep], start[keep], length[keep]
    low, high = low[keep], high[keep]
    unit = direction[keep] / length[:, None]
    box = high - low + 1  # (S, 2) widths and heights
    cells = num_limbs * height * map_width
    sums = np.zeros((2, cells))
    count = np.zeros(cells)
    first = 0
    while first < len(limb):
        # Segments are evaluated in chunks on a common box (the largest of the chunk),
        # bounded in size so that one long limb does not inflate every short one.
        last, box_w, box_h = first + 1, box[first, 0], box[first, 1]
        while last < len(limb):
            w, h = max(box_w, box[last, 0]), max(box_h, box[last, 1])
            if (last + 1 - first) * w * h > _LIMB_CHUNK:
                break
            last, box_w, box_h = last + 1, w, h
        s = slice(first, last)
        xs = low[s, 0, None] + np.arange(box_w)  # (S, box_w) map columns
        ys = low[s, 1, None] + np.arange(box_h)
        rel_x = (xs - start[s, 0, None])[:, None, :]
        rel_y = (ys - start[s, 1, None])[:, :, None]
        ux, uy = unit[s, 0, None, None], unit[s, 1, None, None]
        along = np.minimum(np.maximum(rel_x * ux + rel_y * uy, 0.0), length[s, None, None])
        inside = (rel_x - along * ux) ** 2 + (rel_y - along * uy) ** 2 <= width**2
        inside &= (xs <= high[s, 0, None])[:, None, :] & (ys <= high[s, 1, None])[:, :, None]
        segment, row, col = np.nonzero(inside)
        segment += first
        flat = (limb[segment] * height + low[segment, 1] + row) * map_width
        flat += low[segment, 0] + col
        if len(flat):
            # Sums per pixel over the range the chunk touches (people in order).
            lo, hi = flat.min(), flat.max() + 1
            flat -= lo
            for c in range(2):
                sums[c, lo:hi] += np.bincount(flat, weights=unit[segment, c], minlength=hi - lo)
            count[lo:hi] += np.bincount(flat, minlength=hi - lo)
        first = last
    covered = count > 0
    out = fields.reshape(num_limbs, 2, height * map_width)
    for c in range(2):
        out[:, c][covered.reshape(num_limbs, -1)] = sums[c][covered] / count[covered]
    return fields


def joint_index_array(
    keypoints: np.ndarray, output_size: tuple[int, int], max_people: int
) -> np.ndarray:
    """Flat pixel indices of every joint, for the associative-embedding (tag) loss.

    As HigherHRNet's ``JointsGenerator``: entry ``[n, j]`` is ``(y * W + x, 1)`` at the
    joint's nearest pixel when the joint is labelled and inside the map, ``(0, 0)``
    otherwise. People beyond ``max_people`` are dropped; missing rows are zeros.

    Returns:
        (max_people, J, 2) int64.
    """
    keypoints = _check_keypoints(keypoints)
    height, width = _check_size(output_size)
    if max_people < 0:
        raise ValueError(f"max_people must be >= 0, got {max_people}")
    keypoints = keypoints[:max_people]
    out = np.zeros((max_people, keypoints.shape[1], 2), dtype=np.int64)
    xi, yi, valid = _nearest_pixel(keypoints, height, width)
    n = keypoints.shape[0]
    out[:n, :, 0] = np.where(valid, yi * width + xi, 0)
    out[:n, :, 1] = valid
    return out


def render_tag_maps(
    keypoints: np.ndarray,
    tag_values: np.ndarray,
    output_size: tuple[int, int],
    radius: float,
) -> np.ndarray:
    """Ideal associative-embedding tag maps (what a perfectly trained network outputs).

    Each labelled joint inside the map writes its person's tag on the pixels within
    ``radius`` (Euclidean, pixel centres) of its nearest pixel. Where two people's
    discs overlap, the pixel takes the tag of the closer joint (ties: the earlier
    person). Pixels far from every joint are 0. Used to test and benchmark the tag
    grouping on known poses.

    Args:
        keypoints: (N, J, 3) ``x, y, v`` in output pixels.
        tag_values: (N,) one scalar tag per person, or (N, D) for D-dimensional tags.
        output_size: ``(H, W)``.
        radius: disc radius in pixels (>= 0).

    Returns:
        (J, H, W) float32 for scalar tags, (J, H, W, D) for (N, D) tags.
    """
    keypoints = _check_keypoints(keypoints)
    height, width = _check_size(output_size)
    tag_values = np.asarray(tag_values, dtype=np.float32)
    scalar = tag_values.ndim == 1
    if tag_values.ndim == 1:
        values = tag_values[:, None]
    elif tag_values.ndim == 2:
        values = tag_values
    else:
        values = tag_values.reshape(-1)  # rejected below
    if values.ndim != 2 or values.shape[0] != keypoints.shape[0]:
        raise ValueError(
            f"tag_values must have shape (N,) or (N, D) with N = {keypoints.shape[0]} people, "
            f"got {tag_values.shape}"
        )
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    num_joints, dim = keypoints.shape[1], values.shape[1]
    tags = np.zeros((num_joints, height, width, dim), dtype=np.float32)
    best = np.full((num_joints, height, width), np.inf)
    xi, yi, valid = _nearest_pixel(keypoints, height, width)
    r = int(np.floor(radius))
    for n, j in zip(*np.nonzero(valid), strict=True):
        y0, y1 = max(yi[n, j] - r, 0), min(yi[n, j] + r, height - 1)
        x0, x1 = max(xi[n, j] - r, 0), min(xi[n, j] + r, width - 1)
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        d2 = (gx - keypoints[n, j, 0]) ** 2 + (gy - keypoints[n, j, 1]) ** 2
        disc = (gx - xi[n, j]) ** 2 + (gy - yi[n, j]) ** 2 <= radius**2
        window = best[j, y0 : y1 + 1, x0 : x1 + 1]
        closer = disc & (d2 < window)
        window[closer] = d2[closer]
        tags[j, y0 : y1 + 1, x0 : x1 + 1][closer] = values[n]
    return tags[..., 0] if scalar else tags
