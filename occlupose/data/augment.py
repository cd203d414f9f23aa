"""Geometric and photometric augmentation, and the eval-time resize.

Coordinate convention (everywhere in occlupose): pixel centres at integer
coordinates, so pixel ``(i, j)`` covers ``[i - 0.5, i + 0.5]`` and an image of width
``W`` spans ``x in [-0.5, W - 0.5]``. ``cv2.warpAffine`` and ``cv2.resize`` use the
same convention, so one matrix moves image pixels and keypoints identically.

Every geometric step is a 3x3 float64 matrix ``M`` acting on homogeneous column
vectors ``(x, y, 1)``: source pixel -> destination pixel. Training composes flip,
rotation, scale and translation into one matrix (:class:`RandomAffine`), warps the
image and the loss mask with it once, and moves the keypoints with
:func:`transform_keypoints`. The matrix for an output map of stride ``k`` is
``stride_matrix(k) @ M`` (:func:`stride_matrix`): output pixel ``u`` covers input
pixels ``[k u - 0.5, k (u + 1) - 0.5]``, so ``u = (x + 0.5) / k - 0.5``.

The published HigherHRNet geometry (:func:`official_affine`, :class:`OfficialAffine`)
differs in three ways, and occlupose reproduces it exactly when asked to: the
zoom is relative to the image's *short* side (a square crop, the long side cut), the
translation is in image pixels (``+-40 * scale``), and each output map of size ``R``
gets its own matrix ``M_R = M_input * R / input_size`` (no half-pixel term: output
pixel ``u`` is read as the span ``[u, u + 1)``, see :class:`OfficialAffineSample`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AffineSample",
    "ColorJitter",
    "OfficialAffine",
    "OfficialAffineSample",
    "RandomAffine",
    "ResizedImage",
    "fit_matrix",
    "letterbox",
    "mark_outside",
    "official_affine",
    "resize_short_side",
    "stride_matrix",
    "transform_keypoints",
    "transform_points",
    "warp_image",
]


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = (int(v) for v in size)
    return height, width


def _translation(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _rotation_scale(degrees: float, scale: float) -> np.ndarray:
    # Positive angles turn the picture counter-clockwise on screen (y points down),
    # like cv2.getRotationMatrix2D.
    theta = np.deg2rad(degrees)
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def fit_matrix(image_hw: Sequence[int], input_size: int | Sequence[int]) -> np.ndarray:
    """Matrix that centres the image in the input and fits its longer side (no augmentation)."""
    height, width = image_hw
    in_h, in_w = _size_hw(input_size)
    scale = min(in_w / width, in_h / height)
    return (
        _translation((in_w - 1) / 2, (in_h - 1) / 2)
        @ _rotation_scale(0.0, scale)
        @ _translation(-(width - 1) / 2, -(height - 1) / 2)
    )


def stride_matrix(stride: float) -> np.ndarray:
    """Input pixel -> pixel of an output map ``stride`` times smaller (centres convention)."""
    k = 1.0 / stride
    return np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2], [0.0, 0.0, 1.0]])


def _check_ranges(augment: RandomAffine | OfficialAffine) -> None:
    """Refuse impossible ranges of a random affine augmentation."""
    low, high = augment.scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {augment.scale_range}")
    if augment.max_rotation < 0 or augment.max_translation < 0:
        raise ValueError("max_rotation and max_translation must be >= 0")
    if not 0.0 <= augment.flip_probability <= 1.0:
        raise ValueError(f"flip_probability must be in [0, 1], got {augment.flip_probability}")


@dataclass(frozen=True)
class AffineSample:
    """One drawn augmentation: ``matrix`` (3x3, image -> input) and whether it flips."""

    matrix: np.ndarray
    flipped: bool


@dataclass(frozen=True)
class RandomAffine:
    """Random zoom, rotation, translation and horizontal flip, as one affine matrix.

    The image is first fitted into the square input (longer side = input size,
    centred, as :func:`fit_matrix`), then, about the image centre:

    Args:
        scale_range: zoom factor, uniform; people appear ``zoom`` times as large as in
            the fitted image. (HigherHRNet's ``[0.75, 1.5]`` scales the *crop*, i.e.
            zooms by ``1/1.5 .. 1/0.75``.)
        max_rotation: degrees, uniform in ``[-max_rotation, max_rotation]``.
        max_translation: shift of the centre as a fraction of the input size, uniform
            per axis (HigherHRNet: 40 px at 512 -> ``40 / 512``).
        flip_probability: probability of a horizontal flip. The caller must also permute
            left/right joints (:func:`transform_keypoints` with ``flip_index``).
    """

    scale_range: tuple[float, float] = (0.75, 1.5)
    max_rotation: float = 30.0
    max_translation: float = 40.0 / 512.0
    flip_probability: float = 0.5

    def __post_init__(self) -> None:
        _check_ranges(self)

    def sample(
        self, rng: np.random.Generator, image_hw: Sequence[int], input_size: int
    ) -> AffineSample:
        """Draw one transform for an image of size ``image_hw = (H, W)``.

        Always consumes the same number of random draws, so a seeded generator gives
        the same sequence of transforms whatever the parameters.
        """
        height, width = image_hw
        zoom = rng.uniform(*self.scale_range)
        angle = rng.uniform(-self.max_rotation, self.max_rotation)
        tx, ty = rng.uniform(-self.max_translation, self.max_translation, size=2) * input_size
        flipped = bool(rng.random() < self.flip_probability)
        fit = min(input_size / width, input_size / height)
        matrix = (
            _translation((input_size - 1) / 2 + tx, (input_size - 1) / 2 + ty)
            @ _rotation_scale(angle, zoom * fit)
            @ _translation(-(width - 1) / 2, -(height - 1) / 2)
        )
        if flipped:  # mirror the source image first: x -> (W - 1) - x
            matrix = matrix @ np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0, 0, 1]])
        return AffineSample(matrix=matrix, flipped=flipped)


def official_affine(
    width: int,
    height: int,
    aug_scale: float,
    aug_rot_degrees: float,
    dx: float,
    dy: float,
    output_size: int,
) -> np.ndarray:
    """HigherHRNet's training affine: original image pixel -> pixel of a square map.

    The crop is a square of ``min(width, height) * aug_scale`` image pixels (HigherHRNet's
    ``scale`` is that side / 200; ``aug_scale > 1`` zooms out) centred at
    ``(width / 2 + dx, height / 2 + dy)`` (``dx``, ``dy`` in image pixels; the centre is
    not rounded). It is scaled to ``output_size`` pixels, ``k = output_size / side``, and
    turned by ``aug_rot_degrees`` about the map's centre, counter-clockwise on screen for
    positive angles (y points down)::

        p' = Rot(p - centre) * k + (output_size / 2, output_size / 2)

    Conventions: the matrix acts on column vectors ``(x, y, 1)``; ``cv2.warpAffine`` uses
    it as is (pixel centres at integer coordinates). The same parameters give one matrix
    per map size ``R``, ``M_R = M_S * R / S`` for the input size ``S``: no half-pixel
    term, and the official target generators put a mapped joint ``x`` in pixel ``int(x)``,
    i.e. output pixel ``u`` spans ``[u, u + 1)`` of ``M_R`` coordinates (input pixels
    ``u S/R .. (u + 1) S/R - 1``).

    The arithmetic is done in the order of the published ``_get_affine_matrix`` (crop
    matrix first, then the turn about the map centre), so the values are identical to
    the official ones: a joint that lands exactly on a pixel boundary lands on the same
    side of it.

    Args:
        width, height: the original image size in pixels.
        aug_scale: crop side relative to the short side.
        aug_rot_degrees: rotation in degrees.
        dx, dy: shift of the crop centre in image pixels (the official code draws integers).
        output_size: side ``R`` of the square map (e.g. 512 for the input, 128 and 256).

    Returns:
        (2, 3) float64 matrix, original image pixel -> map pixel.
    """
    scale = min(width, height) / 200 * aug_scale  # HigherHRNet's "scale": crop side / 200
    side = 200 * scale
    cx, cy = width / 2 + dx, height / 2 + dy
    size = float(output_size)
    matrix = np.array(
        [
            [size / side, 0.0, size * (0.5 - cx / side)],
            [0.0, size / side, size * (0.5 - cy / side)],
            [0.0, 0.0, 1.0],
        ]
    )
    if aug_rot_degrees != 0:
        # On screen (y down) a counter-clockwise turn by a is the textbook rotation by -a.
        rad = -aug_rot_degrees * np.pi / 180
        sn, cs = np.sin(rad), np.cos(rad)
        turn = np.array([[cs, -sn, 0.0], [sn, cs, 0.0], [0.0, 0.0, 1.0]])
        to_centre = _translation(-size / 2, -size / 2)
        back = _translation(size / 2, size / 2)
        matrix = back @ (turn @ (to_centre @ matrix))
    return matrix[:2]


@dataclass(frozen=True)
class OfficialAffineSample:
    """One drawn official augmentation (see :func:`official_affine`) and its flip.

    The flip happens after the affine, as in the published code: the warped image's
    columns are reversed (``x -> S - 1 - x``) and, on a map of size ``R``, joints go to
    ``x -> R - 1 - x`` and are re-indexed with the keypoint set's ``flip_index``. (Since
    ``M_R = M_S * R / S``, the image's mirror ``x -> S - 1 - x`` is ``x -> R - x - R / S``
    on a map of size ``R``: the official flipped targets sit ``1 - R / S`` map pixels,
    3/4 at 1/4 and 1/2 at 1/2 resolution, left of the mirrored image content. occlupose
    reproduces this.)

    Attributes:
        width, height: original image size.
        input_size: network input side ``S``.
        aug_scale, aug_rot, dx, dy: parameters of :func:`official_affine`.
        flipped: whether the sample is mirrored.
    """

    width: int
    height: int
    input_size: int
    aug_scale: float
    aug_rot: float
    dx: int
    dy: int
    flipped: bool

    def affine(self, size: int) -> np.ndarray:
        """(2, 3) image -> map matrix for a map of side ``size``, before the flip."""
        return official_affine(
            self.width, self.height, self.aug_scale, self.aug_rot, self.dx, self.dy, size
        )

    @property
    def matrix(self) -> np.ndarray:
        """3x3 image -> input matrix, flip included (the image as :meth:`warp` makes it)."""
        matrix = np.vstack([self.affine(self.input_size), [0.0, 0.0, 1.0]])
        if self.flipped:
            flip = np.array([[-1.0, 0.0, self.input_size - 1.0], [0.0, 1.0, 0.0], [0, 0, 1]])
            matrix = flip @ matrix
        return matrix

    def warp(self, image: np.ndarray, size: int, *, border_value: float = 0) -> np.ndarray:
        """Warp an image or mask onto a ``size`` map (bilinear), then mirror if flipped."""
        warped = warp_image(image, self.affine(size), (size, size), border_value=border_value)
        return np.ascontiguousarray(warped[:, ::-1]) if self.flipped else warped

    def transform_keypoints(
        self, keypoints: np.ndarray, size: int, flip_index: Sequence[int]
    ) -> np.ndarray:
        """``(N, J, 3)`` image keypoints -> float64 map keypoints, as the official code.

        Every joint is moved (unlabelled ones too; v is unchanged), then, if flipped,
        joints are re-indexed with ``flip_index`` and ``x -> (size - x) - 1``.
        """
        keypoints = np.asarray(keypoints, np.float64)
        out = keypoints.copy()
        if keypoints.size:
            points = keypoints[..., :2].reshape(-1, 2)
            homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
            out[..., :2] = (homogeneous @ self.affine(size).T).reshape(keypoints.shape[:-1] + (2,))
        if self.flipped:
            out = out[:, list(flip_index)]
            out[..., 0] = size - out[..., 0] - 1
        return out


@dataclass(frozen=True)
class OfficialAffine:
    """HigherHRNet's training augmentation (``RandomAffineTransform`` with
    ``SCALE_TYPE: short``, then ``RandomHorizontalFlip``), drawn from a numpy Generator.

    Per sample, in this order: ``aug_scale`` uniform in ``scale_range``; ``aug_rot``
    uniform in ``[-max_rotation, max_rotation]``; ``dx`` then ``dy``, integers drawn
    uniformly from ``int(-t) .. int(t) - 1`` with ``t = max_translation * scale`` and
    ``scale = min(height, width) / 200 * aug_scale`` (numpy's ``randint`` with float
    bounds, which truncates them: ``t = 66.6`` gives -66 .. 65); the flip with
    ``flip_probability``. At 512 input, ``max_translation = 40`` shifts the centre by up
    to 40 * 512 / 200 = 102 input pixels whatever the image size.

    Args:
        scale_range: ``aug_scale`` bounds: the crop is ``aug_scale`` times the short side.
        max_rotation: degrees.
        max_translation: HigherHRNet's ``MAX_TRANSLATE`` (image pixels per unit of scale).
        flip_probability: probability of the horizontal flip.
    """

    scale_range: tuple[float, float] = (0.75, 1.5)
    max_rotation: float = 30.0
    max_translation: float = 40.0
    flip_probability: float = 0.5

    def __post_init__(self) -> None:
        _check_ranges(self)

    def translation_bounds(self, image_hw: Sequence[int], aug_scale: float) -> tuple[int, int]:
        """``(low, high)``: dx and dy are drawn from ``low .. high - 1`` (image pixels)."""
        height, width = image_hw
        bound = self.max_translation * (min(height, width) / 200 * aug_scale)
        return int(-bound), int(bound)  # truncated towards zero, as numpy's randint does

    def sample(
        self, rng: np.random.Generator, image_hw: Sequence[int], input_size: int
    ) -> OfficialAffineSample:
        """Draw one transform for an image of size ``image_hw = (H, W)``: scale, rotation,
        dx, dy and flip, in that order (dx = dy = 0, not drawn, when the translation range
        is empty, where the official code fails)."""
        height, width = image_hw
        low, high = self.scale_range
        aug_scale = rng.random() * (high - low) + low
        aug_rot = (rng.random() * 2 - 1) * self.max_rotation
        lo, hi = self.translation_bounds(image_hw, aug_scale)
        dx, dy = (int(rng.integers(lo, hi)) if hi > lo else 0 for _ in range(2))
        flipped = bool(rng.random() < self.flip_probability)
        return OfficialAffineSample(
            width=int(width),
            height=int(height),
            input_size=int(input_size),
            aug_scale=float(aug_scale),
            aug_rot=float(aug_rot),
            dx=dx,
            dy=dy,
            flipped=flipped,
        )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 (or 2x3) affine matrix to ``(..., 2)`` points; returns float32 ``(..., 2)``."""
    points = np.asarray(points, np.float64)
    matrix = np.asarray(matrix, np.float64)
    out = points @ matrix[:2, :2].T + matrix[:2, 2]
    return out.astype(np.float32)


def transform_keypoints(
    keypoints: np.ndarray, matrix: np.ndarray, flip_index: Sequence[int] | None = None
) -> np.ndarray:
    """Move ``(N, J, 3)`` keypoints ``x, y, v`` by ``matrix``; v is unchanged.

    With ``flip_index`` (the keypoint set's, for a flipping matrix) the joints are
    also permuted so that after a mirror the left wrist is again joint "left_wrist".
    """
    keypoints = np.asarray(keypoints, np.float32)
    out = keypoints.copy()
    out[..., :2] = transform_points(keypoints[..., :2], matrix)
    if flip_index is not None:
        out = out[:, list(flip_index)]
    return out


def mark_outside(keypoints: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
    """Copy of ``(N, J, 3)`` keypoints with v=0 where the joint's pixel is outside an
    ``(H, W)`` map, i.e. ``round(x)`` not in ``0..W-1`` or ``round(y)`` not in ``0..H-1``."""
    height, width = size_hw
    out = np.array(keypoints, np.float32, copy=True)
    x, y = out[..., 0], out[..., 1]
    outside = (x < -0.5) | (x >= width - 0.5) | (y < -0.5) | (y >= height - 0.5)
    out[..., 2][outside] = 0.0
    return out


def warp_image(
    image: np.ndarray,
    matrix: np.ndarray,
    size_hw: Sequence[int],
    *,
    interpolation: int = cv2.INTER_LINEAR,
    border_value: float | Sequence[float] = 0,
) -> np.ndarray:
    """``cv2.warpAffine`` with a 3x3 image -> destination matrix and an ``(H, W)`` size."""
    height, width = size_hw
    if np.ndim(border_value) == 0 and image.ndim == 3:
        border_value = (float(border_value),) * image.shape[2]
    return cv2.warpAffine(
        image,
        np.asarray(matrix, np.float64)[:2],
        (int(width), int(height)),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast, saturation and hue, applied in that order.

    Factors are drawn uniformly: brightness and contrast and saturation in
    ``[1 - x, 1 + x]`` (0 = no change), hue as a shift in ``[-hue, hue]`` of the
    colour circle (at most 0.5). Works on uint8 RGB images with lookup tables, so it
    costs about as much as one colour conversion.
    """

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ColorJitter.{name} must be in [0, 1]")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError("ColorJitter.hue must be in [0, 0.5]")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b = rng.uniform(1 - self.brightness, 1 + self.brightness)
        c = rng.uniform(1 - self.contrast, 1 + self.contrast)
        s = rng.uniform(1 - self.saturation, 1 + self.saturation)
        h = rng.uniform(-self.hue, self.hue)
        # Brightness then contrast (blend with the mean gray level) is one affine map
        # of each channel value: v -> c * b * v + (1 - c) * b * mean_gray.
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        mean = float(gray.mean())
        lut = np.clip(c * b * np.arange(256) + (1 - c) * b * mean + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(image, lut)
        if s != 1.0:
            gray3 = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            out = cv2.addWeighted(out, s, gray3, 1.0 - s, 0.0)
        if h != 0.0:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # 8-bit hue is 0..179
            shift = int(round(h * 180))
            hue_lut = ((np.arange(256) + shift) % 180).astype(np.uint8)
            hsv[:, :, 0] = cv2.LUT(hsv[:, :, 0], hue_lut)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return out


@dataclass
class ResizedImage:
    """An image resized for inference and the matrix that did it.

    Attributes:
        image: ``(H, W, 3)`` resized and padded image.
        matrix: 3x3, original image pixel -> resized image pixel.
        valid_hw: ``(h, w)`` of the part holding image content (the rest is padding).
    """

    image: np.ndarray
    matrix: np.ndarray
    valid_hw: tuple[int, int]

    def to_original(self, keypoints: np.ndarray) -> np.ndarray:
        """Map ``(..., 2+)`` points (x, y first) from resized-image to original pixels."""
        out = np.array(keypoints, np.float32, copy=True)
        out[..., :2] = transform_points(out[..., :2], np.linalg.inv(self.matrix))
        return out


def _resize_and_pad(
    image: np.ndarray,
    new_hw: tuple[int, int],
    canvas_hw: tuple[int, int],
    offset_xy: tuple[int, int],
    pad_value: int,
) -> ResizedImage:
    height, width = image.shape[:2]
    new_h, new_w = new_hw
    shrink = new_w < width or new_h < height
    resized = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    canvas = np.full((*canvas_hw, image.shape[2]), pad_value, dtype=image.dtype)
    ox, oy = offset_xy
    canvas[oy : oy + new_h, ox : ox + new_w] = resized
    # cv2.resize maps pixel centres as x' = sx (x + 0.5) - 0.5 with sx = new_w / width.
    sx, sy = new_w / width, new_h / height
    matrix = np.array(
        [[sx, 0.0, 0.5 * sx - 0.5 + ox], [0.0, sy, 0.5 * sy - 0.5 + oy], [0.0, 0.0, 1.0]]
    )
    return ResizedImage(image=canvas, matrix=matrix, valid_hw=(new_h, new_w))


def letterbox(
    image: np.ndarray, input_size: int | Sequence[int], *, pad_value: int = 0
) -> ResizedImage:
    """Resize ``image`` to fit ``input_size`` (int or ``(H, W)``) keeping its aspect
    ratio, centred and padded with ``pad_value``."""
    height, width = image.shape[:2]
    in_h, in_w = _size_hw(input_size)
    scale = min(in_w / width, in_h / height)
    new_w = min(in_w, max(1, round(width * scale)))
    new_h = min(in_h, max(1, round(height * scale)))
    offset = ((in_w - new_w) // 2, (in_h - new_h) // 2)
    return _resize_and_pad(image, (new_h, new_w), (in_h, in_w), offset, pad_value)


def resize_short_side(
    image: np.ndarray, short_side: int, *, size_divisor: int = 64, pad_value: int = 0
) -> ResizedImage:
    """Resize so the shorter side is ``short_side`` (aspect kept), then pad the right and
    bottom up to multiples of ``size_divisor`` (HigherHRNet's test-time input)."""
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas_w = -(-new_w // size_divisor) * size_divisor
    canvas_h = -(-new_h // size_divisor) * size_divisor
    return _resize_and_pad(image, (new_h, new_w), (canvas_h, canvas_w), (0, 0), pad_value)
