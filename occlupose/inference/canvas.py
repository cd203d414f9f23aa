"""HigherHRNet's published test-time geometry: the canvases of the official test.

The official test (``valid.py``) does not resize and pad at the top left: it warps the
image about its centre onto a canvas whose short side is the input size and whose long
side is aligned to 64 pixels, and every scale of a multi-scale test uses the same
centre and zoom relative to its canvas. These functions compute those canvases and
matrices exactly, so that the official path reproduces the published results:

* :func:`official_canvases` gives, for an image size, the centre, the ``scale`` (box
  size / 200 as the official code stores it) and the canvas size per test scale;
* :func:`official_warp` gives the 2x3 matrix ``cv2.warpAffine`` warps with (and its
  inverse, which maps grouped joints back to the image), computed as the official
  code does: by ``cv2.getAffineTransform`` from float32 point pairs, so the matrices
  carry the same float32 rounding;
* :func:`warp_canvas` warps an image onto a canvas.

Coordinates: the matrices act on OpenCV pixel coordinates (pixel centres at integers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["OfficialCanvases", "official_canvases", "official_warp", "warp_canvas"]

_ALIGN = 64


def _align_up(value: float) -> int:
    # HigherHRNet's "(x + 63) // 64 * 64": for a fractional x this can be just below x.
    return int((value + _ALIGN - 1) // _ALIGN * _ALIGN)


@dataclass(frozen=True)
class OfficialCanvases:
    """The canvases of one image in HigherHRNet's test.

    Attributes:
        center: ``(x, y)`` image point mapped to every canvas centre (integers).
        scale: ``(sx, sy)``: the image box the scale-1 canvas shows, in units of 200 px.
        sizes: test scale -> canvas ``(W, H)``; always holds scale 1 (the base canvas,
            whose size the merged maps take, even when scale 1 is not tested).
    """

    center: tuple[float, float]
    scale: tuple[float, float]
    sizes: dict[float, tuple[int, int]]

    @property
    def base_size(self) -> tuple[int, int]:
        """``(W, H)`` of the scale-1 canvas."""
        return self.sizes[1.0]


def official_canvases(
    width: int, height: int, input_size: int, scales: Sequence[float]
) -> OfficialCanvases:
    """Canvas geometry of HigherHRNet's test for a ``width x height`` image.

    The short side becomes ``input_size`` times the scale; the long side is aligned to
    64 at the *smallest* test scale and then multiplied, so the scale-1 canvas of a
    multi-scale test can be wider than that of a single-scale test (and a fraction of a
    pixel of the image can be cut off).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"test scales must be positive, got {list(scales)}")
    smallest = min(scales)
    short_side = _align_up(smallest * input_size)
    sizes: dict[float, tuple[int, int]] = {}
    for s in (*scales, 1.0):
        s = float(s)
        if width >= height:
            long_side = _align_up(short_side / height * width)
            sizes[s] = (int(long_side * s / smallest), int(short_side * s / smallest))
        else:
            long_side = _align_up(short_side / width * height)
            sizes[s] = (int(short_side * s / smallest), int(long_side * s / smallest))
    base_w, base_h = sizes[1.0]
    if width >= height:
        scale = (base_w / base_h * height / 200, height / 200)
    else:
        scale = (width / 200, base_h / base_w * width / 200)
    center = (float(int(width / 2 + 0.5)), float(int(height / 2 + 0.5)))
    return OfficialCanvases(center=center, scale=scale, sizes=sizes)


def official_warp(
    center: Sequence[float],
    scale: Sequence[float],
    size: Sequence[int],
    *,
    inverse: bool = False,
) -> np.ndarray:
    """The official 2x3 matrix from the image to a canvas of ``size = (W, H)``.

    An isotropic zoom ``W / (200 * scale[0])`` about ``center``, which lands on the
    canvas centre ``(W / 2, H / 2)``; with ``inverse`` the canvas -> image matrix.
    Built like the official code: three float32 point pairs (the centre, a point above
    it, and the point at a right angle) through ``cv2.getAffineTransform``.
    """
    box = float(scale[0]) * 200.0
    width, height = float(size[0]), float(size[1])
    image_points = np.zeros((3, 2), np.float32)
    canvas_points = np.zeros((3, 2), np.float32)
    image_points[0] = center
    image_points[1] = (center[0], center[1] - 0.5 * box)
    canvas_points[0] = (0.5 * width, 0.5 * height)
    canvas_points[1] = (0.5 * width, 0.5 * height - 0.5 * width)
    for points in (image_points, canvas_points):
        # The third point: the second turned by a right angle about the first.
        step = points[0] - points[1]
        points[2] = points[1] + np.array([-step[1], step[0]], np.float32)
    if inverse:
        return cv2.getAffineTransform(canvas_points, image_points)
    return cv2.getAffineTransform(image_points, canvas_points)


def warp_canvas(image: np.ndarray, matrix: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``image`` warped onto a ``size = (W, H)`` canvas (bilinear, black border)."""
    return cv2.warpAffine(
        image,
        np.asarray(matrix, np.float64)[:2],
        (int(size[0]), int(size[1])),
        flags=cv2.INTER_LINEAR,
    )
