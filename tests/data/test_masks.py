from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from occlupose.data.datasets import ImageRecord, load_coco_keypoints, load_crowdpose
from occlupose.data.masks import box_to_mask, ignore_mask, segmentation_to_mask

HERE = Path(__file__).parent


def _coco(image_id: int) -> ImageRecord:
    dataset = load_coco_keypoints(
        HERE / "coco_subset" / "person_keypoints_subset.json", HERE / "coco_subset" / "images"
    )
    return next(r for r in dataset if r.image_id == image_id)


def _record(segmentations, iscrowd, labelled, boxes=None, size=(30, 40)) -> ImageRecord:
    n = len(segmentations)
    keypoints = np.zeros((n, 2, 3), np.float32)
    keypoints[labelled, 0] = (1, 1, 2)
    return ImageRecord(
        image_id=1,
        path=Path("x.png"),
        width=size[1],
        height=size[0],
        keypoints=keypoints,
        boxes=np.zeros((n, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32),
        areas=np.zeros(n, np.float32),
        iscrowd=np.asarray(iscrowd, bool),
        segmentations=list(segmentations),
        annotation_ids=np.arange(n),
    )


def test_image_with_only_labelled_people_counts_everywhere():
    mask = ignore_mask(_coco(785))
    assert mask.shape == (425, 640) and mask.dtype == np.uint8
    assert mask.min() == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools decode under NumPy 2
def test_real_crowd_region_and_unlabelled_people_are_masked():
    record = _coco(204805)  # 1 crowd RLE, 12 unlabelled people with polygons, 1 labelled
    mask = ignore_mask(record)
    crowd = int(np.flatnonzero(record.iscrowd)[0])
    crowd_pixels = mask_utils.decode(
        mask_utils.frPyObjects(record.segmentations[crowd], record.height, record.width)
    ).astype(bool)
    assert crowd_pixels.sum() > 1000
    assert (mask[crowd_pixels] == 0).all()
    for i in np.flatnonzero(~record.labelled & ~record.iscrowd):
        x, y, w, h = record.boxes[i]
        assert mask[int(y + h / 2), int(x + w / 2)] == 0  # body centre of each unlabelled person
    # The labelled person's joints stay in the loss.
    person = int(np.flatnonzero(record.labelled)[0])
    joints = record.keypoints[person][record.keypoints[person, :, 2] > 0]
    assert all(mask[int(y), int(x)] == 1 for x, y, _ in joints)
    # Nothing outside the annotations is masked: the ignored area is at most their area.
    ignored_area = record.areas[~record.labelled].sum()
    assert 0.9 * crowd_pixels.sum() < (mask == 0).sum() <= 1.05 * ignored_area


def test_person_without_keypoints_or_segmentation_is_masked_by_its_box():
    dataset = load_crowdpose(
        HERE / "crowdpose_sample" / "crowdpose_sample.json", HERE / "crowdpose_sample" / "images"
    )
    record = next(r for r in dataset if r.image_id == 106848)
    mask = ignore_mask(record)
    # bbox [108.5, 96.78, 35.46, 30.23] touches columns 108..143 and rows 96..127.
    expected = np.ones_like(mask)
    expected[96:128, 108:144] = 0
    np.testing.assert_array_equal(mask, expected)


def test_polygon_crowd_region():
    square = [[10.0, 5.0, 20.0, 5.0, 20.0, 15.0, 10.0, 15.0]]
    mask = ignore_mask(_record([square], iscrowd=[True], labelled=[False]))
    assert mask[10, 15] == 0 and mask[2, 2] == 1 and mask[25, 30] == 1
    assert 90 <= (mask == 0).sum() <= 121


def test_labelled_people_are_not_masked_even_with_a_segmentation():
    square = [[10.0, 5.0, 20.0, 5.0, 20.0, 15.0, 10.0, 15.0]]
    assert ignore_mask(_record([square], iscrowd=[False], labelled=[True])).min() == 1


def test_compressed_and_uncompressed_rle_agree():
    target = np.zeros((30, 40), np.uint8, order="F")
    target[3:9, 12:30] = 1
    compressed = mask_utils.encode(target)
    compressed = {"size": compressed["size"], "counts": compressed["counts"].decode()}
    flat = target.reshape(-1, order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])))  # run boundaries
    counts = np.diff(np.concatenate([[0], changes[:-1], [flat.size]])).tolist()
    uncompressed = {"size": [30, 40], "counts": counts}
    np.testing.assert_array_equal(segmentation_to_mask(compressed, 30, 40), target.astype(bool))
    np.testing.assert_array_equal(segmentation_to_mask(uncompressed, 30, 40), target.astype(bool))


def test_unusable_segmentations_fall_back_to_the_box():
    box = [[4.0, 2.0, 3.0, 2.0]]  # columns 4..6, rows 2..3
    expected = np.ones((30, 40), np.uint8)
    expected[2:4, 4:7] = 0
    wrong_size_rle = {"size": [10, 10], "counts": [100]}
    degenerate_polygon = [[1.0, 1.0, 2.0, 2.0]]
    for segmentation in (wrong_size_rle, degenerate_polygon, None):
        record = _record([segmentation], iscrowd=[True], labelled=[False], boxes=box)
        np.testing.assert_array_equal(ignore_mask(record), expected)


def test_box_mask_is_clipped_to_the_image():
    mask = box_to_mask(np.array([-5.0, 25.0, 10.0, 20.0]), 30, 40)
    assert mask.sum() == 5 * 5 and mask[25:30, 0:5].all()
