"""group_people: one entry point that decodes exactly as each grouper does."""

import numpy as np
import pytest

from occlupose.decode import group_by_limbs, group_by_tags, group_people, resolve_grouping
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SIZE = (128, 128)


@pytest.fixture
def truth(synth):
    return np.stack([synth.person(30, 60, 50), synth.person(90, 64, 60, missing=(9, 10))])


def test_limb_grouping_is_group_by_limbs(synth, truth):
    heatmaps, fields = synth.limb_maps_for(truth, SIZE)
    people, scores = group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields)
    expected, expected_scores = group_by_limbs(heatmaps, fields, COCO_KEYPOINTS)
    np.testing.assert_array_equal(people, expected)
    np.testing.assert_array_equal(scores, expected_scores)
    synth.assert_recovers(people, truth, SIZE)


def test_tag_grouping_is_group_by_tags(synth, truth):
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    people, scores = group_people(
        heatmaps, COCO_KEYPOINTS, grouping="tags", tags=tags, detection_threshold=0.2
    )
    expected, expected_scores = group_by_tags(
        heatmaps, tags, detection_threshold=0.2, keypoint_set=COCO_KEYPOINTS
    )
    np.testing.assert_array_equal(people, expected)
    np.testing.assert_array_equal(scores, expected_scores)
    assert len(people) == 2


def test_detection_threshold_reaches_the_grouper(synth, truth):
    heatmaps, fields = synth.limb_maps_for(truth, SIZE)
    # Above every peak: no candidates, no people.
    people, _ = group_people(
        heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields, detection_threshold=1.5
    )
    assert people.shape == (0, 17, 3)


def test_missing_maps_and_unknown_grouping_are_refused():
    heatmaps = np.zeros((17, 8, 8), np.float32)
    with pytest.raises(ValueError, match="limb fields"):
        group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs")
    with pytest.raises(ValueError, match="tag maps"):
        group_people(heatmaps, COCO_KEYPOINTS, grouping="tags")
    with pytest.raises(ValueError, match="limbs or tags"):
        group_people(heatmaps, COCO_KEYPOINTS, grouping="pifpaf")


def test_resolve_grouping():
    assert resolve_grouping("auto", has_tags=True, has_limbs=True) == "limbs"
    assert resolve_grouping("auto", has_tags=True, has_limbs=False) == "tags"
    assert resolve_grouping("tags", has_tags=True, has_limbs=True) == "tags"
    with pytest.raises(ValueError, match="limb-field head"):
        resolve_grouping("limbs", has_tags=True, has_limbs=False)
    with pytest.raises(ValueError, match="tag head"):
        resolve_grouping("auto", has_tags=False, has_limbs=False)
    with pytest.raises(ValueError, match="auto, limbs or tags"):
        resolve_grouping("nearest", has_tags=True, has_limbs=True)
