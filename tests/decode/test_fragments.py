"""join_fragments: the parts of a person that limb fields cannot connect join where the
completer places the missing joints."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from occlupose.data.synthetic.template import standing_person
from occlupose.decode import (
    DecodeSettings,
    MergedMaps,
    PosePrior,
    decode_people,
    group_people,
    join_fragments,
    load_completer,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

COCO_SUBSET = Path(__file__).parents[1] / "data" / "coco_subset" / "person_keypoints_subset.json"
SIZE = (128, 128)
SIGMAS = COCO_KEYPOINTS.sigmas
KNEES = (13, 14)
ANKLES = (15, 16)
WRISTS = (9, 10)


@pytest.fixture
def prior() -> PosePrior:
    """Completes people exactly from the standing template (its only reference)."""
    return PosePrior(standing_person(0.0, 0.0, 100.0)[None, :, :2])


def fragments(pose: np.ndarray, *parts: tuple[int, ...], score: float = 0.8) -> np.ndarray:
    """(len(parts), 17, 3): one person per part, holding only those joints of ``pose``."""
    people = np.zeros((len(parts), 17, 3), np.float32)
    for person, joints in zip(people, parts, strict=True):
        person[list(joints), :2] = pose[list(joints), :2]
        person[list(joints), 2] = score
    return people


def upper_body() -> tuple[int, ...]:
    return tuple(j for j in range(17) if j not in KNEES + ANKLES)


def test_lone_ankles_below_a_hidden_knee_join_the_upper_body(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    people = fragments(pose, upper_body(), (15,), (16,))
    joined, scores = join_fragments(people, prior, SIGMAS)
    assert len(joined) == 1
    expected = fragments(pose, upper_body() + ANKLES)[0]
    np.testing.assert_allclose(joined[0], expected)
    assert (joined[0, KNEES, 2] == 0).all()  # still missing: joining places nothing
    np.testing.assert_allclose(scores, [0.8 * 15 / 17], rtol=1e-6)


def test_the_result_does_not_depend_on_the_input_order(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    people = fragments(pose, (16,), upper_body(), (15,))
    joined, _ = join_fragments(people, prior, SIGMAS)
    assert len(joined) == 1
    np.testing.assert_allclose(joined[0], fragments(pose, upper_body() + ANKLES)[0])


def test_a_joint_far_from_its_completed_place_stays_apart(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    other = standing_person(60.0 + 80.0, 60.0, 80.0)  # a person one body height away
    people = np.concatenate([fragments(pose, upper_body()), fragments(other, (15,))])
    joined, scores = join_fragments(people, prior, SIGMAS)
    np.testing.assert_allclose(joined, people)
    np.testing.assert_allclose(scores, people[:, :, 2].sum(axis=1) / 17, rtol=1e-6)


def test_similarity_threshold_decides_how_far_a_joint_may_be(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    people = fragments(pose, upper_body(), (15,))
    # Keypoint similarity of the ankle moved by d: exp(-d^2 / (2 A (2 sigma)^2)).
    filled = prior.complete(people[:1])[0]
    area = np.prod(filled[:, :2].max(axis=0) - filled[:, :2].min(axis=0))
    shift = np.sqrt(-np.log(0.5) * 2 * area * (2 * SIGMAS[15]) ** 2)  # similarity 0.5
    people[1, 15, 0] += shift
    assert len(join_fragments(people, prior, SIGMAS, min_similarity=0.45)[0]) == 1
    assert len(join_fragments(people, prior, SIGMAS, min_similarity=0.55)[0]) == 2


def test_no_joint_type_twice_and_the_closer_candidate_wins(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    near, far = fragments(pose, (15,)), fragments(pose, (15,))
    near[0, 15, 0] += 1.0
    far[0, 15, 0] += 3.0
    shared = fragments(pose, (9, 15))  # a correct ankle, but a wrist the anchor has
    people = np.concatenate([fragments(pose, upper_body()), far, shared, near])
    joined, _ = join_fragments(people, prior, SIGMAS)
    assert len(joined) == 3
    np.testing.assert_allclose(joined[0, 15, :2], pose[15, :2] + [1.0, 0.0])
    np.testing.assert_allclose(joined[1:], people[[1, 2]])


def test_head_and_body_join(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    people = fragments(pose, (0, 1, 2), tuple(range(3, 17)))
    joined, _ = join_fragments(people, prior, SIGMAS)
    assert len(joined) == 1
    np.testing.assert_allclose(joined[0], fragments(pose, tuple(range(17)))[0])


def test_people_the_completer_cannot_place_are_left_alone(prior):
    pose = standing_person(60.0, 60.0, 80.0)
    # Two joints: below the prior's min_known of 3, so it places nothing; lone joints
    # are never anchors.
    people = fragments(pose, (5, 6), (15,), (16,))
    joined, _ = join_fragments(people, prior, SIGMAS)
    np.testing.assert_allclose(joined, people)
    single = fragments(pose, (15,), (16,))
    np.testing.assert_allclose(join_fragments(single, prior, SIGMAS)[0], single)
    empty, scores = join_fragments(np.zeros((0, 17, 3)), prior, SIGMAS)
    assert empty.shape == (0, 17, 3) and scores.shape == (0,)


def test_the_bundled_learned_completer_joins_a_real_pose():
    # The skier of COCO val image 785 (every joint visible), in image pixels; knees hidden.
    annotations = json.loads(COCO_SUBSET.read_text())["annotations"]
    (skier,) = [a for a in annotations if a["id"] == 442619]
    pose = np.asarray(skier["keypoints"], np.float64).reshape(17, 3)
    people = fragments(pose, upper_body(), (15,), (16,))
    joined, _ = join_fragments(people, load_completer("coco"), SIGMAS)
    assert len(joined) == 1
    np.testing.assert_allclose(joined[0], fragments(pose, upper_body() + ANKLES)[0])


def test_bad_arguments_are_refused(prior):
    people = fragments(standing_person(60.0, 60.0, 80.0), upper_body())
    with pytest.raises(ValueError, match="min_similarity"):
        join_fragments(people, prior, SIGMAS, min_similarity=0.0)
    with pytest.raises(ValueError, match="shape"):
        join_fragments(people[0], prior, SIGMAS)
    with pytest.raises(ValueError, match="sigmas"):
        join_fragments(people, prior, SIGMAS[:14])
    with pytest.raises(ValueError, match="join_similarity"):
        DecodeSettings(join_similarity=1.5)


def test_decode_people_joins_what_limb_grouping_splits(synth, prior):
    # Knees hidden: no limb field connects the ankles to the body, so limb grouping
    # returns three people; decoding with a completer returns one.
    truth = synth.person(64.0, 60.0, 90.0, missing=KNEES)[None]
    heatmaps, fields = synth.limb_maps_for(truth, SIZE)
    grouped, _ = group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields)
    assert len(grouped) == 3
    maps = MergedMaps(torch.from_numpy(heatmaps), None, torch.from_numpy(fields), 2.0)
    identity = np.eye(3)
    people = decode_people(maps, COCO_KEYPOINTS, to_image=identity, pose_prior=prior)
    assert len(people) == 1
    (person,) = people
    assert not person.completed[list(ANKLES)].any()  # found, not completed
    assert person.completed[list(KNEES)].all()
    expected = (truth[0, :, :2] + 0.5) * 2 - 0.5
    found = ~person.completed
    np.testing.assert_allclose(person.keypoints[found, :2], expected[found], atol=1.0)
    np.testing.assert_allclose(person.score, grouped[:, :, 2].sum() / 17, rtol=1e-5)
    # Not joined when switched off, or without a completer.
    off = DecodeSettings(join_fragments=False)
    assert len(decode_people(maps, COCO_KEYPOINTS, off, to_image=identity, pose_prior=prior)) == 3
    assert len(decode_people(maps, COCO_KEYPOINTS, to_image=identity)) == 3
