"""The Predictor accepts paths and arrays in any common pixel format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occlupose.data.image_io import ImageReadError
from occlupose.inference import as_rgb_image


def test_rgb_array_is_kept():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(as_rgb_image(rgb), rgb)


def test_gray_rgba_and_16_bit_arrays():
    gray = np.full((4, 6), 100, np.uint8)
    assert as_rgb_image(gray).shape == (4, 6, 3) and (as_rgb_image(gray) == 100).all()
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    np.testing.assert_array_equal(as_rgb_image(rgba)[0, 0], [200, 0, 0])
    deep = np.full((4, 6, 3), 65535, np.uint16)
    deep[..., 2] = 0
    np.testing.assert_array_equal(as_rgb_image(deep)[0, 0], [255, 255, 0])


def test_paths_are_read_as_rgb(tmp_path):
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    np.testing.assert_array_equal(as_rgb_image(tmp_path / "red.png")[0, 0], [255, 0, 0])
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.txt"):
        as_rgb_image(tmp_path / "notes.txt")


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 5, 7), (2, 3, 4, 5)])
def test_bad_arrays_are_refused(shape):
    with pytest.raises(ValueError):
        as_rgb_image(np.zeros(shape, np.uint8))
