"""The decoder: group_people decodes exactly as each grouper does; decode_people maps the
people to the image with the settings' conventions, order and filters."""

import numpy as np
import pytest
import torch

from occlupose.decode import (
    DecodeSettings,
    MergedMaps,
    decode_people,
    group_by_limbs,
    group_by_tags,
    group_people,
    pixel_convention_for,
    resolve_grouping,
)
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


def _merged(heatmaps, tags=None, limbs=None, stride=2.0) -> MergedMaps:
    as_tensor = lambda a: None if a is None else torch.from_numpy(np.asarray(a))  # noqa: E731
    return MergedMaps(as_tensor(heatmaps), as_tensor(tags), as_tensor(limbs), stride)


def test_decode_people_maps_joints_to_the_image(synth, truth):
    heatmaps, fields = synth.limb_maps_for(truth, SIZE)
    # Maps at stride 2 of an input that is the image zoomed 4x and shifted by (10, 20).
    to_image = np.array([[0.25, 0.0, -2.5], [0.0, 0.25, -5.0], [0.0, 0.0, 1.0]])
    people = decode_people(_merged(heatmaps, limbs=fields), COCO_KEYPOINTS, to_image=to_image)
    grouped, scores = group_people(heatmaps, COCO_KEYPOINTS, grouping="limbs", limbs=fields)
    assert [p.score for p in people] == sorted(scores.tolist(), reverse=True)
    for person in people:
        n = int(np.argmin(np.abs(scores - person.score)))
        found = grouped[n, :, 2] > 0
        # Map c -> input 2 c - 0.5 (pixel centres) -> image (x - 10) / 4.
        expected = ((grouped[n, :, :2] * 2 - 0.5) - [10, 20]) / 4
        np.testing.assert_allclose(person.keypoints[found, :2], expected[found], atol=1e-5)
        assert (person.keypoints[~found] == 0).all()  # missing joints are (0, 0, 0)
    # The true joints (map pixel centres) come back within a map pixel.
    image_truth = ((truth[..., :2] + 0.5) * 2 - 0.5 - [10, 20]) / 4
    for person in people:
        found = person.keypoints[:, 2] > 0
        error = np.abs(person.keypoints[None, found, :2] - image_truth[:, found]).max(axis=(1, 2))
        assert error.min() < 2 * 0.75 / 4


def test_official_convention_is_half_an_input_pixel_away(synth, truth):
    heatmaps, tags = synth.tag_maps_for(truth, SIZE)
    maps = _merged(heatmaps, tags=tags, stride=1.0)
    identity = np.eye(3)
    centres = decode_people(
        maps, COCO_KEYPOINTS, DecodeSettings(grouping="tags"), to_image=identity
    )
    official = decode_people(maps, COCO_KEYPOINTS, DecodeSettings.official(), to_image=identity)
    assert len(official) == len(centres) == 2
    # Official: creation order, the grouper's coordinates as they are; missing joints too.
    grouped, scores = group_by_tags(heatmaps, tags, keypoint_set=COCO_KEYPOINTS)
    np.testing.assert_array_equal(np.stack([p.keypoints for p in official]), grouped)
    assert [p.score for p in official] == scores.tolist()
    by_score = sorted(official, key=lambda p: -p.score)
    for a, b in zip(centres, by_score, strict=True):
        found = b.keypoints[:, 2] > 0
        np.testing.assert_allclose(a.keypoints[found, :2], b.keypoints[found, :2] - 0.5)


def test_decode_settings_order_filter_and_cap(synth):
    people = np.stack([synth.person(20 + 25 * i, 64, 40 + 5 * i) for i in range(4)])
    heatmaps, fields = synth.limb_maps_for(people, SIZE)
    maps = _merged(heatmaps, limbs=fields)
    every = decode_people(
        maps, COCO_KEYPOINTS, DecodeSettings(max_results=None), to_image=np.eye(3)
    )
    scores = [p.score for p in every]
    assert len(every) == 4 and scores == sorted(scores, reverse=True)
    capped = decode_people(maps, COCO_KEYPOINTS, DecodeSettings(max_results=2), to_image=np.eye(3))
    assert [p.score for p in capped] == scores[:2]
    threshold = (scores[1] + scores[2]) / 2
    kept = decode_people(
        maps, COCO_KEYPOINTS, DecodeSettings(min_score=threshold), to_image=np.eye(3)
    )
    assert [p.score for p in kept] == scores[:2]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grouping": "pifpaf"}, "grouping must be"),
        ({"pixel_convention": "corners"}, "pixel_convention must be"),
        ({"nms_kernel": 4}, "nms_kernel must be a positive odd"),
        ({"max_people": 0}, "max_people must be at least 1"),
        ({"max_results": -1}, "max_results must be"),
    ],
)
def test_bad_decode_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**changes)


def test_official_settings_are_the_published_ones():
    official = DecodeSettings.official()
    assert (official.grouping, official.detection_threshold, official.tag_threshold) == (
        "tags",
        0.1,
        1.0,
    )
    assert (official.max_people, official.nms_kernel, official.refine) == (30, 5, True)
    assert official.max_results is None and not official.sort_by_score
    assert official.pixel_convention == "official"
    assert DecodeSettings.official(min_score=0.2).min_score == 0.2


def test_the_pixel_convention_follows_the_training_targets():
    assert pixel_convention_for("integer") == "official"
    assert pixel_convention_for("subpixel") == "centres"
    with pytest.raises(ValueError, match="heatmap_centres must be integer or subpixel"):
        pixel_convention_for("rounded")
