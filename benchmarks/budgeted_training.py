"""Wall-clock-budgeted training runs: scaffolding of the CPU benchmark scripts.

A budget in minutes has no epoch schedule, so :class:`TimeDecay` lowers the learning
rate after a fraction of the budget instead. :func:`train_with_budget` trains a recipe
for a fixed time through the same code as ``occlupose train`` and saves the final
weights in the self-describing format of :func:`occlupose.inference.save_pretrained`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from occlupose.decode import PosePrior
from occlupose.engine.build import prepare_training
from occlupose.engine.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from occlupose.inference import save_pretrained
from occlupose.structures import KeypointSet

__all__ = [
    "BudgetRun",
    "Throughput",
    "TimeDecay",
    "add_fast_argument",
    "budget_run_overrides",
    "cpu_speed_overrides",
    "max_time",
    "mean_spread",
    "split_overrides",
    "train_with_budget",
]


def split_overrides(data_dir: str | Path) -> list[str]:
    """Config overrides that train on ``data_dir/train`` and validate on ``data_dir/val``,
    two folders written by ``occlupose synth`` (``annotations.json`` + ``images/``)."""
    data_dir = Path(data_dir)
    return [
        f"data.{split}_{kind}={data_dir / split / name}"
        for split in ("train", "val")
        for kind, name in (("annotations", "annotations.json"), ("images", "images"))
    ]


def mean_spread(values: list[float | None], digits: int = 3) -> str:
    """``mean ± half-range`` of the runs' values (None left out; ``-`` if none): how the
    budgeted comparisons report their seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    spread = (max(values) - min(values)) / 2 if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {spread:.{digits}f}"


def budget_run_overrides(
    data_dir: str | Path, size: int, seed: int, *, fast: bool = True
) -> list[str]:
    """The overrides the budgeted comparisons share: the synthetic split of ``data_dir``,
    the input size, the seed, in-process loading, the adversarial term after 100 steps
    (a wall-clock budget has no epochs to warm up by), no logs, and
    :func:`cpu_speed_overrides` with ``fast``."""
    return [
        *split_overrides(data_dir),
        f"data.input_size={size}",
        # In-process loading: worker processes forked after an earlier run in the same
        # process (its OpenMP threads) can die; on 2 cores they do not pay off anyway.
        "data.num_workers=0",
        f"seed={seed}",
        "adversarial.warmup_epochs=0",
        "adversarial.warmup_steps=100",
        "trainer.logger=none",
        *(cpu_speed_overrides() if fast else []),
    ]


def cpu_speed_overrides() -> list[str]:
    """Recipe overrides that make CPU training fast on this machine.

    Channels-last convolutions are faster with oneDNN on any x86 CPU; bfloat16 mixed
    precision is faster only where the CPU has bfloat16 instructions (AVX512-BF16 or
    AMX), and is emulated (slower) elsewhere, so it is chosen only there. On a 2-core
    AVX512-BF16 machine the two together train ``hrgr_small`` 1.8x faster.
    """
    overrides = ["trainer.channels_last=true"]
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        overrides.append("trainer.precision=bf16-mixed")
    return overrides


def add_fast_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-fast`` for benchmark scripts: ``args.fast`` says whether to apply
    :func:`cpu_speed_overrides` (the default)."""
    parser.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="train in float32, contiguous layout (default: channels-last, and bfloat16 "
        "where the CPU has bfloat16 instructions)",
    )


def max_time(minutes: float) -> str:
    """Lightning's ``max_time`` string ``DD:HH:MM:SS`` for a budget in minutes."""
    seconds = max(1, round(minutes * 60))
    return f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Throughput(L.Callback):
    """Counts training images and seconds."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self._start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += int(batch["image"].shape[0])

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self._start


class TimeDecay(L.Callback):
    """Multiplies every learning rate by ``gamma`` once ``fraction`` of ``seconds`` passed."""

    def __init__(self, seconds: float, fraction: float, gamma: float = 0.1) -> None:
        self.at, self.gamma, self.done = seconds * fraction, gamma, fraction >= 1
        self._start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.done and time.perf_counter() - self._start >= self.at:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] *= self.gamma
            self.done = True


@dataclass
class BudgetRun:
    """The outcome of :func:`train_with_budget`."""

    model: torch.nn.Module
    keypoint_set: KeypointSet
    config: TrainConfig
    weights: Path
    steps: int
    epochs: int
    images_seen: int
    seconds: float
    pose_prior: PosePrior | None = None

    @property
    def images_per_second(self) -> float:
        return self.images_seen / max(self.seconds, 1e-9)


def train_with_budget(
    config: TrainConfig,
    out_dir: str | Path,
    minutes: float,
    *,
    decay_at: float = 0.8,
    progress: bool = False,
    accelerator: str = "cpu",
) -> BudgetRun:
    """Train ``config`` for ``minutes`` of wall-clock time on the CPU (or the
    ``accelerator`` Lightning is given, e.g. ``"gpu"``).

    The learning rate is constant, then drops tenfold after ``decay_at`` of the budget;
    there is no validation during the run and no step checkpoints. The final weights are
    written to ``out_dir/final.pt``, with the run's pose prior when the recipe has one
    (``validation.pose_prior``).
    """
    out_dir = Path(out_dir)
    overrides = [
        "optimizer.milestones=[100000]",  # no epoch schedule: TimeDecay instead
        f"trainer.accelerator={accelerator}",
        "trainer.max_epochs=100000",
        f"trainer.max_time={max_time(minutes)}",
        "trainer.check_val_every_n_epoch=0",
        "trainer.checkpoint_every_n_steps=0",
        f"trainer.progress_bar={str(progress).lower()}",
    ]
    config = config_from_dict(apply_overrides(config_to_dict(config), overrides))
    throughput = Throughput()
    run = prepare_training(
        config, out_dir, extra_callbacks=[throughput, TimeDecay(minutes * 60, decay_at)]
    )
    run.trainer.fit(run.module, datamodule=run.datamodule)
    weights = save_pretrained(
        run.module.model,
        out_dir / "final.pt",
        preset=config.model.preset,
        keypoint_set=run.keypoint_set,
        model_kwargs=dict(config.model.overrides),
        input_size=config.data.input_size,
        pose_prior=run.module.pose_prior,
        heatmap_centres=config.data.heatmap_centres,
    )
    return BudgetRun(
        model=run.module.model,
        keypoint_set=run.keypoint_set,
        config=config,
        weights=weights,
        steps=run.module.pose_steps,
        epochs=run.trainer.current_epoch,
        images_seen=throughput.images,
        seconds=throughput.seconds,
        pose_prior=run.module.pose_prior,
    )
