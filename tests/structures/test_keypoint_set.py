"""Keypoint sets: the built-in definitions are right, custom ones are validated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occlupose.structures import (
    COCO_KEYPOINTS,
    CROWDPOSE_KEYPOINTS,
    KeypointSet,
    Person,
    get_keypoint_set,
    keypoint_set_from_coco_category,
    register_keypoint_set,
)


def test_coco_definition():
    kps = COCO_KEYPOINTS
    assert kps.num_keypoints == 17 and kps.num_limbs == 19
    assert kps.index("left_wrist") == 9
    flip = kps.flip_index
    assert flip[kps.index("left_ankle")] == kps.index("right_ankle")
    assert flip[kps.index("nose")] == kps.index("nose")
    assert sorted(flip) == list(range(17))
    # COCO's published sigmas (nose .026, hips .107).
    assert kps.sigmas[0] == pytest.approx(0.026) and kps.sigmas[11] == pytest.approx(0.107)
    assert kps.grouping_order[:9] == (0, 1, 2, 3, 4, 5, 6, 11, 12)


def test_crowdpose_definition_has_a_14_point_skeleton():
    kps = CROWDPOSE_KEYPOINTS
    assert kps.num_keypoints == 14
    assert all(0 <= a < 14 and 0 <= b < 14 for a, b in kps.limbs)
    # The skeleton is one connected body: every joint reachable from the head.
    reached, frontier = {kps.index("head")}, [kps.index("head")]
    while frontier:
        j = frontier.pop()
        for a, b in kps.limbs:
            for u, v in ((a, b), (b, a)):
                if u == j and v not in reached:
                    reached.add(v)
                    frontier.append(v)
    assert reached == set(range(14))
    assert kps.flip_index[kps.index("head")] == kps.index("head")
    assert kps.sigmas[-1] == pytest.approx(0.079)


def test_crowdpose_json_category_maps_to_the_correct_skeleton(data_dir):
    # CrowdPose files carry COCO's 17-point skeleton; the reader must not use it.
    category = {
        "name": "person",
        "keypoints": list(CROWDPOSE_KEYPOINTS.keypoint_names),
        "skeleton": [[16, 14], [14, 12], [17, 15]],
    }
    assert keypoint_set_from_coco_category(category) is CROWDPOSE_KEYPOINTS
    coco = {"keypoints": list(COCO_KEYPOINTS.keypoint_names), "skeleton": [[1, 2]]}
    assert keypoint_set_from_coco_category(coco) is COCO_KEYPOINTS


def test_custom_category():
    category = {
        "name": "hand",
        "keypoints": ["wrist", "left_tip", "right_tip"],
        "skeleton": [[1, 2], [1, 3]],
    }
    kps = keypoint_set_from_coco_category(category)
    assert kps.name == "hand" and kps.limbs == ((0, 1), (0, 2))
    assert kps.flip_pairs == ((1, 2),)
    with pytest.raises(ValueError, match="outside 1..3"):
        keypoint_set_from_coco_category({**category, "skeleton": [[1, 4]]})
    with pytest.raises(ValueError, match="no 'keypoints'"):
        keypoint_set_from_coco_category({"name": "x"})


def test_registry():
    kps = KeypointSet("test_pair", ("a", "b"), ((0, 1),), (0.1, 0.1))
    register_keypoint_set(kps)
    assert get_keypoint_set("test_pair") is kps
    assert get_keypoint_set("COCO") is COCO_KEYPOINTS
    with pytest.raises(ValueError, match="different keypoint set"):
        register_keypoint_set(KeypointSet("test_pair", ("a", "c"), (), (0.1, 0.1)))
    with pytest.raises(KeyError, match="unknown keypoint set"):
        get_keypoint_set("mpii-but-not-registered")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(sigmas=(0.1,)), "1 sigmas for 2 keypoints"),
        (dict(limbs=((0, 2),)), "limb"),
        (dict(limbs=((1, 1),)), "limb"),
        (dict(flip_pairs=((0, 1), (1, 0))), "two flip pairs"),
        (dict(grouping_order=(0, 0)), "permutation"),
        (dict(keypoint_names=("a", "a")), "duplicate"),
        (dict(sigmas=(0.1, 0.0)), "positive"),
    ],
)
def test_invalid_definitions_are_rejected(kwargs, message):
    base = dict(name="bad", keypoint_names=("a", "b"), limbs=(), sigmas=(0.1, 0.1))
    with pytest.raises(ValueError, match=message):
        KeypointSet(**{**base, **kwargs})


def test_person_box_and_coco_entry():
    keypoints = np.array([[10, 20, 0.9], [30, 5, 0.5], [99, 99, 0.0]])
    person = Person(keypoints, score=0.75)
    assert person.box == (10.0, 5.0, 30.0, 20.0)
    entry = person.to_coco(image_id=7)
    assert entry["image_id"] == 7 and len(entry["keypoints"]) == 9
    json.dumps(entry)  # plain Python numbers only
    with pytest.raises(ValueError, match=r"\(J, 3\)"):
        Person(np.zeros((17, 2)), 1.0)
