"""Reading images from disk into one canonical form: ``(H, W, 3)`` uint8 RGB.

Everything downstream (augmentation, the networks, drawing) assumes that form, so
the conversions happen here, once:

* grayscale (1 channel) is repeated into 3 channels;
* an alpha channel is composited over black (``rgb * alpha``): fully transparent
  pixels become black instead of showing whatever colour the encoder left behind
  them, and fully opaque pixels are unchanged;
* 16-bit images are scaled to 8 bits (``round(v / 257)``, so 65535 -> 255) and
  floating-point images (e.g. 32-bit TIFF) are taken as ``[0, 1]`` and scaled to
  ``[0, 255]`` with clipping;
* EXIF orientation is applied the way ``cv2.imread(path, cv2.IMREAD_COLOR)`` does
  (the image is rotated/flipped upright) unless ``apply_exif_orientation=False``.
  Formats that can carry alpha (PNG, WebP, TIFF) are decoded with
  ``cv2.IMREAD_UNCHANGED``, for which OpenCV never applies EXIF orientation.

Every failure raises :class:`ImageReadError`, which names the file and says what is
wrong with it (missing, empty, not an image, corrupt, too large, zero-sized).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from occlupose.utils.errors import UserError

__all__ = ["DEFAULT_MAX_PIXELS", "ImageReadError", "read_image", "to_rgb_uint8"]

#: Default limit on ``width * height``; a decompression bomb or a mistaken path to a
#: gigapixel scan is rejected before (PNG, JPEG) or right after decoding.
DEFAULT_MAX_PIXELS = 100_000_000


class ImageReadError(UserError, OSError):
    """An image file could not be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")

    def __reduce__(self):  # keep the two-argument form picklable (DataLoader workers)
        return (type(self), (self.path, self.reason))


def _peek_size(data: np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG or JPEG header without decoding, else None."""
    head = data[:32].tobytes()
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    if not head.startswith(b"\xff\xd8"):
        return None
    # Walk the JPEG markers up to the first start-of-frame (SOF0..SOF15 except the
    # DHT/JPG/DAC markers C4, C8, CC), which holds the frame size.
    raw = data.tobytes() if data.size < 1 << 16 else data[: 1 << 20].tobytes()
    pos = 2
    while pos + 9 <= len(raw):
        if raw[pos] != 0xFF:
            return None
        marker = raw[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", raw[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", raw[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def _may_have_alpha(data: np.ndarray) -> bool:
    head = data[:16].tobytes()
    return (
        head.startswith(b"\x89PNG")
        or (head.startswith(b"RIFF") and head[8:12] == b"WEBP")
        or head.startswith((b"II*\x00", b"MM\x00*"))
    )


def to_rgb_uint8(decoded: np.ndarray) -> np.ndarray:
    """Convert an array as ``cv2.imdecode`` returns it (BGR/BGRA/gray, any depth) to RGB uint8.

    Raises:
        ValueError: for a channel count or dtype that has no RGB meaning.
    """
    image = decoded
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")

    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    if channels == 2:  # gray + alpha
        gray = _composite_on_black(image[:, :, :1], image[:, :, 1])
        return np.ascontiguousarray(np.repeat(gray, 3, axis=2))
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        return _composite_on_black(rgb, image[:, :, 3])
    raise ValueError(f"unsupported number of channels {channels}")


def _composite_on_black(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    if alpha.min() == 255:  # fully opaque: nothing to do, keep the exact pixels
        return np.ascontiguousarray(color)
    weighted = color.astype(np.uint16) * alpha[:, :, None].astype(np.uint16)
    return ((weighted + 127) // 255).astype(np.uint8)


def read_image(
    path: str | os.PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    apply_exif_orientation: bool = True,
) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Args:
        path: any format OpenCV decodes (JPEG, PNG, WebP, TIFF, BMP, ...).
        max_pixels: reject images with more than this many pixels (``None``: no limit
            beyond OpenCV's own).
        apply_exif_orientation: rotate JPEGs upright by their EXIF orientation tag, as
            ``cv2.imread`` does by default. Set to False when annotations refer to the
            stored pixel grid.

    Raises:
        ImageReadError: the file is missing, empty, not a decodable image, larger than
            ``max_pixels`` or has a zero-sized dimension.
    """
    path = Path(path)
    try:
        # np.fromfile + imdecode (instead of cv2.imread) distinguishes "cannot open"
        # from "cannot decode" and works with any path encoding.
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "file does not exist") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image file") from None
    except OSError as error:
        raise ImageReadError(path, f"cannot open file ({error.strerror or error})") from None
    if data.size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")

    size = _peek_size(data)
    if size is not None:
        _check_size(path, size[0], size[1], max_pixels)

    if _may_have_alpha(data) or not apply_exif_orientation:
        flags = cv2.IMREAD_UNCHANGED
    else:
        flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    try:
        decoded = cv2.imdecode(data, flags)
    except cv2.error as error:
        raise ImageReadError(path, f"OpenCV failed to decode it ({error.err})") from None
    if decoded is None:
        raise ImageReadError(
            path, f"not a decodable image (corrupt or unsupported format; {data.size} bytes)"
        )
    _check_size(path, decoded.shape[1], decoded.shape[0], max_pixels)
    try:
        return to_rgb_uint8(decoded)
    except ValueError as error:
        raise ImageReadError(path, str(error)) from None


def _check_size(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"image has zero size ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            path,
            f"image is {width}x{height} = {width * height:,} pixels, more than the limit "
            f"of {max_pixels:,} (--max-pixels on the command line, max_pixels=... in "
            "Python, allows it)",
        )
