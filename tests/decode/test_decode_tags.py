"""group_by_tags: the published HigherHRNet grouping on reference cases and known poses."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from occlupose.data.targets import render_heatmaps, render_tag_maps
from occlupose.decode import group_by_tags, resolve_joint_order
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS

REFERENCE = Path(__file__).parents[1] / "data" / "ae_grouping_reference.npz"
SIZE = (128, 128)


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


@pytest.mark.parametrize("case", range(6))
def test_reproduces_the_published_grouping(reference, case):
    heatmaps = reference[f"case{case}_det"].astype(np.float32)
    tags = reference[f"case{case}_tag"].astype(np.float32)
    expected = reference[f"case{case}_people"]
    expected_scores = reference[f"case{case}_scores"]

    people, scores = group_by_tags(heatmaps, tags)

    assert people.shape == expected.shape and people.dtype == np.float32
    # Same set of people: pair each reference person with its closest decoded one.
    unmatched = list(range(len(people)))
    for ref_person, ref_score in zip(expected, expected_scores, strict=True):
        errors = [np.abs(people[i] - ref_person).max() for i in unmatched]
        best = unmatched.pop(int(np.argmin(errors)))
        np.testing.assert_allclose(people[best], ref_person, atol=1e-4)
        assert scores[best] == pytest.approx(ref_score, abs=1e-4)


def test_reference_cases_are_not_trivial(reference):
    # Guard for the test above: the cases contain spurious peaks and unequal people.
    sizes = [len(reference[f"case{i}_scores"]) for i in range(6)]
    assert sizes == sorted(sizes) and sizes[-1] >= 20
    assert (reference["case5_det"] > 0.1).sum() > 1000


def test_separate_people_are_recovered(synth):
    truth = np.stack(
        [synth.person(25, 60, 50), synth.person(64, 64, 60), synth.person(103, 62, 55)]
    )
    people, scores = group_by_tags(*synth.tag_maps_for(truth, SIZE))
    assert len(people) == 3
    synth.assert_recovers(people, truth, SIZE)
    # Complete people with peaks of height ~1 score ~1 (mean over all 17 joints).
    assert scores.min() > 0.9


def test_crossing_arms_and_overlapping_people(synth):
    # A's left forearm crosses B's right forearm; C stands half behind B with its
    # right side hidden.
    a = synth.person(40, 70, 56, moved={7: (58, 50), 9: (76, 40)})
    b = synth.person(84, 70, 56, moved={8: (66, 52), 10: (50, 40)})
    c = synth.person(98, 78, 48, missing=(6, 8, 10, 12, 14, 16))
    truth = np.stack([a, b, c])
    people, _ = group_by_tags(*synth.tag_maps_for(truth, SIZE))
    synth.assert_recovers(people, truth, SIZE)


def test_partly_missing_people_and_image_border(synth):
    truth = np.stack(
        [
            synth.person(30, 60, 50, missing=(0, 1, 2, 3, 4)),  # no head
            synth.person(70, 100, 60),  # feet below the image
            synth.person(118, 60, 50),  # right side beyond the image edge
            synth.person(70, 40, 40, missing=(9, 10, 15, 16)),  # no wrists, no ankles
        ]
    )
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    people, _ = group_by_tags(heatmaps, tags)
    synth.assert_recovers(people, truth, SIZE)
    # Without refinement nothing is added: exactly the joints the maps show.
    people, _ = group_by_tags(heatmaps, tags, refine=False)
    assert (people[:, :, 2] > 0).sum() == ((truth[..., 2] > 0) & _inside(truth, SIZE)).sum()


def _inside(truth, size):
    x, y = truth[..., 0], truth[..., 1]
    return (x >= -0.5) & (x < size[1] - 0.5) & (y >= -0.5) & (y < size[0] - 0.5)


def test_no_people_gives_empty_arrays_of_the_right_shape():
    people, scores = group_by_tags(np.zeros((17, 32, 40)), np.zeros((17, 32, 40)))
    assert people.shape == (0, 17, 3) and scores.shape == (0,)
    assert people.dtype == np.float32 and scores.dtype == np.float32


def test_one_joint_only():
    truth = np.zeros((1, 17, 3))
    truth[0, 9] = (20, 30, 1)
    heatmaps = render_heatmaps(truth, (48, 64), 2.0)
    tags = render_tag_maps(truth, np.array([3.0]), (48, 64), 3.0)
    people, scores = group_by_tags(heatmaps, tags)
    assert people.shape == (1, 17, 3)
    assert np.flatnonzero(people[0, :, 2]) == [9]
    # Integer peak: quarter-pixel shift towards the (equal) neighbours goes -0.25.
    np.testing.assert_allclose(people[0, 9], (20.25, 30.25, 1.0))
    assert scores[0] == pytest.approx(1.0 / 17)


def test_adjust_and_refine_switches(synth):
    truth = np.stack([synth.person(40, 64, 56, missing=(9,)), synth.person(90, 64, 56)])
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    raw, raw_scores = group_by_tags(heatmaps, tags, adjust=False, refine=False)
    found = raw[:, :, 2] > 0
    # Without adjust the coordinates are the integer peak pixels.
    np.testing.assert_array_equal(raw[found][:, :2], np.round(raw[found][:, :2]))
    adjusted, adjusted_scores = group_by_tags(heatmaps, tags, refine=False)
    offset = adjusted[found][:, :2] - raw[found][:, :2]
    assert set(np.unique(offset)) <= {0.25, 0.75}
    np.testing.assert_allclose(raw_scores, adjusted_scores)


def test_multi_dimensional_tags_match_scalar_tags(synth):
    truth = np.stack([synth.person(35, 64, 56), synth.person(92, 64, 56)])
    heatmaps = render_heatmaps(truth, SIZE, 2.0)
    values = np.array([[2.0, -1.0], [4.0, 3.0]])
    tags = render_tag_maps(truth, values, SIZE, 3.0)
    assert tags.shape == (17, *SIZE, 2)
    people, _ = group_by_tags(heatmaps, tags)
    synth.assert_recovers(people, truth, SIZE)


def test_refine_recovers_a_weak_joint_from_its_tag(synth):
    truth = np.stack([synth.person(40, 64, 56), synth.person(90, 64, 56)])
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    heatmaps[9, :, :64] *= 0.08  # person 0's left wrist peak falls below the threshold
    unrefined, _ = group_by_tags(heatmaps, tags, refine=False)
    refined, scores = group_by_tags(heatmaps, tags)
    first = int(np.argmin(refined[:, 0, 0]))
    assert unrefined[first, 9, 2] == 0
    assert 0 < refined[first, 9, 2] < 0.1
    np.testing.assert_allclose(refined[first, 9, :2] - 0.5, truth[0, 9, :2], atol=0.8)
    # The person score is taken before refinement.
    np.testing.assert_allclose(scores, unrefined[:, :, 2].mean(axis=1), rtol=1e-6)


def test_equal_tags_collide_into_one_person(synth):
    # The reference keys people by their first tag value: two people with the same
    # tag become one (each later candidate overwrites the earlier one).
    truth = np.stack([synth.person(35, 64, 56), synth.person(92, 64, 56)])
    heatmaps = render_heatmaps(truth, SIZE, 2.0)
    tags = render_tag_maps(truth, np.array([2.0, 2.0]), SIZE, 3.0)
    people, _ = group_by_tags(heatmaps, tags, refine=False)
    assert people.shape == (1, 17, 3) and (people[0, :, 2] > 0).all()


def test_max_people_caps_candidates_per_joint(synth):
    truth = np.stack([synth.person(20 + 22 * i, 64, 40) for i in range(5)])
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    people, _ = group_by_tags(heatmaps, tags, max_people=3, refine=False)
    assert (people[:, :, 2] > 0).sum(axis=0).max() == 3


def test_joint_order_resolution():
    assert resolve_joint_order(17) == list(COCO_KEYPOINTS.grouping_order)
    assert resolve_joint_order(14, keypoint_set=CROWDPOSE_KEYPOINTS) == list(
        CROWDPOSE_KEYPOINTS.grouping_order
    )
    assert resolve_joint_order(5) == [0, 1, 2, 3, 4]
    assert resolve_joint_order(3, joint_order=[2, 0, 1]) == [2, 0, 1]
    with pytest.raises(ValueError, match="permutation"):
        resolve_joint_order(3, joint_order=[0, 0, 1])
    with pytest.raises(ValueError, match="14 keypoints"):
        resolve_joint_order(17, keypoint_set=CROWDPOSE_KEYPOINTS)


def test_crowdpose_people_are_recovered(synth):
    truth = np.zeros((2, 14, 3))
    coco = np.stack([synth.person(40, 64, 56), synth.person(90, 64, 56)])
    body = [COCO_KEYPOINTS.index(n) for n in CROWDPOSE_KEYPOINTS.keypoint_names[:12]]
    truth[:, :12] = coco[:, body]
    truth[:, 12] = coco[:, 0] - (0, 6, 0)  # head above the nose
    truth[:, 13] = (coco[:, 5] + coco[:, 6]) / 2  # neck between the shoulders
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    people, _ = group_by_tags(heatmaps, tags, keypoint_set=CROWDPOSE_KEYPOINTS)
    assert people.shape[1:] == (14, 3)
    synth.assert_recovers(people, truth, SIZE)


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="heatmaps must have shape"):
        group_by_tags(np.zeros((17, 8)), np.zeros((17, 8)))
    with pytest.raises(ValueError, match="tags must have shape"):
        group_by_tags(np.zeros((17, 8, 8)), np.zeros((17, 8, 9)))


def _brute_force_refine(heatmaps, tags, people):
    """The reference's refinement, one full map per person and missing joint."""
    tags = tags[..., None] if tags.ndim == 3 else tags
    out = people.copy()
    for person in out:
        found = np.flatnonzero(person[:, 2] > 0)
        xy = person[found, :2].astype(np.int32)
        mean = np.mean(tags[found, xy[:, 1], xy[:, 0]], axis=0)
        for j in np.flatnonzero(person[:, 2] == 0):
            score = heatmaps[j] - np.round(np.sqrt(((tags[j] - mean) ** 2).sum(axis=2)))
            y, x = np.unravel_index(np.argmax(score), score.shape)
            if heatmaps[j, y, x] > 0:
                m = heatmaps[j]
                dx = 0.25 if m[y, min(x + 1, m.shape[1] - 1)] > m[y, max(x - 1, 0)] else -0.25
                dy = 0.25 if m[min(y + 1, m.shape[0] - 1), x] > m[max(y - 1, 0), x] else -0.25
                person[j] = (x + 0.5 + dx, y + 0.5 + dy, m[y, x])
    return out


@pytest.mark.parametrize("dim", [1, 2])
def test_pruned_refinement_equals_the_full_map_search(dim):
    # Noisy maps (negative values, smooth random tags, an odd size that does not split
    # into whole runs) where many pixels compete: the pruning must not change the result.
    rng = np.random.default_rng(dim)
    size = (45, 61)
    heatmaps = rng.normal(0, 0.05, (17, *size)).astype(np.float32)
    for _ in range(60):
        j, y, x = rng.integers(0, 17), rng.integers(0, size[0]), rng.integers(0, size[1])
        heatmaps[j, y, x] = rng.uniform(0.2, 1.2)
    base = rng.normal(0, 2, (17, 6, 8, dim))
    tags = np.stack(
        [
            np.stack([cv2.resize(base[j, ..., d], size[::-1]) for d in range(dim)], axis=-1)
            for j in range(17)
        ]
    ).astype(np.float32)
    tags = tags[..., 0] if dim == 1 else tags
    grouped, _ = group_by_tags(heatmaps, tags, refine=False)
    refined, _ = group_by_tags(heatmaps, tags, refine=True)
    assert (grouped[:, :, 2] == 0).sum() > 100  # plenty to refine
    np.testing.assert_array_equal(refined, _brute_force_refine(heatmaps, tags, grouped))
