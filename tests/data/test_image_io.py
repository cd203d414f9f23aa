import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from occlupose.data.image_io import ImageReadError, read_image

COCO_IMAGE = Path(__file__).parent / "coco_subset" / "images" / "000000000785.jpg"


def test_reads_real_jpeg_as_rgb():
    image = read_image(COCO_IMAGE)
    assert image.shape == (425, 640, 3)
    assert image.dtype == np.uint8
    bgr = cv2.imread(str(COCO_IMAGE), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    image = read_image(tmp_path / "g.png")
    assert image.shape == (12, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


def test_rgba_is_composited_on_black(tmp_path):
    bgra = np.zeros((4, 3, 4), np.uint8)
    bgra[..., :3] = (30, 60, 200)  # BGR: red 200, green 60, blue 30
    bgra[0, :, 3] = 255  # opaque row
    bgra[1, :, 3] = 0  # transparent row
    bgra[2:, :, 3] = 128
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    image = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(image[0], [[200, 60, 30]] * 3)
    np.testing.assert_array_equal(image[1], 0)
    np.testing.assert_array_equal(image[2], [[100, 30, 15]] * 3)  # round(v * 128 / 255)


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), values)
    image = read_image(tmp_path / "d.png")
    np.testing.assert_array_equal(image[0, :, 0], [0, 100, 255])


def test_exif_orientation_follows_opencv(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    pixels = np.zeros((20, 40, 3), np.uint8)
    picture = pil.fromarray(pixels)
    exif = picture.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    picture.save(tmp_path / "e.jpg", exif=exif)
    assert read_image(tmp_path / "e.jpg").shape == (40, 20, 3)
    assert read_image(tmp_path / "e.jpg", apply_exif_orientation=False).shape == (20, 40, 3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "does not exist"),
        (b"", "empty"),
        (b"this is a text file, not a picture\n" * 10, "not a decodable image"),
        (COCO_IMAGE.read_bytes()[:300], "not a decodable image"),  # truncated JPEG
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_pixel_limit(tmp_path):
    cv2.imwrite(str(tmp_path / "s.png"), np.zeros((20, 30), np.uint8))
    with pytest.raises(ImageReadError, match="30x20 = 600 pixels, more than the limit of 500"):
        read_image(tmp_path / "s.png", max_pixels=500)
    assert read_image(tmp_path / "s.png", max_pixels=600).shape == (20, 30, 3)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_huge_image_is_rejected_from_its_header(tmp_path):
    # 100000 x 100000 claimed, no pixel data: rejected before any decoding.
    (tmp_path / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(ImageReadError, match="100000x100000 = 10,000,000,000 pixels"):
        read_image(tmp_path / "bomb.png")


def test_zero_size_image_is_rejected(tmp_path):
    (tmp_path / "zero.png").write_bytes(_png_header(0, 10))
    with pytest.raises(ImageReadError, match="zero size"):
        read_image(tmp_path / "zero.png")


def test_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ImageReadError("/x/y.jpg", "file does not exist")))
    assert str(error) == "cannot read image /x/y.jpg: file does not exist"
