"""Skeleton drawing: pixels change where joints and limbs are, and nowhere else."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet
from occlupose.structures.person import Person
from occlupose.visualization import (
    draw_ground_truth,
    draw_people,
    joint_sides,
    limb_colours,
    score_colours,
    side_by_side,
)

SETS = [COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS]


def two_joint_person(keypoint_set: KeypointSet) -> tuple[np.ndarray, int, int]:
    """Only the first limb's joints, at (40, 50) and (120, 50); scores exact in float32."""
    a, b = keypoint_set.limbs[0]
    kpts = np.zeros((keypoint_set.num_keypoints, 3))
    kpts[a] = (40, 50, 0.75)
    kpts[b] = (120, 50, 0.5)
    return kpts, a, b


def changed(before: np.ndarray, after: np.ndarray, x: int, y: int) -> bool:
    return bool(np.any(before[y, x] != after[y, x]))


@pytest.mark.parametrize("keypoint_set", SETS, ids=lambda k: k.name)
def test_draw_people_marks_joints_and_limbs_only(keypoint_set):
    image = np.zeros((160, 200, 3), dtype=np.uint8)
    kpts, _, _ = two_joint_person(keypoint_set)
    out = draw_people(image, kpts, keypoint_set, thickness=3, radius=5)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not image.any()  # input untouched
    for x, y in ((40, 50), (120, 50), (80, 50)):  # both joints and the limb's middle
        assert changed(image, out, x, y)
    assert not out[100:, :].any()  # far below the skeleton nothing is drawn
    assert not out[:, 150:].any()
    # The limb's middle has the limb's colour (anti-aliasing aside).
    assert np.abs(out[50, 80].astype(int) - limb_colours(keypoint_set)[0]).max() <= 10


def test_low_scoring_joints_and_their_limbs_are_not_drawn():
    image = np.zeros((160, 200, 3), dtype=np.uint8)
    kpts, _, b = two_joint_person(COCO_KEYPOINTS)
    kpts[b, 2] = 0.05
    out = draw_people(image, kpts, COCO_KEYPOINTS, score_threshold=0.1, thickness=3, radius=5)
    assert changed(image, out, 40, 50)
    assert not changed(image, out, 120, 50)
    assert not changed(image, out, 80, 50)


def test_joints_are_coloured_by_score():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    kpts = np.zeros((17, 3))
    kpts[0] = (20, 20, 0.1)
    kpts[1] = (70, 70, 1.0)
    out = draw_people(image, kpts, COCO_KEYPOINTS, radius=6)
    low, high = score_colours(np.array([0.1, 1.0]))
    assert np.abs(out[20, 20].astype(int) - low).max() <= 10
    assert np.abs(out[70, 70].astype(int) - high).max() <= 10
    assert not np.array_equal(low, high)


def test_draw_people_accepts_person_objects_and_checks_shapes():
    image = np.zeros((160, 200), dtype=np.uint8)  # grayscale input is converted
    kpts, _, _ = two_joint_person(COCO_KEYPOINTS)
    from_people = draw_people(image, [Person(kpts, 0.9)], COCO_KEYPOINTS)
    from_array = draw_people(image, kpts[None], COCO_KEYPOINTS)
    assert from_people.shape == (160, 200, 3)
    assert np.array_equal(from_people, from_array)
    assert np.array_equal(draw_people(image, [], COCO_KEYPOINTS), np.zeros((160, 200, 3)))
    with pytest.raises(ValueError, match=r"\(N, 14, 3\)"):
        draw_people(image, kpts, CROWDPOSE_KEYPOINTS)
    with pytest.raises(ValueError, match="uint8"):
        draw_people(image.astype(np.float32), kpts, COCO_KEYPOINTS)


@pytest.mark.parametrize("keypoint_set", SETS, ids=lambda k: k.name)
def test_hidden_joints_are_drawn_differently_from_visible_ones(keypoint_set):
    image = np.zeros((160, 200, 3), dtype=np.uint8)
    kpts, a, b = two_joint_person(keypoint_set)
    kpts[a, 2], kpts[b, 2] = 2, 1  # a visible, b hidden
    out = draw_ground_truth(image, kpts, keypoint_set, thickness=2, radius=6)
    # A visible joint is a filled disc: a pixel 4 px above its centre is painted.
    assert changed(image, out, 40, 46)
    # A hidden joint is a ring with a cross: the same offset is left empty...
    assert not changed(image, out, 120, 46)
    # ...while the ring (radius 7) and the cross's centre are painted.
    assert changed(image, out, 120, 43) and changed(image, out, 120, 50)
    # Unlabelled joints (v=0) are not drawn.
    kpts[b, 2] = 0
    out = draw_ground_truth(image, kpts, keypoint_set, thickness=2, radius=6)
    assert not changed(image, out, 120, 50) and not changed(image, out, 80, 50)


def test_left_and_right_limbs_get_warm_and_cool_colours():
    colours = limb_colours(COCO_KEYPOINTS)
    assert len(set(colours)) == len(colours)  # every limb has its own colour

    def hue(bgr):
        b, g, r = (c / 255 for c in bgr)
        return colorsys.rgb_to_hsv(r, g, b)[0] * 360

    names = COCO_KEYPOINTS.keypoint_names
    for (a, b), colour in zip(COCO_KEYPOINTS.limbs, colours, strict=True):
        pair = names[a] + names[b]
        if "left" in pair and "right" not in pair:
            assert hue(colour) <= 60  # red to yellow
        elif "right" in pair and "left" not in pair:
            assert 170 <= hue(colour) <= 260  # cyan to blue
    sides = joint_sides(CROWDPOSE_KEYPOINTS)
    assert sides[CROWDPOSE_KEYPOINTS.index("left_knee")] == 1
    assert sides[CROWDPOSE_KEYPOINTS.index("right_knee")] == -1
    assert sides[CROWDPOSE_KEYPOINTS.index("neck")] == 0


def test_side_by_side_puts_titled_panels_next_to_each_other():
    left = np.zeros((120, 100, 3), dtype=np.uint8)
    right = np.full((60, 80, 3), 200, dtype=np.uint8)  # resized to 120 high, 160 wide
    panel = side_by_side(left, right, ("ground truth", "prediction"), gap=4)
    bar = panel.shape[0] - 120
    assert bar > 0
    assert panel.shape == (120 + bar, 100 + 4 + 160, 3)
    assert panel[bar:, :100].max() == 0
    assert np.all(panel[bar:, 104:] == 200)
    assert panel[:bar, :100].max() == 255  # title text is drawn in white
    untitled = side_by_side(left, right, None, gap=4)
    assert untitled.shape == (120, 264, 3)


def test_completed_joints_are_drawn_as_hollow_rings():
    image = np.zeros((160, 200, 3), dtype=np.uint8)
    kpts = np.zeros((17, 3))
    kpts[0] = (40, 50, 0.8)  # found: a filled disc
    kpts[5] = (120, 100, 0.4)  # completed: a ring with a white rim
    completed = np.zeros(17, dtype=bool)
    completed[5] = True
    found = draw_people(image, [Person(kpts, 1.0)], COCO_KEYPOINTS, radius=8, thickness=2)
    marked = draw_people(
        image, [Person(kpts, 1.0, completed=completed)], COCO_KEYPOINTS, radius=8, thickness=2
    )
    # Same found joint either way; the completed one is filled only when not marked.
    np.testing.assert_array_equal(found[50, 40], marked[50, 40])
    assert changed(image, found, 120, 100) and not changed(image, marked, 120, 100)
    assert (marked[100, 120 + 9] == 255).all()  # the white rim at radius + 1
    with pytest.raises(ValueError, match="completed must have shape"):
        Person(kpts, 1.0, completed=np.zeros(3, dtype=bool))
