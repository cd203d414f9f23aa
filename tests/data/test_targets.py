"""Target encoders against hand-computed values."""

import numpy as np
import pytest

from occlupose.data.targets import (
    joint_index_array,
    render_heatmaps,
    render_limb_fields,
    render_tag_maps,
)


def _people(*joints_per_person, num_joints=3):
    """(N, J, 3) keypoints from {joint: (x, y)} dicts; unlisted joints have v = 0."""
    out = np.zeros((len(joints_per_person), num_joints, 3))
    for n, joints in enumerate(joints_per_person):
        for j, (x, y) in joints.items():
            out[n, j] = (x, y, 1)
    return out


# --- heatmaps -------------------------------------------------------------------------


def test_heatmap_peak_value_and_position():
    maps = render_heatmaps(_people({1: (10, 20)}), (32, 40), sigma=2.0)
    assert maps.shape == (3, 32, 40) and maps.dtype == np.float32  # (J, H, W)
    assert maps[1, 20, 10] == 1.0
    assert np.unravel_index(maps[1].argmax(), maps[1].shape) == (20, 10)
    assert maps[1, 20, 12] == pytest.approx(np.exp(-4 / 8))  # 2 px right
    assert maps[1, 23, 11] == pytest.approx(np.exp(-10 / 8))
    assert maps[1, 20, 16] > 0 and maps[1, 20, 17] == 0  # window radius 3 sigma = 6
    assert maps[0].max() == 0 and maps[2].max() == 0


def test_heatmap_sub_pixel_position():
    maps = render_heatmaps(_people({0: (10.5, 20.0)}), (32, 40), sigma=1.0)
    assert maps[0, 20, 10] == pytest.approx(np.exp(-0.125))
    assert maps[0, 20, 11] == pytest.approx(np.exp(-0.125))


def test_heatmaps_take_the_maximum_over_people():
    people = _people({0: (10, 10)}, {0: (12, 10)})
    maps = render_heatmaps(people, (20, 20), sigma=2.0)
    assert maps[0, 10, 10] == 1.0 and maps[0, 10, 12] == 1.0
    assert maps[0, 10, 11] == pytest.approx(np.exp(-1 / 8))  # max, not the sum


def test_heatmaps_skip_unlabelled_and_outside_joints_and_clip_at_borders():
    people = _people({0: (0, 0), 1: (-3, 5), 2: (19.4, 9)})
    people[0, 0, 2] = 2  # any v > 0 counts as labelled
    unlabelled = _people({1: (5, 5)})
    unlabelled[0, 1, 2] = 0
    maps = render_heatmaps(np.concatenate([people, unlabelled]), (10, 20), sigma=1.0)
    assert maps[0, 0, 0] == 1.0 and maps[0, 3, 3] == pytest.approx(np.exp(-9))
    assert maps[1].max() == 0  # outside, and the unlabelled one
    assert maps[2, 9, 19] == pytest.approx(np.exp(-0.08))  # rounds to the last column


def test_heatmaps_of_nobody_and_bad_input():
    assert render_heatmaps(np.zeros((0, 17, 3)), (8, 8), 2.0).shape == (17, 8, 8)
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        render_heatmaps(np.zeros((2, 17)), (8, 8), 2.0)
    with pytest.raises(ValueError, match="sigma"):
        render_heatmaps(np.zeros((1, 17, 3)), (8, 8), 0.0)
    with pytest.raises(ValueError, match="output_size"):
        render_heatmaps(np.zeros((1, 17, 3)), (0, 8), 2.0)


# --- limb fields ----------------------------------------------------------------------


def test_limb_field_direction_and_extent():
    people = _people({0: (5, 10), 1: (15, 10), 2: (15, 20)})
    fields = render_limb_fields(people, [(0, 1), (1, 2)], (30, 25), width=1.0)
    assert fields.shape == (4, 30, 25) and fields.dtype == np.float32  # [x0, y0, x1, y1]
    # Limb 0 points right along y = 10, one pixel either side, ends rounded (capsule).
    np.testing.assert_array_equal(fields[0:2, 10, 10], [1, 0])
    np.testing.assert_array_equal(fields[0:2, 11, 10], [1, 0])
    np.testing.assert_array_equal(fields[0:2, 12, 10], [0, 0])
    np.testing.assert_array_equal(fields[0:2, 10, 16], [1, 0])
    np.testing.assert_array_equal(fields[0:2, 10, 17], [0, 0])
    assert fields[0, 11, 16] == 0  # sqrt(2) from the end
    # Limb 1 points down.
    np.testing.assert_array_equal(fields[2:4, 15, 15], [0, 1])
    assert np.count_nonzero(fields[0]) == 11 * 3 + 2


def test_limb_fields_average_where_people_overlap():
    right = _people({0: (0, 5), 1: (10, 5)}, num_joints=2)
    down = _people({0: (5, 0), 1: (5, 10)}, num_joints=2)
    fields = render_limb_fields(np.concatenate([right, down]), [(0, 1)], (11, 11), width=0.5)
    np.testing.assert_allclose(fields[:, 5, 5], [0.5, 0.5])
    np.testing.assert_allclose(fields[:, 5, 2], [1, 0])


def test_limb_fields_need_both_ends_labelled_and_skip_degenerate_limbs():
    people = _people({0: (2, 2)}, {0: (4, 4), 1: (4, 4)})
    fields = render_limb_fields(people, [(0, 1)], (8, 8), width=2.0)
    assert not fields.any()
    # A limb with an end outside the map is drawn where it crosses the map.
    fields = render_limb_fields(_people({0: (-5, 3), 1: (4, 3)}), [(0, 1)], (8, 8), 1.0)
    np.testing.assert_array_equal(fields[0, 3, :5], 1)
    with pytest.raises(ValueError, match="outside 0..2"):
        render_limb_fields(people, [(0, 3)], (8, 8), 1.0)


def _limb_fields_by_pixel(keypoints, limbs, size, width):
    """The definition, pixel by pixel: mean unit vector of the segments within ``width``."""
    height, map_width = size
    fields = np.zeros((2 * len(limbs), height, map_width))
    for index, (a, b) in enumerate(limbs):
        for y in range(height):
            for x in range(map_width):
                vectors = []
                for person in keypoints:
                    if person[a, 2] <= 0 or person[b, 2] <= 0:
                        continue
                    start, end = person[a, :2], person[b, :2]
                    length = np.hypot(*(end - start))
                    if length < 1e-6:
                        continue
                    unit = (end - start) / length
                    along = np.clip(np.dot((x, y) - start, unit), 0, length)
                    if np.hypot(*((x, y) - start - along * unit)) <= width:
                        vectors.append(unit)
                if vectors:
                    fields[2 * index : 2 * index + 2, y, x] = np.mean(vectors, axis=0)
    return fields


def test_limb_fields_of_many_long_and_short_limbs_match_the_definition():
    # Segments are drawn in chunks bounded by their boxes' area: 14 people with limbs
    # from 2 to 70 pixels long and ends off the map span several chunks.
    rng = np.random.default_rng(0)
    keypoints = np.zeros((14, 4, 3))
    for n in range(14):
        spread = 2 if n % 2 else 25
        keypoints[n, :, :2] = rng.uniform(-5, 75, 2) + rng.normal(0, spread, (4, 2))
        keypoints[n, :, 2] = rng.choice([0, 1, 2], 4, p=[0.15, 0.15, 0.7])
    limbs = [(0, 1), (1, 2), (2, 3), (3, 0)]
    fields = render_limb_fields(keypoints, limbs, (70, 80), width=1.5)
    expected = _limb_fields_by_pixel(keypoints, limbs, (70, 80), width=1.5)
    assert np.count_nonzero(expected) > 1000
    np.testing.assert_allclose(fields, expected, atol=1e-6)


# --- joint indices and tags ------------------------------------------------------------


def test_joint_index_array():
    people = _people({0: (3, 2), 1: (3.6, 2.4)}, {2: (8, 0)}, {0: (1, 1)})
    out = joint_index_array(people, (4, 8), max_people=2)
    assert out.shape == (2, 3, 2) and out.dtype == np.int64
    np.testing.assert_array_equal(out[0], [[2 * 8 + 3, 1], [2 * 8 + 4, 1], [0, 0]])
    np.testing.assert_array_equal(out[1], [[0, 0], [0, 0], [0, 0]])  # x = 8 is outside
    padded = joint_index_array(people[:1], (4, 8), max_people=3)
    assert padded.shape == (3, 3, 2) and not padded[1:].any()


def test_tag_maps_hold_each_persons_tag_near_its_joints():
    people = _people({0: (4, 4)}, {0: (8, 4), 1: (1, 1)})
    tags = render_tag_maps(people, np.array([2.0, 5.0]), (10, 12), radius=2)
    assert tags.shape == (3, 10, 12) and tags.dtype == np.float32
    assert tags[0, 4, 4] == 2 and tags[0, 4, 5] == 2 and tags[0, 4, 6] == 2
    assert tags[0, 4, 7] == 5 and tags[0, 4, 8] == 5  # the closer joint wins
    assert tags[0, 4, 1] == 0 and tags[0, 7, 4] == 0  # outside the radius
    assert tags[1, 1, 1] == 5 and tags[2].max() == 0
    vector = render_tag_maps(people, np.array([[2.0, 1.0], [5.0, 0.5]]), (10, 12), 2)
    assert vector.shape == (3, 10, 12, 2)
    np.testing.assert_array_equal(vector[0, 4, 8], [5.0, 0.5])
    with pytest.raises(ValueError, match="tag_values"):
        render_tag_maps(people, np.array([1.0]), (10, 12), 2)


def test_tag_maps_of_an_image_without_people_are_zero():
    from occlupose.data.targets import render_tag_maps

    empty = np.zeros((0, 17, 3))
    assert render_tag_maps(empty, np.zeros(0), (8, 6), radius=2).shape == (17, 8, 6)
    assert not render_tag_maps(empty, np.zeros(0), (8, 6), radius=2).any()
