"""group_by_limbs: pair scoring, assembly order, and recovery of known poses."""

import numpy as np
import pytest

from occlupose.data.targets import render_heatmaps, render_limb_fields
from occlupose.decode import group_by_limbs, limb_visit_order, score_limb_pairs
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIZE = (128, 128)


def test_pair_score_is_the_projection_of_the_field_on_the_segment():
    field_x = np.ones((20, 40), np.float32)  # a field pointing right everywhere
    field_y = np.zeros((20, 40), np.float32)
    start = np.array([[5.0, 10.0]])
    end = np.array([[25.0, 10.0], [5.0, 2.0], [15.0, 20.0]])  # right, up, diagonal
    score, valid = score_limb_pairs(field_x, field_y, start, end)
    np.testing.assert_allclose(score[0], [1.0, 0.0, 10 / np.hypot(10, 10)], atol=1e-6)
    np.testing.assert_array_equal(valid[0], [True, False, True])
    # The reverse direction is rejected.
    score, valid = score_limb_pairs(field_x, field_y, end[:1], start)
    assert score[0, 0] == pytest.approx(-1.0) and not valid[0, 0]


def test_pair_score_needs_support_along_most_of_the_segment():
    field_x = np.zeros((20, 40), np.float32)
    field_x[:, :15] = 1.0  # field only on the first half of the segment
    field_y = np.zeros_like(field_x)
    start, end = np.array([[5.0, 10.0]]), np.array([[25.0, 10.0]])
    score, valid = score_limb_pairs(field_x, field_y, start, end)
    assert 0.4 < score[0, 0] < 0.6 and not valid[0, 0]
    score, valid = score_limb_pairs(field_x, field_y, start, end, min_fraction=0.5)
    assert valid[0, 0]


def test_long_limbs_are_penalised():
    field_x = np.ones((20, 200), np.float32)
    args = (field_x, np.zeros_like(field_x), np.array([[0.0, 5.0]]), np.array([[150.0, 5.0]]))
    assert score_limb_pairs(*args)[0][0, 0] == pytest.approx(1.0)
    assert score_limb_pairs(*args, max_length=100)[0][0, 0] == pytest.approx(1.0 + 100 / 150 - 1)


def test_visit_order_is_a_spanning_tree_first():
    order = limb_visit_order(17, COCO_KEYPOINTS.limbs)
    assert sorted(order) == list(range(COCO_KEYPOINTS.num_limbs))
    # The first 16 limbs connect all 17 joints without a cycle, starting at the root.
    reached = {COCO_KEYPOINTS.index("left_shoulder")}
    for i in order[:16]:
        a, b = COCO_KEYPOINTS.limbs[i]
        assert (a in reached) != (b in reached)
        reached |= {a, b}
    assert len(reached) == 17
    # Explicit root and a disconnected graph.
    assert limb_visit_order(5, [(0, 1), (3, 4), (1, 2)], root=2) == [2, 0, 1]


def test_separate_people_are_recovered(synth):
    truth = np.stack(
        [synth.person(25, 60, 50), synth.person(64, 64, 60), synth.person(103, 62, 55)]
    )
    people, scores = group_by_limbs(*synth.limb_maps_for(truth, SIZE), COCO_KEYPOINTS)
    assert len(people) == 3
    synth.assert_recovers(people, truth, SIZE)
    assert np.all(np.diff(scores) <= 0) and scores.min() > 0.9


def test_crossing_arms_and_overlapping_people(synth):
    # A's left forearm crosses B's right forearm; C stands half behind B with its
    # right arm hidden (shoulder, elbow, wrist: the rest stays connected).
    a = synth.person(40, 70, 56, moved={7: (58, 50), 9: (76, 40)})
    b = synth.person(84, 70, 56, moved={8: (66, 52), 10: (50, 40)})
    c = synth.person(100, 80, 48, missing=(6, 8, 10))
    truth = np.stack([a, b, c])
    people, _ = group_by_limbs(*synth.limb_maps_for(truth, SIZE), COCO_KEYPOINTS)
    synth.assert_recovers(people, truth, SIZE)
    assert len(people) == 3


def test_partly_missing_people_and_image_border(synth):
    truth = np.stack(
        [
            synth.person(30, 60, 50, missing=(0, 1, 3)),  # nose and left eye/ear hidden
            synth.person(70, 100, 60),  # feet below the image
            synth.person(118, 60, 50),  # right side beyond the image edge
            synth.person(70, 40, 40, missing=(9, 10, 15, 16)),  # no wrists, no ankles
        ]
    )
    people, _ = group_by_limbs(*synth.limb_maps_for(truth, SIZE), COCO_KEYPOINTS)
    synth.assert_recovers(people, truth, SIZE)
    assert len(people) == 4


def test_a_joint_cut_off_from_its_person_comes_out_alone(synth):
    # Without the elbow, nothing links the wrist to the body: two people.
    truth = np.stack([synth.person(64, 64, 60, missing=(7,))])
    people, _ = group_by_limbs(*synth.limb_maps_for(truth, SIZE), COCO_KEYPOINTS)
    assert sorted((people[:, :, 2] > 0).sum(axis=1)) == [1, 15]
    people, _ = group_by_limbs(*synth.limb_maps_for(truth, SIZE), COCO_KEYPOINTS, min_joints=2)
    assert len(people) == 1


def test_no_people_gives_empty_arrays_of_the_right_shape():
    people, scores = group_by_limbs(np.zeros((17, 32, 40)), np.zeros((38, 32, 40)), COCO_KEYPOINTS)
    assert people.shape == (0, 17, 3) and scores.shape == (0,)
    assert people.dtype == np.float32 and scores.dtype == np.float32


def test_one_joint_only():
    truth = np.zeros((1, 17, 3))
    truth[0, 9] = (20, 30, 1)
    heatmaps = render_heatmaps(truth, (48, 64), 2.0)
    fields = render_limb_fields(truth, COCO_KEYPOINTS.limbs, (48, 64), 1.5)
    people, scores = group_by_limbs(heatmaps, fields, COCO_KEYPOINTS)
    assert people.shape == (1, 17, 3)
    np.testing.assert_allclose(people[0, 9], (20.25, 30.25, 1.0))
    assert scores[0] == pytest.approx(1.0 / 17)


def test_limbs_given_as_pairs_and_coordinates_without_adjust(synth):
    truth = np.stack([synth.person(40, 64, 50), synth.person(90, 64, 50)])
    heatmaps, fields = synth.limb_maps_for(truth, SIZE)
    by_set, _ = group_by_limbs(heatmaps, fields, COCO_KEYPOINTS)
    by_pairs, _ = group_by_limbs(heatmaps, fields, list(COCO_KEYPOINTS.limbs))
    np.testing.assert_array_equal(by_set, by_pairs)
    raw, _ = group_by_limbs(heatmaps, fields, COCO_KEYPOINTS, adjust=False)
    found = raw[:, :, 2] > 0
    np.testing.assert_array_equal(raw[found][:, :2], np.round(raw[found][:, :2]))
    np.testing.assert_allclose(np.abs(by_set[found][:, :2] - raw[found][:, :2] - 0.5), 0.25)


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="limb_fields must have shape"):
        group_by_limbs(np.zeros((17, 8, 8)), np.zeros((17, 8, 8)), COCO_KEYPOINTS)
    with pytest.raises(ValueError, match="outside 0..16"):
        group_by_limbs(np.zeros((17, 8, 8)), np.zeros((2, 8, 8)), [(0, 17)])
