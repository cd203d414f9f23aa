"""The ground-truth bound of the end-to-end completion benchmark: the pieces of a heavily
occluded person are grouped perfectly, nothing else changes."""

from __future__ import annotations

import numpy as np
from completion_end_to_end import group_most_occluded_perfectly, is_most_occluded

from occlupose.data.synthetic.template import standing_person
from occlupose.decode import PosePrior
from occlupose.structures import Person

KNEES, ANKLES = (13, 14), (15, 16)


class RecordingPrior(PosePrior):
    """The exact template prior; remembers what it was asked to complete."""

    def complete_people(self, people: np.ndarray) -> np.ndarray:
        self.asked = np.array(people)
        return super().complete_people(people)


def piece(pose: np.ndarray, joints: tuple[int, ...], score: float = 0.8) -> Person:
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[list(joints), :2] = pose[list(joints), :2]
    keypoints[list(joints), 2] = score
    return Person(keypoints, float(keypoints[:, 2].sum() / 17))


def annotation(pose: np.ndarray, hidden: tuple[int, ...], image_id: int = 1) -> dict:
    keypoints = pose.copy()
    keypoints[:, 2] = 2
    keypoints[list(hidden), 2] = 1
    return {"image_id": image_id, "keypoints": keypoints.reshape(-1).tolist(), "area": 2000.0}


def test_most_occluded_means_more_than_40_percent_of_the_labelled_joints_hidden():
    truth = np.zeros((17, 3))
    truth[:10, 2] = 2
    truth[10:14, 2] = 1  # 4 of 14 labelled: 29 %
    assert not is_most_occluded(truth)
    truth[14:17, 2] = 1  # 7 of 17: 41 %
    assert is_most_occluded(truth)
    assert not is_most_occluded(np.zeros((17, 3)))


def test_pieces_of_an_occluded_person_are_put_together_and_completed():
    occluded = standing_person(60.0, 60.0, 80.0)
    bystander = standing_person(160.0, 60.0, 80.0)
    hidden = tuple(range(5, 13)) + KNEES  # only the head and the ankles show
    gt = {
        "annotations": [
            annotation(occluded, hidden),
            annotation(bystander, ()),
        ]
    }
    people = {
        1: [
            piece(bystander, tuple(range(17))),
            piece(occluded, (0, 1, 2, 3, 4)),
            piece(occluded, (15,), 0.5),
            piece(occluded, (16,), 0.6),
        ]
    }
    prior = RecordingPrior(standing_person(0.0, 0.0, 100.0)[None, :, :2])
    (grouped,) = group_most_occluded_perfectly(people, gt, prior).values()
    # The bystander, and one person made of the three pieces, best first.
    assert len(grouped) == 2
    np.testing.assert_allclose(grouped[0].keypoints, people[1][0].keypoints)
    joined = grouped[1]
    shown = [0, 1, 2, 3, 4, *ANKLES]
    np.testing.assert_allclose(joined.keypoints[shown, :2], occluded[shown, :2], atol=1e-4)
    np.testing.assert_allclose(joined.keypoints[ANKLES, 2], [0.5, 0.6])
    assert joined.score == np.float32(0.8 * 5 + 0.5 + 0.6) / 17
    assert joined.completed.tolist() == [j not in shown for j in range(17)]
    # The completer placed the hidden joints where the person is.
    np.testing.assert_allclose(joined.keypoints[:, :2], occluded[:, :2], atol=1e-3)
    assert len(prior.asked) == 2
