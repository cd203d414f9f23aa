import cv2
import numpy as np
import pytest

from occlupose.data.augment import (
    ColorJitter,
    RandomAffine,
    fit_matrix,
    letterbox,
    mark_outside,
    resize_short_side,
    stride_matrix,
    transform_keypoints,
    transform_points,
    warp_image,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

H, W, S = 480, 640, 512


def _dot_image(keypoints: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Black image with a 9x9 square of a distinct colour centred on every joint."""
    image = np.zeros((H, W, 3), np.uint8)
    colours = []
    for j, (x, y, _) in enumerate(keypoints[0]):
        colour = (40 + 12 * j, 255 - 10 * j, 100 + (37 * j) % 150)
        image[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5] = colour
        colours.append(colour)
    return image, colours


def _person(rng: np.random.Generator) -> np.ndarray:
    """17 joints 20 px apart in x (their squares never overlap), random heights."""
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0] = 150 + 20 * np.arange(17)
    keypoints[0, :, 1] = rng.integers(120, 360, 17)
    keypoints[0, :, 2] = 2
    return keypoints


@pytest.mark.parametrize("seed", range(12))
def test_warped_dots_land_on_transformed_keypoints(seed):
    rng = np.random.default_rng(seed)
    keypoints = _person(rng)
    image, colours = _dot_image(keypoints)
    drawn = RandomAffine(flip_probability=0.5).sample(rng, (H, W), S)
    warped = warp_image(image, drawn.matrix, (S, S))
    flip_index = COCO_KEYPOINTS.flip_index if drawn.flipped else None
    moved = transform_keypoints(keypoints, drawn.matrix, flip_index)
    moved = mark_outside(moved, (S, S))
    checked = 0
    for j in range(17):
        x, y, v = moved[0, j]
        if v == 0:
            continue
        # Joint j now sits where the dot of joint flip_index[j] was drawn.
        source = COCO_KEYPOINTS.flip_index[j] if drawn.flipped else j
        pixel = warped[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]
        np.testing.assert_array_equal(pixel, colours[source])
        checked += 1
    assert checked >= 8


def test_flip_swaps_left_and_right():
    keypoints = np.zeros((1, 17, 3), np.float32)
    left_wrist, right_wrist = (
        COCO_KEYPOINTS.index("left_wrist"),
        COCO_KEYPOINTS.index("right_wrist"),
    )
    keypoints[0, left_wrist] = (100, 200, 2)
    keypoints[0, right_wrist] = (300, 210, 1)
    flip_only = RandomAffine(
        scale_range=(1.0, 1.0), max_rotation=0, max_translation=0, flip_probability=1.0
    )
    drawn = flip_only.sample(np.random.default_rng(0), (H, W), S)
    assert drawn.flipped
    moved = transform_keypoints(keypoints, drawn.matrix, COCO_KEYPOINTS.flip_index)
    fitted = transform_keypoints(keypoints, fit_matrix((H, W), S))
    # The new left wrist is the mirrored old right wrist, flags included.
    assert moved[0, left_wrist, 0] == pytest.approx(S - 1 - fitted[0, right_wrist, 0], abs=1e-3)
    assert moved[0, left_wrist, 1] == pytest.approx(fitted[0, right_wrist, 1], abs=1e-3)
    assert moved[0, left_wrist, 2] == 1 and moved[0, right_wrist, 2] == 2


def test_fit_matrix_maps_the_image_edges():
    matrix = fit_matrix((H, W), S)  # scale 0.8, content 512 x 384, centred vertically
    corners = transform_points(np.array([[-0.5, -0.5], [W - 0.5, H - 0.5]]), matrix)
    np.testing.assert_allclose(corners, [[-0.5, 63.5], [511.5, 447.5]], atol=1e-4)


def test_stride_matrix_uses_pixel_centres():
    # Input pixels 0..3 form output pixel 0 at stride 4; their centre is x = 1.5.
    np.testing.assert_allclose(transform_points(np.array([1.5, 5.5]), stride_matrix(4)), [0, 1])
    np.testing.assert_allclose(transform_points(np.array([0.5]).repeat(2), stride_matrix(2)), 0)


def test_mark_outside():
    keypoints = np.array([[[-0.6, 5, 2], [-0.4, 5, 2], [9.4, 5, 1], [9.5, 5, 2], [3, 5, 0]]])
    np.testing.assert_array_equal(mark_outside(keypoints, (10, 10))[0, :, 2], [0, 2, 1, 0, 0])


def test_affine_is_deterministic_and_within_range():
    augment = RandomAffine()
    first = augment.sample(np.random.default_rng(7), (H, W), S)
    again = augment.sample(np.random.default_rng(7), (H, W), S)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    rng = np.random.default_rng(1)
    for _ in range(50):
        drawn = augment.sample(rng, (H, W), S)
        linear = drawn.matrix[:2, :2]
        zoom = np.sqrt(abs(np.linalg.det(linear))) / 0.8
        assert 0.75 - 1e-9 <= zoom <= 1.5 + 1e-9
        angle = np.degrees(np.arctan2(abs(linear[0, 1]), abs(linear[0, 0])))
        assert angle <= 30 + 1e-6
        centre = transform_points(np.array([(W - 1) / 2, (H - 1) / 2]), drawn.matrix)
        assert np.all(np.abs(centre - (S - 1) / 2) <= 40 + 1e-6)


def test_invalid_affine_parameters():
    with pytest.raises(ValueError, match="scale_range"):
        RandomAffine(scale_range=(1.5, 0.75))
    with pytest.raises(ValueError, match="flip_probability"):
        RandomAffine(flip_probability=2.0)


def test_color_jitter():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    none = ColorJitter(brightness=0, contrast=0, saturation=0, hue=0)
    np.testing.assert_array_equal(none(image, np.random.default_rng(1)), image)
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    first = jitter(image, np.random.default_rng(3))
    np.testing.assert_array_equal(first, jitter(image, np.random.default_rng(3)))
    assert first.shape == image.shape and first.dtype == np.uint8
    assert not np.array_equal(first, image)
    # Saturation and hue leave gray pixels gray.
    gray = np.repeat(rng.integers(0, 256, (32, 48, 1), dtype=np.uint8), 3, axis=2)
    colour_only = ColorJitter(brightness=0, contrast=0, saturation=0.5, hue=0.2)
    out = colour_only(gray, np.random.default_rng(5)).astype(int)
    assert np.abs(out - gray).max() <= 1
    # Brightness alone scales values: factor b makes v -> round(b * v).
    bright = ColorJitter(brightness=0.5, contrast=0, saturation=0, hue=0)
    b = np.random.default_rng(9).uniform(0.5, 1.5)
    expected = np.clip(np.floor(b * image.astype(float) + 0.5), 0, 255)
    np.testing.assert_array_equal(bright(image, np.random.default_rng(9)), expected)


def test_letterbox_round_trip():
    image = np.zeros((H, W, 3), np.uint8)
    image[236:245, 316:325] = 255  # a white square centred on (320, 240)
    resized = letterbox(image, S)
    assert resized.image.shape == (S, S, 3) and resized.valid_hw == (384, 512)
    # x' = 0.8 x - 0.1, y' = 0.8 y - 0.1 + 64
    np.testing.assert_allclose(resized.matrix[:2], [[0.8, 0, -0.1], [0, 0.8, 63.9]], atol=1e-9)
    centre = transform_points(np.array([320.0, 240.0]), resized.matrix)
    assert resized.image[int(round(centre[1])), int(round(centre[0]))].min() > 200
    assert resized.image[:63].max() == 0 and resized.image[449:].max() == 0  # padding
    points = np.array([[[12.0, 34.0, 0.9], [600.0, 470.0, 0.5]]])
    moved = points.copy()
    moved[..., :2] = transform_points(points[..., :2], resized.matrix)
    np.testing.assert_allclose(resized.to_original(moved), points, atol=1e-3)


def test_resize_short_side_pads_to_the_divisor():
    resized = resize_short_side(np.zeros((H, W, 3), np.uint8), 512, size_divisor=64)
    assert resized.valid_hw == (512, 683)
    assert resized.image.shape == (512, 704, 3)
    expected = cv2.resize(np.full((H, W, 3), 200, np.uint8), (683, 512))
    again = resize_short_side(np.full((H, W, 3), 200, np.uint8), 512)
    np.testing.assert_array_equal(again.image[:, :683], expected)
    assert again.image[:, 683:].max() == 0


@pytest.mark.parametrize("max_rotation", [0.0, 30.0])
def test_subpixel_agreement_of_image_and_keypoint_warps(max_rotation):
    # One bright pixel, warped with a 2x zoom: bilinear interpolation turns it into a
    # tent whose centroid is where the pixel centre goes. A half-pixel convention error
    # between the image warp and the keypoint transform would move it by 0.5-1 px.
    augment = RandomAffine(scale_range=(2.5, 2.5), max_rotation=max_rotation)
    for seed in range(5):
        image = np.zeros((H, W, 3), np.uint8)
        image[203, 317] = 255
        drawn = augment.sample(np.random.default_rng(seed), (H, W), S)
        warped = warp_image(image, drawn.matrix, (S, S))[:, :, 0].astype(float)
        ys, xs = np.mgrid[0:S, 0:S]
        centroid = np.array([(xs * warped).sum(), (ys * warped).sum()]) / warped.sum()
        expected = transform_points(np.array([317.0, 203.0]), drawn.matrix)
        np.testing.assert_allclose(centroid, expected, atol=0.05)
