"""The learned pose completer: bundled weights, the pixel-space contract, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from occlupose.decode import BUNDLED_COMPLETERS, PoseCompleter, PosePrior, load_completer
from occlupose.decode.prior import fit_reference_pose
from occlupose.evaluation import completion_people, evaluate_completer
from occlupose.models import PoseCompletionGenerator
from occlupose.structures import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet

DATA = Path(__file__).resolve().parent.parent / "data"
WEIGHTS = Path(__file__).resolve().parents[2] / "occlupose" / "weights"


@pytest.fixture(scope="module")
def crowdpose_people():
    with gzip.open(DATA / "crowdpose_val" / "crowdpose_val.json.gz") as f:
        gt = json.load(f)
    fit = completion_people(gt, split="fit", area_from_box=True)
    test = completion_people(gt, split="test", area_from_box=True)
    return fit, test


@pytest.mark.parametrize("name", ["coco", "crowdpose"])
def test_bundled_completers_are_small_plain_state_dicts(name):
    path = WEIGHTS / BUNDLED_COMPLETERS[name]
    assert path.stat().st_size < 1_200_000  # float16 weights: 1.14 and 1.15 MB
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["keypoint_set"] == name
    completer = load_completer(name)
    assert completer.keypoint_set.name == name
    assert load_completer(completer.keypoint_set).num_joints == completer.num_joints


@pytest.mark.parametrize("name", ["coco", "crowdpose"])
def test_known_joints_come_back_unchanged_and_hidden_ones_are_placed(name, crowdpose_people):
    completer = load_completer(name)
    _, test = crowdpose_people
    poses = test.poses[test.labelled.all(axis=1)][:20].astype(np.float32)
    if name == "coco":  # CrowdPose's 12 body joints into COCO order; heads hidden
        body = [COCO_KEYPOINTS.index(n) for n in CROWDPOSE_KEYPOINTS.keypoint_names[:12]]
        coco = np.full((len(poses), 17, 2), 7.0, np.float32)
        coco[:, body] = poses[:, :12]
        poses = coco
    known = np.ones(poses.shape[:2], dtype=bool)
    known[:, [COCO_KEYPOINTS.index("left_wrist") if name == "coco" else 4]] = False
    if name == "coco":
        known[:, :5] = False
    filled = completer.complete(poses, known)
    assert filled.shape == poses.shape and filled.dtype == np.float32
    np.testing.assert_array_equal(filled[known], poses[known])
    assert np.isfinite(filled).all()
    # Hidden joints land on the person: inside the known joints' box grown by half its size.
    for person, mask, out in zip(poses, known, filled, strict=True):
        lo, hi = person[mask].min(axis=0), person[mask].max(axis=0)
        margin = 0.5 * (hi - lo)
        assert ((out[~mask] >= lo - margin) & (out[~mask] <= hi + margin)).all()


def test_completion_is_equivariant_to_scale_and_translation():
    completer = load_completer("crowdpose")
    rng = np.random.default_rng(0)
    pose = np.stack([rng.uniform(0, 100, 14), rng.uniform(0, 200, 14)], axis=1)[None]
    known = np.ones((1, 14), dtype=bool)
    known[0, [6, 8, 10]] = False
    base = completer.complete(pose, known)
    moved = completer.complete(pose * 3.0 + [50.0, -20.0], known)
    np.testing.assert_allclose(moved, base * 3.0 + [50.0, -20.0], rtol=1e-4, atol=1e-2)


def test_the_bundled_crowdpose_completer_beats_the_nearest_pose_prior(crowdpose_people):
    # The held-out fold (image id % 4 == 0), three patterns: the learned completer places
    # more hidden joints within keypoint similarity 0.5 than the nearest-pose prior on
    # the fitting split's fully labelled people (measured: see the model card).
    fit, test = crowdpose_people
    references = fit.poses[fit.labelled.all(axis=1)]

    def prior(keypoints, known):
        out = keypoints.copy()
        for person, mask in zip(out, known, strict=True):
            person[~mask] = fit_reference_pose(person, mask, references)[0][~mask]
        return out

    patterns = ("lower_body", "one_arm", "random4")
    learned = evaluate_completer(
        load_completer("crowdpose").complete, test, CROWDPOSE_KEYPOINTS, patterns
    )
    nearest = evaluate_completer(prior, test, CROWDPOSE_KEYPOINTS, patterns)
    assert learned["mean"]["within_0.5"] > nearest["mean"]["within_0.5"] + 0.05


def test_bad_input_has_defined_results():
    completer = load_completer("crowdpose")
    pose = np.arange(28, dtype=np.float32).reshape(1, 14, 2) * [1.0, 3.0]
    # Fewer than two known joints: hidden joints NaN, the known one unchanged.
    one = np.zeros((1, 14), dtype=bool)
    one[0, 3] = True
    out = completer.complete(pose, one)
    assert np.isnan(out[0, ~one[0]]).all() and (out[0, 3] == pose[0, 3]).all()
    # All joints known: returned unchanged.
    everything = np.ones((1, 14), dtype=bool)
    np.testing.assert_array_equal(completer.complete(pose, everything), pose)
    # Degenerate known joints (all at one point): no scale, hidden joints NaN.
    same = np.full((1, 14, 2), 5.0, np.float32)
    some = np.zeros((1, 14), dtype=bool)
    some[0, :6] = True
    assert np.isnan(completer.complete(same, some)[0, 6:]).all()
    # A known joint with NaN coordinates counts as hidden and is completed.
    nan_pose = pose.copy()
    nan_pose[0, 2] = np.nan
    filled = completer.complete(nan_pose, everything)
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(np.delete(filled[0], 2, 0), np.delete(pose[0], 2, 0))
    # No people: an empty result.
    assert completer.complete(np.zeros((0, 14, 2)), np.zeros((0, 14), bool)).shape == (0, 14, 2)
    with pytest.raises(ValueError, match=r"\(P, 14, 2\)"):
        completer.complete(np.zeros((1, 17, 2)), np.ones((1, 17), bool))
    with pytest.raises(ValueError, match="known must be bool"):
        completer.complete(pose, np.ones((1, 14)))
    custom = KeypointSet("pair", ("a", "b"), ((0, 1),), (0.1, 0.1))
    with pytest.raises(ValueError, match="no completer is bundled for keypoint set 'pair'"):
        load_completer(custom)
    with pytest.raises(ValueError, match="no completer is bundled"):
        load_completer("mpii")


def test_complete_people_scores_completed_joints_below_found_ones():
    completer = load_completer("crowdpose")
    people = np.zeros((2, 14, 3), np.float32)
    people[0, :, :2] = np.arange(28).reshape(14, 2) * [1.0, 3.0]
    people[0, :10, 2] = np.linspace(0.4, 0.9, 10)
    people[1, 0] = [3.0, 4.0, 0.8]  # one joint found: left as it is
    out = completer.complete_people(people)
    np.testing.assert_allclose(out[0, 10:, 2], 0.2, rtol=1e-6)
    np.testing.assert_array_equal(out[0, :10], people[0, :10])
    np.testing.assert_array_equal(out[1], people[1])
    # The prior has the same decoder-facing method.
    prior = PosePrior(people[:1, :, :2] + 0.0, min_known=3)
    assert prior.complete_people(people).shape == people.shape


def test_a_completer_round_trips_through_a_file(tmp_path):
    generator = PoseCompletionGenerator(14, hidden=16, depth=2, template=torch.randn(14, 2))
    completer = PoseCompleter(generator, "crowdpose", metadata={"note": "test"})
    completer.save(tmp_path / "c.pt")
    again = PoseCompleter.from_file(tmp_path / "c.pt")
    assert again.metadata == {"note": "test"}
    pose = np.random.default_rng(1).normal(size=(3, 14, 2)).astype(np.float32) * 50
    known = np.random.default_rng(2).random((3, 14)) < 0.6
    np.testing.assert_allclose(completer.complete(pose, known), again.complete(pose, known))
    with pytest.raises(ValueError, match="generator has 14 joints"):
        PoseCompleter(generator, "coco")
