"""Budgeted runs: the time string and the one-off learning-rate decay."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from occlupose.engine import experiments
from occlupose.engine.experiments import TimeDecay, max_time


def test_max_time_string():
    assert max_time(30) == "00:00:30:00"
    assert max_time(90.5) == "00:01:30:30"
    assert max_time(0) == "00:00:00:01"


def test_time_decay_lowers_every_learning_rate_once(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(experiments.time, "perf_counter", lambda: clock[0])
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
