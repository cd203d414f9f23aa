"""PosePrior: missing joints completed from the reference pose that fits the found ones."""

import numpy as np
import pytest

from occlupose.data.synthetic.template import standing_person
from occlupose.decode import PosePrior, fit_reference_pose, group_people
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIZE = (128, 128)


def similarity(points: np.ndarray, scale: float, degrees: float, shift) -> np.ndarray:
    t = np.radians(degrees)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return scale * points @ rotation.T + np.asarray(shift)


@pytest.fixture
def references() -> np.ndarray:
    """Two poses: the standing template and the same with both arms raised."""
    standing = standing_person(0.0, 0.0, 100.0)[:, :2]
    raised = standing.copy()
    for shoulder, elbow, wrist in ((5, 7, 9), (6, 8, 10)):
        raised[elbow] = raised[shoulder] + [0.0, -18.0]
        raised[wrist] = raised[elbow] + [0.0, -16.0]
    return np.stack([standing, raised])


def test_fit_recovers_a_transformed_reference_exactly(references):
    truth = similarity(references[1], 0.4, 25.0, (60.0, 40.0))
    known = np.ones(17, bool)
    known[[7, 9, 13]] = False
    pose, residual = fit_reference_pose(truth, known, references)
    np.testing.assert_allclose(pose, truth, atol=1e-9)
    assert residual < 1e-9
    with pytest.raises(ValueError, match="at least two"):
        fit_reference_pose(truth, np.eye(17, dtype=bool)[0], references)


def test_complete_fills_only_missing_joints_of_people_with_enough_found(references):
    truth = similarity(references[1], 0.3, -10.0, (50.0, 70.0))
    person = np.concatenate([truth, np.full((17, 1), 0.8, np.float32)], axis=1)
    person[[0, 9, 10, 15], 2] = [0.4, 0.0, 0.0, 0.0]  # wrists and an ankle not found
    sparse = np.zeros((17, 3), np.float32)
    sparse[[5, 6], :] = [[10, 10, 0.9], [20, 10, 0.9]]  # two joints: left alone
    prior = PosePrior(references)
    done = prior.complete(np.stack([person, sparse]))
    np.testing.assert_allclose(done[0, :, :2], truth, atol=1e-3)  # float32 storage
    np.testing.assert_allclose(done[0, [9, 10, 15], 2], [0.2, 0.2, 0.2])  # half of 0.4
    np.testing.assert_array_equal(done[0, [1, 5, 16], 2], person[[1, 5, 16], 2])
    np.testing.assert_array_equal(done[1], sparse)
    # The better-fitting reference wins: the standing pose puts the wrists elsewhere.
    wrong = PosePrior(references[:1]).complete(person[None])[0]
    assert np.abs(wrong[9, :2] - truth[9]).max() > 5


def test_reference_subset_metadata_round_trip_and_bad_input(references):
    many = np.concatenate([references] * 50)  # 100 poses
    prior = PosePrior(many, max_poses=30, min_known=4)
    assert prior.poses.shape == (30, 17, 2) and prior.num_joints == 17
    again = PosePrior.from_metadata(prior.metadata())
    np.testing.assert_allclose(again.poses, prior.poses, atol=1e-6)
    assert again.min_known == 4
    assert PosePrior.from_metadata({"preset": "hrgr_small"}) is None
    with pytest.raises(ValueError, match=r"\(M, J, 2\)"):
        PosePrior(np.zeros((3, 17)))
    with pytest.raises(ValueError, match="finite"):
        PosePrior(np.full((1, 17, 2), np.nan))
    with pytest.raises(ValueError, match="14 joints, the pose prior 17"):
        prior.complete(np.zeros((1, 14, 3)))


def test_group_people_with_a_prior_places_the_joints_the_maps_lack(synth):
    # A person whose wrists have no peaks: the grouper leaves them out, the prior (the
    # template as its only reference) puts them back where the template has them.
    truth = synth.person(64, 64, 80)
    heatmaps, fields = synth.limb_maps_for(synth.person(64, 64, 80, missing=(9, 10))[None], SIZE)
    template = standing_person(0.0, 0.0, 1.0)[None, :, :2]
    plain, _ = group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields)
    assert (plain[0, [9, 10], 2] == 0).all()
    people, scores = group_people(
        heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields, pose_prior=PosePrior(template)
    )
    assert (people[0, [9, 10], 2] > 0).all()
    # Groupers report pixel corners (+0.5); the template fit is exact up to the peaks'
    # quarter-pixel refinement.
    np.testing.assert_allclose(people[0, [9, 10], :2] - 0.5, truth[[9, 10], :2], atol=0.5)
    np.testing.assert_array_equal(people[0, :9], plain[0, :9])
    _, plain_scores = group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields)
    np.testing.assert_array_equal(scores, plain_scores)
