import copy
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from occlupose.data.datasets import (
    AnnotationError,
    from_layout,
    load_coco_keypoints,
    load_crowdpose,
    load_ochuman,
)
from occlupose.data.image_io import ImageReadError
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS

HERE = Path(__file__).parent
COCO_JSON = HERE / "coco_subset" / "person_keypoints_subset.json"
COCO_IMAGES = HERE / "coco_subset" / "images"
CROWDPOSE_JSON = HERE / "crowdpose_sample" / "crowdpose_sample.json"
CROWDPOSE_IMAGES = HERE / "crowdpose_sample" / "images"


def test_coco_sample_counts():
    dataset = load_coco_keypoints(COCO_JSON, COCO_IMAGES)
    assert dataset.keypoint_set is COCO_KEYPOINTS
    assert len(dataset) == 6
    assert [r.image_id for r in dataset] == [785, 40083, 85329, 99293, 122469, 204805]
    assert sum(r.num_people for r in dataset) == 23
    assert sum(int(r.labelled.sum()) for r in dataset) == 9
    assert sum(int(r.iscrowd.sum()) for r in dataset) == 1
    assert sum(int((r.keypoints[..., 2] > 0).sum()) for r in dataset) == 110
    report = dataset.report
    assert (report.num_images, report.num_annotations, report.num_labelled_people) == (6, 23, 9)
    assert report.skipped_unknown_image == report.skipped_malformed == 0


def test_coco_record_matches_json():
    raw = json.loads(COCO_JSON.read_text())
    first = next(a for a in raw["annotations"] if a["image_id"] == 40083)
    record = next(r for r in load_coco_keypoints(COCO_JSON, COCO_IMAGES) if r.image_id == 40083)
    assert (record.width, record.height) == (500, 333)
    assert record.path == COCO_IMAGES / "000000040083.jpg"
    assert record.keypoints.shape == (3, 17, 3) and record.keypoints.dtype == np.float32
    assert record.annotation_ids[0] == first["id"]
    np.testing.assert_allclose(record.keypoints[0].reshape(-1), first["keypoints"])
    np.testing.assert_allclose(record.boxes[0], first["bbox"], rtol=1e-6)
    assert record.areas[0] == pytest.approx(first["area"])
    assert record.crowd_index is None
    assert record.read_image().shape == (333, 500, 3)


def test_crowdpose_sample():
    dataset = load_crowdpose(CROWDPOSE_JSON, CROWDPOSE_IMAGES)
    assert dataset.keypoint_set is CROWDPOSE_KEYPOINTS
    assert [r.image_id for r in dataset] == [103319, 105456, 106848]
    assert [r.crowd_index for r in dataset] == [0.39, 0.67, 0.33]
    assert sum(r.num_people for r in dataset) == 7
    assert sum(int(r.labelled.sum()) for r in dataset) == 6
    assert sum(int((r.keypoints[..., 2] > 0).sum()) for r in dataset) == 71
    # No `area` in CrowdPose: 0.53 * box area, as crowdposetools evaluates.
    record = dataset[0]
    w, h = 100.54, 247.56  # bbox of annotation 127068
    assert record.areas[0] == pytest.approx(0.53 * w * h, rel=1e-5)
    # head and neck flags are kept as annotated (always 1).
    head, neck = CROWDPOSE_KEYPOINTS.index("head"), CROWDPOSE_KEYPOINTS.index("neck")
    assert record.keypoints[0, head, 2] == 1 and record.keypoints[0, neck, 2] == 1


def test_crowdpose_keypoint_set_is_recognised_from_its_category():
    # Generic reader: names match the built-in set, the wrong skeleton in the JSON is ignored.
    assert load_coco_keypoints(CROWDPOSE_JSON, CROWDPOSE_IMAGES).keypoint_set is CROWDPOSE_KEYPOINTS


def test_ochuman_reader_uses_coco_keypoints():
    assert load_ochuman(COCO_JSON, COCO_IMAGES).name == "ochuman"


def test_wrong_keypoint_set_is_an_error():
    with pytest.raises(AnnotationError, match="lists 14 keypoints but keypoint set 'coco' has 17"):
        load_coco_keypoints(CROWDPOSE_JSON, CROWDPOSE_IMAGES, COCO_KEYPOINTS)


def test_layouts(tmp_path):
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    shutil.copy(COCO_JSON, coco / "annotations" / "person_keypoints_val2017.json")
    shutil.copytree(COCO_IMAGES, coco / "val2017")
    assert len(from_layout("coco", coco, "val")) == 6

    crowdpose = tmp_path / "crowdpose"
    (crowdpose / "json").mkdir(parents=True)
    shutil.copy(CROWDPOSE_JSON, crowdpose / "json" / "crowdpose_test.json")
    shutil.copytree(CROWDPOSE_IMAGES, crowdpose / "images")
    dataset = from_layout("crowdpose", crowdpose, "test")
    assert dataset.keypoint_set is CROWDPOSE_KEYPOINTS and len(dataset) == 3

    with pytest.raises(FileNotFoundError, match="person_keypoints_train2017.json"):
        from_layout("coco", coco, "train")
    with pytest.raises(ValueError, match="splits train, val"):
        from_layout("coco", coco, "test")
    with pytest.raises(KeyError, match="unknown dataset layout"):
        from_layout("mpii", coco, "val")
    with pytest.raises(FileNotFoundError, match="root folder"):
        from_layout("coco", tmp_path / "nowhere", "val")


# --- small constructed files -------------------------------------------------------------


def _tiny(tmp_path: Path, num_joints: int = 17) -> tuple[dict, Path]:
    """Two 40x30 images, one person each, every keypoint labelled at (5, 6)."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.zeros((30, 40, 3), np.uint8))
    names = COCO_KEYPOINTS.keypoint_names if num_joints == 17 else [f"k{i}" for i in range(4)]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": [
            {
                "id": 10 + i,
                "image_id": i,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [1, 2, 10, 12],
                "area": 100.0,
                "keypoints": [5, 6, 2] * len(names),
            }
            for i in (1, 2)
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(names), "skeleton": []}],
    }
    return data, images


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_malformed_json(tmp_path):
    path = _write(tmp_path, '{"images": [}')
    (tmp_path / "images").mkdir()
    with pytest.raises(AnnotationError, match=r"ann.json: not valid JSON \(line 1, column 13"):
        load_coco_keypoints(path, tmp_path / "images")


def test_missing_files_name_the_path(tmp_path):
    data, images = _tiny(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothere.json does not exist"):
        load_coco_keypoints(tmp_path / "nothere.json", images)
    with pytest.raises(FileNotFoundError, match="image folder .*nodir"):
        load_coco_keypoints(_write(tmp_path, data), tmp_path / "nodir")


def test_missing_top_level_key(tmp_path):
    data, images = _tiny(tmp_path)
    del data["annotations"]
    with pytest.raises(AnnotationError, match=r"missing top-level key\(s\) \['annotations'\]"):
        load_coco_keypoints(_write(tmp_path, data), images)


def test_image_entry_without_size(tmp_path):
    data, images = _tiny(tmp_path)
    del data["images"][1]["width"]
    with pytest.raises(AnnotationError, match=r"images\[1\] lacks"):
        load_coco_keypoints(_write(tmp_path, data), images)


def test_unknown_image_id_is_skipped_and_counted(tmp_path, caplog):
    data, images = _tiny(tmp_path)
    data["annotations"][1]["image_id"] = 99
    path = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="occlupose.data.datasets"):
        dataset = load_coco_keypoints(path, images)
    assert dataset.report.skipped_unknown_image == 1
    assert [r.num_people for r in dataset] == [1, 0]
    assert "1 annotations with an unknown image id skipped" in caplog.text
    with pytest.raises(AnnotationError, match="annotation 12 points at unknown image id 99"):
        load_coco_keypoints(path, images, strict=True)


def test_wrong_keypoint_count_is_skipped_and_counted(tmp_path):
    data, images = _tiny(tmp_path)
    data["annotations"][0]["keypoints"] = [5, 6, 2] * 16
    path = _write(tmp_path, data)
    dataset = load_coco_keypoints(path, images)
    assert dataset.report.skipped_malformed == 1
    assert [r.num_people for r in dataset] == [0, 1]
    with pytest.raises(AnnotationError, match=r"48 keypoint values, expected 51"):
        load_coco_keypoints(path, images, strict=True)


def test_keypoints_outside_the_image_become_unlabelled(tmp_path):
    data, images = _tiny(tmp_path)
    kpts = data["annotations"][0]["keypoints"]
    kpts[0:3] = [45, 6, 2]  # x beyond the 40 px width
    kpts[3:6] = [5, -3, 1]
    kpts[6:9] = [40, 30, 2]  # on the far border: inside
    dataset = load_coco_keypoints(_write(tmp_path, data), images)
    assert dataset.report.keypoints_outside_image == 2
    np.testing.assert_array_equal(dataset[0].keypoints[0, :4, 2], [0, 0, 2, 2])
    with pytest.raises(AnnotationError, match="2 labelled keypoint"):
        load_coco_keypoints(_write(tmp_path, data), images, strict=True)


def test_images_without_people(tmp_path):
    data, images = _tiny(tmp_path)
    data["annotations"][1]["keypoints"] = [0, 0, 0] * 17
    path = _write(tmp_path, data)
    kept = load_coco_keypoints(path, images)
    assert len(kept) == 2 and kept.report.images_without_people == 1
    dropped = load_coco_keypoints(path, images, drop_images_without_people=True)
    assert [r.image_id for r in dropped] == [1]
    assert dropped.report.dropped_images == 1


def test_missing_image_files(tmp_path):
    data, images = _tiny(tmp_path)
    (images / "b.png").unlink()
    dataset = load_coco_keypoints(_write(tmp_path, data), images)
    assert [r.image_id for r in dataset] == [1]
    assert dataset.report.skipped_missing_file == 1
    (images / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match="none of the 2 images .* is in"):
        load_coco_keypoints(_write(tmp_path, data), images)


def test_annotation_size_disagreeing_with_the_image(tmp_path):
    data, images = _tiny(tmp_path)
    data["images"][0]["width"] = 41
    record = load_coco_keypoints(_write(tmp_path, data), images)[0]
    with pytest.raises(ImageReadError, match="image is 40x30 but its annotation .* says 41x30"):
        record.read_image()


def test_custom_keypoint_category(tmp_path):
    data, images = _tiny(tmp_path, num_joints=4)
    category = data["categories"][0]
    category["keypoints"] = ["head", "left_paw", "right_paw", "tail"]
    category["skeleton"] = [[1, 2], [1, 3], [1, 4]]
    category["name"] = "cat"
    dataset = load_coco_keypoints(_write(tmp_path, data), images)
    assert dataset.keypoint_set.name == "cat"
    assert dataset.keypoint_set.limbs == ((0, 1), (0, 2), (0, 3))
    assert dataset.keypoint_set.flip_pairs == ((1, 2),)
    assert dataset[0].keypoints.shape == (1, 4, 3)


def test_several_keypoint_categories_need_a_choice(tmp_path):
    data, images = _tiny(tmp_path)
    other = copy.deepcopy(data["categories"][0])
    other["id"] = 2
    data["categories"].append(other)
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match="several keypoint categories"):
        load_coco_keypoints(path, images)
    assert len(load_coco_keypoints(path, images, category_id=1)) == 2
    # The annotations belong to category 1: none is read for category 2.
    assert load_coco_keypoints(path, images, category_id=2).report.num_annotations == 0


def test_binary_file_is_not_json(tmp_path):
    _, images = _tiny(tmp_path)
    path = tmp_path / "ann.json"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    with pytest.raises(AnnotationError, match="not a UTF-8 text file"):
        load_coco_keypoints(path, images)


def test_which_images_a_training_set_keeps():
    # Real COCO entries: 785 and 40083 have labelled people (40083 also one without
    # keypoints), 204805 a crowd region and one labelled person, 147961 and 79841 only
    # people without keypoints, 322864 no annotation (its annotations left out).
    path = HERE / "coco_images_kept" / "person_keypoints_images_kept.json"
    every = load_coco_keypoints(path, HERE, check_image_files=False)
    assert [r.image_id for r in every] == [785, 40083, 79841, 147961, 204805, 322864]
    assert every.report.images_without_people == 3
    assert every.report.images_without_annotations == 1
    # HigherHRNet's training set: every image with any person annotation.
    annotated = load_coco_keypoints(
        path, HERE, check_image_files=False, drop_images_without_annotations=True
    )
    assert [r.image_id for r in annotated] == [785, 40083, 79841, 147961, 204805]
    assert annotated.report.dropped_images == 1
    assert "1 of them dropped" in annotated.report.summary()
    # occlupose's own: only images with a labelled, non-crowd person.
    labelled = load_coco_keypoints(
        path, HERE, check_image_files=False, drop_images_without_people=True
    )
    assert [r.image_id for r in labelled] == [785, 40083, 204805]
    assert labelled.report.dropped_images == 3
