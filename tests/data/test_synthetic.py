"""The synthetic occlusion benchmark: determinism, COCO validity, visibility labels, levels, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.data.synthetic import (
    POINT_NAMES,
    Occluder,
    Pose,
    articulate,
    compose_scene,
    render_image,
    render_scene,
)
from occlupose.data.synthetic.annotations import (
    crowd_index,
    occlusion_histogram,
    occlusion_rate,
    select_keypoints,
)
from occlupose.data.synthetic.generate import generate_dataset
from occlupose.structures.keypoint_set import (
    COCO_KEYPOINTS,
    CROWDPOSE_KEYPOINTS,
    KeypointSet,
)

SIZE = 256


def v_of(person, name: str) -> int:
    return int(person.keypoints[POINT_NAMES.index(name), 2])


def square(center, half: float) -> np.ndarray:
    cx, cy = center
    return np.array(
        [
            [cx - half, cy - half],
            [cx + half, cy - half],
            [cx + half, cy + half],
            [cx - half, cy + half],
        ]
    )


# --- determinism -------------------------------------------------------------------------


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_for_any_worker_count(tmp_path):
    a = generate_dataset(tmp_path / "a", 4, seed=7, size=96, progress=False)
    b = generate_dataset(tmp_path / "b", 4, seed=7, size=96, progress=False, workers=2)
    files_a, files_b = _files(a.parent), _files(b.parent)
    assert files_a.keys() == files_b.keys()
    assert len(files_a) == 5  # 4 images + annotations.json
    assert files_a == files_b


def test_different_seed_gives_different_data(tmp_path):
    a = generate_dataset(tmp_path / "a", 2, seed=1, size=96, progress=False)
    b = generate_dataset(tmp_path / "b", 2, seed=2, size=96, progress=False)
    assert a.read_bytes() != b.read_bytes()
    assert (a.parent / "images/000001.png").read_bytes() != (
        b.parent / "images/000001.png"
    ).read_bytes()


def test_images_can_be_rendered_alone_and_out_of_order():
    later = render_image(3, 5, 96, "high")
    earlier = render_image(3, 4, 96, "high")
    again = render_image(3, 5, 96, "high")
    assert np.array_equal(later.image, again.image)
    assert not np.array_equal(later.image, earlier.image)
    assert [p.keypoints.tolist() for p in later.people] == [
        p.keypoints.tolist() for p in again.people
    ]


# --- COCO validity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, keypoint_set", [("coco", COCO_KEYPOINTS), ("crowdpose", CROWDPOSE_KEYPOINTS)]
)
def test_annotations_are_standard_and_consistent(tmp_path, fmt, keypoint_set):
    path = generate_dataset(
        tmp_path / fmt, 6, seed=3, size=128, format=fmt, occlusion="high", progress=False
    )
    coco = COCO(str(path))
    dataset = json.loads(path.read_text())
    assert {"info", "images", "annotations", "categories"} <= dataset.keys()
    (category,) = dataset["categories"]
    assert category["keypoints"] == list(keypoint_set.keypoint_names)
    assert category["skeleton"] == [[a + 1, b + 1] for a, b in keypoint_set.limbs]
    assert len(coco.getImgIds()) == 6
    assert len(coco.getAnnIds()) > 6  # the high level holds 3-8 people per image

    j = keypoint_set.num_keypoints
    for ann in coco.loadAnns(coco.getAnnIds()):
        img = coco.imgs[ann["image_id"]]
        w, h = img["width"], img["height"]
        assert (tmp_path / fmt / "images" / img["file_name"]).is_file()
        kpts = np.array(ann["keypoints"], dtype=float).reshape(j, 3)
        v = kpts[:, 2]
        assert set(np.unique(v)) <= {0, 1, 2}
        assert ann["num_keypoints"] == int((v > 0).sum())
        labelled = kpts[v > 0]
        assert np.all((labelled[:, 0] >= 0) & (labelled[:, 0] <= w - 1))
        assert np.all((labelled[:, 1] >= 0) & (labelled[:, 1] <= h - 1))
        assert np.all(kpts[v == 0, :2] == 0)
        bx, by, bw, bh = ann["bbox"]
        assert bw > 0 and bh > 0
        assert np.all((labelled[:, 0] >= bx) & (labelled[:, 0] <= bx + bw))
        assert np.all((labelled[:, 1] >= by) & (labelled[:, 1] <= by + bh))
        mask = coco.annToMask(ann)
        assert mask.shape == (h, w)
        assert ann["area"] > 0
        assert ann["area"] == int(mask.sum()) == int(mask_utils.area(ann["segmentation"]))
        ys, xs = np.nonzero(mask)  # visible pixels lie in the (amodal) box
        assert xs.min() >= bx - 1 and xs.max() <= bx + bw + 1
        assert ys.min() >= by - 1 and ys.max() <= by + bh + 1
        assert ann["iscrowd"] == 0
    for img in dataset["images"]:
        assert img["crowdIndex"] >= 0
        assert img["occlusion_level"] == "high"


# --- visibility on constructed scenes -------------------------------------------------------


def frontal_body(center=(128.0, 128.0), height=200.0, **pose_fields):
    return articulate(Pose(**pose_fields), height, center)


def test_unoccluded_frontal_person_is_fully_visible():
    scene = compose_scene(SIZE, [frontal_body()], [0.0], [], rng=0)
    (person,) = scene.people
    assert person.keypoints[:, 2].tolist() == [2.0] * len(POINT_NAMES)
    assert occlusion_rate(person.keypoints) == 0.0


def test_occluder_in_front_of_a_joint_hides_it_and_one_behind_does_not():
    body = frontal_body()
    wrist = body.points[POINT_NAMES.index("left_wrist")]
    in_front = Occluder("box", square(wrist, 12), depth=-1.0)
    (person,) = compose_scene(SIZE, [body], [0.0], [in_front], rng=0).people
    assert v_of(person, "left_wrist") == 1
    assert v_of(person, "right_wrist") == 2
    assert v_of(person, "nose") == 2
    behind = Occluder("box", square(wrist, 12), depth=1.0)
    (person,) = compose_scene(SIZE, [body], [0.0], [behind], rng=0).people
    assert v_of(person, "left_wrist") == 2


def test_joint_outside_the_image_is_unlabelled_with_zero_coordinates():
    body = frontal_body(center=(128.0, 250.0))  # feet below the bottom edge
    (person,) = compose_scene(SIZE, [body], [0.0], [], rng=0).people
    for name in ("left_ankle", "right_ankle"):
        x, y, v = person.keypoints[POINT_NAMES.index(name)]
        assert (x, y, v) == (0.0, 0.0, 0.0)
    assert v_of(person, "nose") == 2
    assert person.bbox[1] + person.bbox[3] == SIZE  # box clipped to the image


def test_nearer_person_hides_the_joints_it_covers():
    back = frontal_body()
    front = frontal_body(center=(168.0, 128.0))
    scene = compose_scene(SIZE, [back, front], [1.0, 0.0], [], rng=0)
    back_person, front_person = scene.people
    # The back person's left shoulder (image right, x ~ 154) is behind the front torso.
    assert v_of(back_person, "left_shoulder") == 1
    assert v_of(back_person, "right_shoulder") == 2
    assert front_person.keypoints[:, 2].tolist() == [2.0] * len(POINT_NAMES)
    assert back_person.area < front_person.area
    # Same place, same pose, in front: the back person vanishes from the labels.
    scene = compose_scene(SIZE, [back, frontal_body()], [1.0, 0.0], [], rng=0)
    assert len(scene.people) == 1


def test_self_occlusion_in_side_and_back_views():
    # yaw +90: facing image right, the left side is away from the camera.
    (side,) = compose_scene(SIZE, [frontal_body(yaw=90.0)], [0.0], [], rng=0).people
    assert v_of(side, "left_shoulder") == 1 and v_of(side, "right_shoulder") == 2
    assert v_of(side, "left_ear") == 1 and v_of(side, "right_ear") == 2
    assert v_of(side, "left_eye") == 1 and v_of(side, "nose") == 2
    (back,) = compose_scene(SIZE, [frontal_body(yaw=180.0)], [0.0], [], rng=0).people
    for name in ("nose", "left_eye", "right_eye"):
        assert v_of(back, name) == 1
    assert v_of(back, "left_ear") == 2 and v_of(back, "left_shoulder") == 2


def _face_contrast(body, name: str) -> float:
    """Mean brightness of the head around its centre minus that at the face point."""
    scene = compose_scene(SIZE, [body], [0.0], [], rng=0)
    gray = scene.image.astype(np.float64).mean(axis=2)
    x, y = np.round(body.points[POINT_NAMES.index(name)]).astype(int)
    hx, hy = np.round(body.points[POINT_NAMES.index("head")]).astype(int)
    return float(gray[hy + 3 : hy + 6, hx - 1 : hx + 2].mean() - gray[y, x])


def test_eyes_and_nose_are_marked_where_they_face_the_camera():
    # The points sit on dark marks (eyes much darker than the nose); the head top is
    # plain skin. Seen from behind, the same pixels are plain skin too.
    front = frontal_body()
    eye, nose = _face_contrast(front, "left_eye"), _face_contrast(front, "nose")
    assert eye > 40 and nose > 10 and eye > nose
    back = frontal_body(yaw=180.0)
    assert abs(_face_contrast(back, "left_eye")) < 10
    assert abs(_face_contrast(back, "nose")) < 10
    # Marks are part of the face: every face point of a frontal person stays visible.
    (person,) = compose_scene(SIZE, [frontal_body(height=60.0)], [0.0], [], rng=0).people
    assert [v_of(person, n) for n in ("nose", "left_eye", "right_eye")] == [2, 2, 2]


def test_left_side_of_a_frontal_person_is_on_the_image_right():
    body = frontal_body()
    x = dict(zip(POINT_NAMES, body.points[:, 0], strict=True))
    assert x["left_shoulder"] > x["right_shoulder"]
    assert x["left_ear"] > x["nose"] > x["right_ear"]


# --- occlusion levels ----------------------------------------------------------------------


def test_levels_give_ordered_occlusion_rates():
    means, medians = {}, {}
    for level in ("none", "low", "medium", "high"):
        rates = [
            p.occlusion_rate for i in range(40) for p in render_image(11, i, 128, level).people
        ]
        means[level], medians[level] = np.mean(rates), np.median(rates)
    assert means["none"] < means["low"] < means["medium"] < means["high"]
    assert medians["none"] == 0.0
    assert medians["high"] > 0.3


def test_mixed_draws_levels_and_bad_level_is_rejected():
    levels = {render_scene(i, 64, "mixed").level for i in range(30)}
    assert levels == {"none", "low", "medium", "high"}
    with pytest.raises(ValueError, match="occlusion level 'heavy'"):
        render_scene(0, 64, "heavy")


# --- annotation helpers --------------------------------------------------------------------


def test_crowd_index_by_hand():
    unlabelled = [0.0, 0.0, 0.0]
    a = np.array([[1, 1, 2], [2, 2, 2], [3, 3, 1], [5, 5, 2], unlabelled])
    b = np.array([[6, 6, 2], [8, 8, 1], [20, 20, 2], [9, 9, 2], unlabelled])
    c = np.array([[101, 101, 2], [102, 102, 2], unlabelled, unlabelled, unlabelled])
    d = np.array([unlabelled] * 5)  # no labelled joints: left out of the mean
    boxes = [[0, 0, 10, 10], [5, 5, 10, 10], [100, 100, 5, 5], [0, 0, 200, 200]]
    # a: b's (6,6), (8,8), (9,9) in its box -> 3/4; b: a's (5,5) on its edge -> 1/4; c: 0/2.
    assert crowd_index([a, b, c, d], boxes) == pytest.approx((3 / 4 + 1 / 4 + 0) / 3)
    assert crowd_index([a], boxes[:1]) == 0.0
    assert crowd_index([], []) == 0.0


def test_occlusion_histogram_bins_people_per_level():
    def ann(image_id, flags):
        return {"image_id": image_id, "keypoints": [v for f in flags for v in (1, 1, f)]}

    dataset = {
        "images": [{"id": 1, "occlusion_level": "low"}, {"id": 2, "occlusion_level": "high"}],
        "annotations": [
            ann(1, [2, 2, 2, 2]),  # 0
            ann(1, [1, 2, 2, 2, 2, 2]),  # 1/6 -> (0, .2]
            ann(2, [1, 1, 2, 0]),  # 2/3 -> > .4
            ann(2, [0, 0, 0, 0]),  # nothing labelled: not counted
        ],
    }
    table = occlusion_histogram(dataset)
    assert table["low"]["people"] == 2 and table["high"]["people"] == 1
    assert table["low"]["0"] == 0.5 and table["low"]["(0,.2]"] == 0.5
    assert table["high"][">.4"] == 1.0
    assert table["low"]["mean"] == pytest.approx(1 / 12)


def test_select_keypoints_reorders_and_rejects_unknown_names():
    kpts = np.arange(len(POINT_NAMES) * 3, dtype=float).reshape(-1, 3)
    crowd = select_keypoints(kpts, CROWDPOSE_KEYPOINTS)
    assert crowd.shape == (14, 3)
    assert crowd[12].tolist() == kpts[POINT_NAMES.index("head")].tolist()
    custom = KeypointSet("toes", ("left_toe", "nose"), (), (0.05, 0.05))
    with pytest.raises(ValueError, match="left_toe"):
        select_keypoints(kpts, custom)


def test_generate_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="format"):
        generate_dataset(tmp_path, 1, format="mpii", progress=False)
    with pytest.raises(ValueError, match="num_images"):
        generate_dataset(tmp_path, 0, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match="file"):
        generate_dataset(blocker, 1, progress=False)


# --- command line --------------------------------------------------------------------------


def test_synth_command_writes_dataset_and_prints_histogram(tmp_path):
    out = tmp_path / "synth"
    result = CliRunner().invoke(
        app,
        ["synth", "--out", str(out), "--num-images", "4", "--seed", "5", "--size", "96",
         "--format", "crowdpose", "--occlusion", "medium"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "medium" in result.output and "median" in result.output
    dataset = json.loads((out / "annotations.json").read_text())
    assert len(dataset["images"]) == 4
    assert dataset["categories"][0]["keypoints"] == list(CROWDPOSE_KEYPOINTS.keypoint_names)
    assert len(list((out / "images").glob("*.png"))) == 4


def test_synth_command_reports_bad_output_path(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    result = CliRunner().invoke(app, ["synth", "--out", str(blocker), "-n", "1"])
    assert result.exit_code == 1
    assert "taken" in result.output
    result = CliRunner().invoke(
        app, ["synth", "--out", str(tmp_path), "-n", "1", "--occlusion", "x"]
    )
    assert result.exit_code != 0


def test_project_reader_loads_the_dataset_without_complaints(tmp_path):
    from occlupose.data.datasets import load_coco_keypoints

    path = generate_dataset(tmp_path, 3, seed=2, size=96, format="crowdpose", progress=False)
    dataset = load_coco_keypoints(path, tmp_path / "images", strict=True)
    assert dataset.keypoint_set == CROWDPOSE_KEYPOINTS
    assert dataset.report.num_images == 3
    assert dataset.report.keypoints_outside_image == 0
