import numpy as np
import pytest

from occlupose.data.occluders import SyntheticOccluders, cut_patches, paste_occluders

H, W = 200, 300


def _scene(rng: np.random.Generator, num_people: int = 3) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    keypoints = np.zeros((num_people, 17, 3), np.float32)
    for n in range(num_people):
        cx, cy = rng.uniform(40, W - 40), rng.uniform(40, H - 40)
        keypoints[n, :, 0] = cx + rng.uniform(-30, 30, 17)
        keypoints[n, :, 1] = cy + rng.uniform(-50, 50, 17)
        keypoints[n, :, 2] = rng.choice([0, 1, 2], 17, p=[0.2, 0.2, 0.6])
    return image, keypoints


@pytest.mark.parametrize("seed", range(20))
def test_hidden_is_exactly_the_joints_under_pasted_pixels(seed):
    rng = np.random.default_rng(seed)
    image, keypoints = _scene(rng)
    keypoints[0, 0] = (-5, 10, 2)  # outside the image: never hidden
    result = paste_occluders(image, keypoints, rng, probability=1.0, max_occluders=4)
    changed = (result.image != image).any(axis=2)
    assert result.mask.any()
    assert not (changed & ~result.mask).any()  # nothing outside the occluders changed
    assert changed[result.mask].mean() > 0.9  # occluder pixels were repainted
    px = np.floor(keypoints[..., 0] + 0.5).astype(int)
    py = np.floor(keypoints[..., 1] + 0.5).astype(int)
    inside = (px >= 0) & (px < W) & (py >= 0) & (py < H)
    expected = np.zeros(keypoints.shape[:2], bool)
    for n, j in zip(*np.nonzero(inside & (keypoints[..., 2] > 0)), strict=True):
        expected[n, j] = result.mask[py[n, j], px[n, j]]
    np.testing.assert_array_equal(result.hidden, expected)
    assert not result.hidden[keypoints[..., 2] == 0].any()


def test_occluders_hide_joints_often_and_sit_on_people():
    rng = np.random.default_rng(0)
    hidden_fraction, near = [], []
    for _ in range(40):
        image, keypoints = _scene(rng)
        result = paste_occluders(image, keypoints, rng, probability=1.0, max_occluders=3)
        labelled = keypoints[..., 2] > 0
        hidden_fraction.append(result.hidden[labelled].mean())
        ys, xs = np.nonzero(result.mask)
        centre = np.array([xs.mean(), ys.mean()])
        joints = keypoints[labelled][:, :2]
        near.append(np.linalg.norm(joints - centre, axis=1).min() < 60)
    assert 0.02 < np.mean(hidden_fraction) < 0.6
    assert np.mean(near) > 0.9


def test_probability_and_determinism():
    rng = np.random.default_rng(1)
    image, keypoints = _scene(rng)
    untouched = paste_occluders(image, keypoints, rng, probability=0.0)
    np.testing.assert_array_equal(untouched.image, image)
    assert not untouched.hidden.any() and not untouched.mask.any()
    first = paste_occluders(image, keypoints, np.random.default_rng(5), probability=1.0)
    again = paste_occluders(image, keypoints, np.random.default_rng(5), probability=1.0)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.hidden, again.hidden)
    applied = [
        paste_occluders(image, keypoints, np.random.default_rng(s), probability=0.3).mask.any()
        for s in range(200)
    ]
    assert 0.2 < np.mean(applied) < 0.4


def test_no_labelled_people_means_no_occluders():
    image = np.zeros((H, W, 3), np.uint8)
    result = paste_occluders(image, np.zeros((2, 17, 3)), np.random.default_rng(0), probability=1)
    assert not result.mask.any() and result.hidden.shape == (2, 17)
    empty = paste_occluders(image, np.zeros((0, 17, 3)), np.random.default_rng(0), probability=1)
    assert empty.hidden.shape == (0, 17)


def test_rgba_patches_bring_their_shape_and_colour():
    patch = np.zeros((40, 40, 4), np.uint8)
    patch[..., :3] = (7, 200, 9)
    yy, xx = np.mgrid[0:40, 0:40]
    patch[..., 3] = np.where((xx - 19.5) ** 2 + (yy - 19.5) ** 2 < 15**2, 255, 0)
    occluders = SyntheticOccluders(probability=1.0, patch_sources=[patch], patch_probability=1.0)
    rng = np.random.default_rng(2)
    image, keypoints = _scene(rng)
    result = occluders(image, keypoints, rng)
    assert result.mask.any()
    np.testing.assert_array_equal(np.unique(result.image[result.mask], axis=0), [[7, 200, 9]])


def test_cut_patches_from_images():
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)]
    patches = cut_patches(images, 5, rng, size_range=(16, 64))
    assert len(patches) == 5
    assert all(p.ndim == 3 and p.shape[2] == 3 and 16 <= p.shape[0] <= 64 for p in patches)
    result = paste_occluders(
        *_scene(rng), rng, probability=1.0, patch_sources=patches, patch_probability=1.0
    )
    assert result.mask.any()


def test_bad_arguments():
    image, keypoints = _scene(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="probability"):
        paste_occluders(image, keypoints, rng, probability=1.5)
    with pytest.raises(ValueError, match=r"shape \(N, J, 3\)"):
        paste_occluders(image, keypoints[0], rng)
