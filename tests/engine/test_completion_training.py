"""Training the pose completer: it learns from real poses, with and without the GAN term."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from occlupose.decode.prior import fit_reference_pose
from occlupose.engine.completion_training import CompletionRecipe, train_pose_completer
from occlupose.evaluation import completion_people, evaluate_completer
from occlupose.structures import CROWDPOSE_KEYPOINTS

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def people():
    with gzip.open(DATA / "crowdpose_val" / "crowdpose_val.json.gz") as f:
        gt = json.load(f)
    fit = completion_people(gt, split="fit", min_labelled=4, area_from_box=True)
    test = completion_people(gt, split="test", area_from_box=True)
    return fit, test


def test_a_short_run_beats_the_aligned_mean_pose(people):
    torch.set_num_threads(1)
    fit, test = people
    completer = train_pose_completer(
        fit.poses, fit.labelled, CROWDPOSE_KEYPOINTS, CompletionRecipe(steps=300), seed=0
    )
    full = fit.poses[fit.labelled.all(axis=1)]
    centred = full - full.mean(axis=1, keepdims=True)
    mean = (centred / np.sqrt((centred**2).sum(axis=(1, 2)) / 14)[:, None, None]).mean(0)

    def aligned_mean(keypoints, known):
        out = keypoints.copy()
        for person, mask in zip(out, known, strict=True):
            person[~mask] = fit_reference_pose(person, mask, mean[None])[0][~mask]
        return out

    patterns = ("lower_body", "random3")
    learned = evaluate_completer(completer.complete, test, CROWDPOSE_KEYPOINTS, patterns)
    baseline = evaluate_completer(aligned_mean, test, CROWDPOSE_KEYPOINTS, patterns)
    assert learned["mean"]["within_0.5"] > baseline["mean"]["within_0.5"] + 0.05


def test_the_adversarial_recipe_trains_and_records_itself(people):
    torch.set_num_threads(1)
    fit, _ = people
    recipe = CompletionRecipe(steps=5, batch_size=32, hidden=32, adversarial=0.1)
    completer = train_pose_completer(fit.poses, fit.labelled, CROWDPOSE_KEYPOINTS, recipe, seed=3)
    assert completer.metadata["recipe"]["adversarial"] == 0.1
    known = fit.labelled[:4].copy()
    known[:, 6:] = False
    out = completer.complete(fit.poses[:4], known)
    assert np.isfinite(out[known.sum(axis=1) >= 2]).all()


def test_training_needs_fully_labelled_people():
    poses = np.zeros((3, 14, 2))
    labelled = np.ones((3, 14), dtype=bool)
    labelled[:, 0] = False
    with pytest.raises(ValueError, match="no fully labelled person"):
        train_pose_completer(poses, labelled, CROWDPOSE_KEYPOINTS)
    with pytest.raises(ValueError, match="must match the keypoint set"):
        train_pose_completer(np.zeros((3, 17, 2)), np.ones((3, 17), bool), CROWDPOSE_KEYPOINTS)
