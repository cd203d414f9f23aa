"""The official test path, stage by stage, against HigherHRNet's own outputs.

``official_pipeline_reference.npz`` holds what the public HigherHRNet code
(``tools/valid.py``) computes with the tiny reference weights on four COCO photos, at
scale 1 and at scales (2, 1, 0.5): canvas sizes and warp matrices, the top-30 peaks per
joint that enter grouping with their values and tags, the grouped people, and the
people of the results file. The Predictor in official mode must reproduce each stage,
so that a difference shows where it starts. The random weights make every map noise:
210-270 "people" per photo, a hard, fully deterministic case.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occlupose.decode import decode_people, find_candidates, group_by_tags
from occlupose.inference import (
    Predictor,
    PredictorOptions,
    as_rgb_image,
    official_canvases,
    official_warp,
)
from occlupose.models import HigherHRNet
from occlupose.structures import COCO_KEYPOINTS

RUNS = {"s1": (1.0,), "s3": (2.0, 1.0, 0.5)}


@pytest.fixture(scope="module")
def reference(data_dir):
    return np.load(data_dir / "reference" / "official_pipeline_reference.npz")


@pytest.fixture(scope="module")
def photos(data_dir, reference):
    folder = data_dir / "reference" / "official_pipeline_photos"
    return {int(i): folder / f"{int(i):012d}.jpg" for i in reference["image_ids"]}


@pytest.fixture(scope="module")
def tiny_model(data_dir):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the reference outputs' summation order (see models/conftest)
    tiny = torch.load(data_dir / "reference" / "higherhrnet_tiny_reference.pt", weights_only=True)
    model = HigherHRNet(**tiny["config"])
    model.load_state_dict(tiny["state_dict"])
    yield model.eval()
    torch.set_num_threads(threads)


def _predictor(model, scales) -> Predictor:
    # The plain float32 network: the official code's arithmetic, bit for bit.
    options = PredictorOptions(input_size=512, scales=scales, precision="fp32", fuse=False)
    return Predictor(model, COCO_KEYPOINTS, options)


@pytest.fixture(scope="module")
def merged(tiny_model, photos):
    """(image id, run) -> (merged maps, map -> image matrix) of the official Predictor."""
    out = {}
    for run, scales in RUNS.items():
        predictor = _predictor(tiny_model, scales)
        for image_id, path in photos.items():
            out[image_id, run] = predictor.maps(as_rgb_image(path))
    return out


CASES = [(i, run) for i in (785, 40083, 196141, 197388) for run in RUNS]


@pytest.mark.parametrize(("image_id", "run"), CASES)
def test_canvases_and_matrices(reference, image_id, run):
    key = f"test_{image_id}_{run}"
    index = list(reference["image_ids"]).index(image_id)
    width, height = (int(v) for v in reference["image_wh"][index])
    geometry = official_canvases(width, height, 512, RUNS[run])
    assert geometry.base_size == tuple(reference[f"{key}_base_size"])
    order = reference[f"{key}_scale_order"]
    assert list(order) == sorted(RUNS[run], reverse=True)
    for k, scale in enumerate(order):
        assert geometry.sizes[float(scale)] == tuple(reference[f"{key}_input_sizes"][k])
        np.testing.assert_array_equal(geometry.center, reference[f"{key}_centers"][k])
        np.testing.assert_allclose(geometry.scale, reference[f"{key}_scale_wh"][k], rtol=1e-15)
        matrix = official_warp(geometry.center, geometry.scale, geometry.sizes[float(scale)])
        np.testing.assert_allclose(matrix, reference[f"{key}_input_affines"][k], atol=1e-12)
    inverse = official_warp(geometry.center, geometry.scale, geometry.base_size, inverse=True)
    np.testing.assert_allclose(inverse, reference[f"{key}_final_inverse_affine"], atol=1e-12)


@pytest.mark.parametrize(("image_id", "run"), CASES)
def test_candidates_entering_the_grouping(reference, merged, image_id, run):
    key = f"test_{image_id}_{run}"
    maps, _ = merged[image_id, run]
    assert tuple(maps.heatmaps.shape[1:][::-1]) == tuple(reference[f"{key}_heatmap_size"])
    assert maps.stride == 1.0 and maps.tags.shape[-1] == 2  # the tags of scale 1, 2 passes
    heatmaps, tags = maps.heatmaps.numpy(), maps.tags.numpy()
    candidates = find_candidates(heatmaps, threshold=0.1, max_candidates=30, nms_kernel=5)
    values, xy, cand_tags = (reference[f"{key}_cand_{n}"] for n in ("val", "xy", "tag"))
    for j in range(17):
        # The reference lists the 30 NMS peaks; grouping uses those above the threshold.
        above = values[j] > 0.1
        mine = candidates.of_joint(j)
        np.testing.assert_array_equal(
            np.c_[candidates.x[mine], candidates.y[mine]], xy[j][above], err_msg=f"joint {j}"
        )
        np.testing.assert_allclose(candidates.score[mine], values[j][above], rtol=0, atol=1e-5)
        found_tags = tags[j, candidates.y[mine], candidates.x[mine]]
        np.testing.assert_allclose(found_tags, cand_tags[j][above], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("image_id", "run"), CASES)
def test_grouped_people_on_the_merged_maps(reference, merged, image_id, run):
    key = f"test_{image_id}_{run}"
    maps, _ = merged[image_id, run]
    people, scores = group_by_tags(
        maps.heatmaps.numpy(), maps.tags.numpy(), keypoint_set=COCO_KEYPOINTS
    )
    grouped = reference[f"{key}_grouped"]
    assert people.shape == grouped[..., :3].shape  # every person, in creation order
    np.testing.assert_allclose(people[..., :2], grouped[..., :2], rtol=0, atol=1e-3)
    np.testing.assert_allclose(people[..., 2], grouped[..., 2], rtol=0, atol=1e-4)
    np.testing.assert_allclose(scores, reference[f"{key}_scores"], rtol=0, atol=1e-4)


@pytest.mark.parametrize(("image_id", "run"), CASES)
def test_people_of_the_results_file(reference, merged, tiny_model, image_id, run):
    key = f"test_{image_id}_{run}"
    maps, to_image = merged[image_id, run]
    predictor = _predictor(tiny_model, RUNS[run])
    assert predictor.options.decoding == "official"  # a HigherHRNet's default
    people = decode_people(maps, COCO_KEYPOINTS, predictor.settings, to_image=to_image)
    expected = reference[f"{key}_people"]
    assert len(people) == len(expected)
    keypoints = np.stack([p.keypoints for p in people])
    np.testing.assert_allclose(keypoints[..., :2], expected[..., :2], rtol=0, atol=0.01)
    np.testing.assert_allclose(keypoints[..., 2], expected[..., 2], rtol=0, atol=1e-4)
    json = reference[f"{key}_json_keypoints"].reshape(-1, 17, 3)
    np.testing.assert_allclose(keypoints, json, rtol=0, atol=0.01)
    scores = np.array([p.score for p in people])
    np.testing.assert_allclose(scores, reference[f"{key}_scores"], rtol=0, atol=1e-4)


def test_predict_is_the_stages_end_to_end(reference, photos, tiny_model):
    people = _predictor(tiny_model, (1.0,)).predict(photos[40083])
    expected = reference["test_40083_s1_people"]
    assert len(people) == len(expected)
    keypoints = np.stack([p.keypoints for p in people])
    np.testing.assert_allclose(keypoints[..., :3], expected[..., :3], rtol=0, atol=0.01)
