import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from occlupose.evaluation import occlude_image
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS

DATA = Path(__file__).resolve().parents[1] / "data"


def _crowd_scene(scenes, num_people: int = 12, image_id: int = 5):
    """A grey 800x1000 image with people side by side; a few keypoints are v=1 or v=0."""
    rng = np.random.default_rng(1)
    anns = []
    for i in range(num_people):
        v = rng.choice([0, 1, 2, 2, 2, 2, 2, 2], size=17)
        box = (20 + 80 * i, 50 + 30 * (i % 3), 70, 400 + 20 * (i % 4))
        anns.append(scenes.annotation(i + 1, image_id, box, visibility=v))
    image = np.full((800, 1000, 3), 127, dtype=np.uint8)
    return image, anns


def _flags(anns, num_joints=17):
    return np.array([a["keypoints"] for a in anns]).reshape(len(anns), num_joints, 3)[..., 2]


def test_deterministic_and_input_untouched(scenes):
    image, anns = _crowd_scene(scenes)
    original = image.copy()
    a, hidden_a = occlude_image(image, anns, 0.3, seed=0, keypoint_set=COCO_KEYPOINTS)
    b, hidden_b = occlude_image(image, anns, 0.3, seed=0, keypoint_set=COCO_KEYPOINTS)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hidden_a, hidden_b)
    np.testing.assert_array_equal(image, original)
    assert hidden_a.shape == (len(anns), 17) and hidden_a.dtype == bool
    c, _ = occlude_image(image, anns, 0.3, seed=1, keypoint_set=COCO_KEYPOINTS)
    assert not np.array_equal(a, c)
    # The seed is combined with the image id: another image gets other occluders.
    d, _ = occlude_image(image, anns, 0.3, seed=0, keypoint_set=COCO_KEYPOINTS, image_id=6)
    assert not np.array_equal(a, d)


def test_rate_zero_changes_nothing(scenes):
    image, anns = _crowd_scene(scenes)
    out, hidden = occlude_image(image, anns, 0.0, seed=0, keypoint_set=COCO_KEYPOINTS)
    np.testing.assert_array_equal(out, image)
    assert not hidden.any()


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3, 0.4, 0.5])
def test_requested_fraction_of_visible_keypoints_is_covered(scenes, rate):
    image, anns = _crowd_scene(scenes)
    out, hidden = occlude_image(image, anns, rate, seed=3, keypoint_set=COCO_KEYPOINTS)
    v = _flags(anns)
    visible = v == 2
    covered = (hidden & visible).sum(axis=1)
    # Per person: rate * n rounded down or up (stochastic rounding) ...
    exact = rate * visible.sum(axis=1)
    assert np.all((covered == np.floor(exact)) | (covered == np.ceil(exact)))
    # ... so over the image the covered fraction is close to the rate.
    assert covered.sum() / visible.sum() == pytest.approx(rate, abs=0.05)
    # Unlabelled keypoints are never reported hidden.
    assert not hidden[v == 0].any()
    # Keypoints reported visible are untouched pixels; covered ones were painted over.
    kp = np.array([a["keypoints"] for a in anns]).reshape(len(anns), 17, 3)
    xy = np.rint(kp[..., :2]).astype(int)
    changed = np.any(out != image, axis=2)
    still_visible = visible & ~hidden
    assert not changed[xy[still_visible][:, 1], xy[still_visible][:, 0]].any()
    assert changed[xy[hidden][:, 1], xy[hidden][:, 0]].mean() > 0.95  # a texel may be grey


def test_expected_rate_over_many_images(scenes):
    # Stochastic rounding makes the covered fraction unbiased over a dataset.
    covered = visible = 0
    for image_id in range(30):
        image, anns = _crowd_scene(scenes, num_people=4, image_id=image_id)
        _, hidden = occlude_image(image, anns, 0.15, seed=0, keypoint_set=COCO_KEYPOINTS)
        v = _flags(anns) == 2
        covered += (hidden & v).sum()
        visible += v.sum()
    assert covered / visible == pytest.approx(0.15, abs=0.02)


def test_occluders_scale_with_the_person(scenes):
    image = np.zeros((1200, 1200, 3), dtype=np.uint8)
    small = [scenes.annotation(1, 1, (100, 100, 40, 100))]
    large = [scenes.annotation(1, 1, (100, 100, 400, 1000))]
    out_small, _ = occlude_image(image, small, 0.5, seed=0, keypoint_set=COCO_KEYPOINTS)
    out_large, _ = occlude_image(image, large, 0.5, seed=0, keypoint_set=COCO_KEYPOINTS)
    area_small = np.any(out_small != 0, axis=2).sum()
    area_large = np.any(out_large != 0, axis=2).sum()
    assert area_large > 20 * area_small  # 10x the scale, about 100x the area
    # Without a box the scale comes from the keypoints' extent (80 % x 90 % of the box).
    no_box = [{k: v for k, v in large[0].items() if k != "bbox"}]
    out_no_box, _ = occlude_image(image, no_box, 0.5, seed=0, keypoint_set=COCO_KEYPOINTS)
    assert np.any(out_no_box != 0, axis=2).sum() > 10 * area_small


def test_real_coco_image():
    gt = json.loads((DATA / "coco_subset" / "person_keypoints_subset.json").read_text())
    anns = [a for a in gt["annotations"] if a["image_id"] == 785]
    image = cv2.imread(str(DATA / "coco_subset" / "images" / "000000000785.jpg"))
    out, hidden = occlude_image(image, anns, 0.4, seed=0, keypoint_set=COCO_KEYPOINTS)
    visible = _flags(anns) == 2
    assert visible.sum() == 17  # one skier, all visible
    assert (hidden & visible).sum() in (6, 7)  # 0.4 * 17 = 6.8
    assert out.shape == image.shape and out.dtype == np.uint8


def test_bad_arguments(scenes):
    image, anns = _crowd_scene(scenes)
    with pytest.raises(ValueError, match="rate"):
        occlude_image(image, anns, 1.5, seed=0, keypoint_set=COCO_KEYPOINTS)
    with pytest.raises(ValueError, match="17 keypoints, dataset 'crowdpose' has 14"):
        occlude_image(image, anns, 0.2, seed=0, keypoint_set=CROWDPOSE_KEYPOINTS)
    with pytest.raises(ValueError, match="uint8"):
        occlude_image(image.astype(np.float32), anns, 0.2, seed=0, keypoint_set=COCO_KEYPOINTS)


def test_occluder_kinds_cover_the_same_keypoints_with_other_pixels(scenes):
    image, anns = _crowd_scene(scenes)
    # A photo-like image: patches of it differ from place to place.
    yy, xx = np.mgrid[0:800, 0:1000]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
    textured, hidden = occlude_image(image, anns, 0.4, seed=2, keypoint_set=COCO_KEYPOINTS)
    default, _ = occlude_image(
        image, anns, 0.4, seed=2, keypoint_set=COCO_KEYPOINTS, kind="textured"
    )
    np.testing.assert_array_equal(textured, default)
    changed = np.any(textured != image, axis=2)
    for kind in ("patches", "mixed"):
        out, hidden_kind = occlude_image(
            image, anns, 0.4, seed=2, keypoint_set=COCO_KEYPOINTS, kind=kind
        )
        np.testing.assert_array_equal(hidden_kind, hidden)  # same spots covered
        assert not np.array_equal(out, textured)
        # Pixels change only where the textured occluders are (same shapes).
        assert not np.any((out != image).any(axis=2) & ~changed)
    # Patches are pieces of the image: on this image every pixel has B == (R + G) mod 256,
    # and so does every pixel a patch paints; random textures rarely do.
    patches, _ = occlude_image(
        image, anns, 0.4, seed=2, keypoint_set=COCO_KEYPOINTS, kind="patches"
    )
    painted = patches[changed].astype(int)
    assert np.all((painted[:, 0] + painted[:, 1]) % 256 == painted[:, 2])
    painted_textured = textured[changed].astype(int)
    assert (
        np.mean((painted_textured[:, 0] + painted_textured[:, 1]) % 256 == painted_textured[:, 2])
        < 0.2
    )
    with pytest.raises(ValueError, match="occluder kind must be one of textured, patches, mixed"):
        occlude_image(image, anns, 0.4, seed=2, keypoint_set=COCO_KEYPOINTS, kind="paint")
