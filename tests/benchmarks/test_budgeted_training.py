"""Budgeted runs: the time string and the one-off learning-rate decay."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from occlupose.engine.config import load_config

import budgeted_training
from budgeted_training import TimeDecay, budget_run_overrides, max_time, mean_spread

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "hrgr_small_synthetic.yaml"


def test_max_time_string():
    assert max_time(30) == "00:00:30:00"
    assert max_time(90.5) == "00:01:30:30"
    assert max_time(0) == "00:00:00:01"


def test_time_decay_lowers_every_learning_rate_once(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(budgeted_training.time, "perf_counter", lambda: clock[0])
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizers = [torch.optim.Adam(params, lr=1e-3), torch.optim.Adam(params, lr=1e-4)]
    trainer = SimpleNamespace(optimizers=optimizers)
    decay = TimeDecay(seconds=60, fraction=0.5)
    decay.on_train_start(trainer, None)
    clock[0] = 129.0
    decay.on_train_batch_start(trainer, None, None, 0)
    assert optimizers[0].param_groups[0]["lr"] == 1e-3
    clock[0] = 131.0
    for _ in range(3):
        decay.on_train_batch_start(trainer, None, None, 0)
    assert abs(optimizers[0].param_groups[0]["lr"] - 1e-4) < 1e-12
    assert abs(optimizers[1].param_groups[0]["lr"] - 1e-5) < 1e-12


def test_a_run_with_a_pose_prior_saves_it_with_the_weights(tiny_config, synthetic_data, tmp_path):
    import json

    import numpy as np
    import pytest

    from occlupose.decode import PosePrior
    from occlupose.engine.build import (
        ConfigError,
        build_pose_prior,
        load_split,
        prepare_training,
    )
    from occlupose.evaluation import labelled_poses
    from occlupose.inference import Predictor

    from budgeted_training import train_with_budget

    config = tiny_config(synthetic_data, "validation.pose_prior=true", "trainer.max_epochs=1")
    run = train_with_budget(config, tmp_path / "run", minutes=0.02)
    gt = json.loads((synthetic_data / "train" / "annotations.json").read_text())
    expected = labelled_poses(gt)  # the fully labelled training people
    predictor = Predictor.from_pretrained(run.weights)
    assert predictor.pose_prior is not None
    assert predictor.pose_prior.poses.shape == expected.shape
    # Stored normalised: centred, unit spread; the fit does not depend on either.
    np.testing.assert_allclose(predictor.pose_prior.poses.mean(axis=1), 0, atol=1e-5)
    assert Predictor.from_pretrained(run.weights, use_pose_prior=False).pose_prior is None
    # Lightning checkpoints of the run carry it too.
    module = prepare_training(config, tmp_path / "again").module
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    stored = PosePrior.from_metadata(checkpoint["occlupose"])
    np.testing.assert_allclose(stored.poses, predictor.pose_prior.poses, atol=1e-6)

    # Without fully labelled people there is nothing to build a prior from.
    records = load_split(config.data, "train", for_training=True)
    for record in records.records:
        record.keypoints[:, 0, 2] = 0
    with pytest.raises(ConfigError, match="has all 17 keypoints labelled"):
        build_pose_prior(records)


def test_budget_run_overrides_point_the_recipe_at_the_split(tmp_path):
    config = load_config(RECIPE, budget_run_overrides(tmp_path, 128, 3, fast=False))
    assert config.data.train_annotations == str(tmp_path / "train" / "annotations.json")
    assert config.data.val_images == str(tmp_path / "val" / "images")
    assert (config.data.input_size, config.seed, config.data.num_workers) == (128, 3, 0)
    assert (config.adversarial.warmup_epochs, config.adversarial.warmup_steps) == (0, 100)
    assert config.trainer.logger == "none"
    assert config.trainer.precision == "32-true"  # fast=False: the recipe's own


def test_mean_spread_of_the_seeds():
    assert mean_spread([0.062, 0.076, 0.091, 0.075]) == "0.076 ± 0.014"
    assert mean_spread([0.5, None]) == "0.500 ± 0.000"  # runs without a value left out
    assert mean_spread([None]) == "-"
    assert mean_spread([507.0, 409.0], digits=0) == "458 ± 49"
