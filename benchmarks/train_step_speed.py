"""Training-step time and peak memory of a recipe's model, per numeric setting.

Usage::

    python benchmarks/train_step_speed.py                          # hrgr_small vs its baseline, CPU
    python benchmarks/train_step_speed.py --device cuda --batch-size 12 \\
        --recipes configs/hrgr_w32_512_coco.yaml configs/higherhrnet_w32_512_coco.yaml

One step is exactly what training runs per batch: the training module's
``training_step`` driven by a Lightning ``Trainer`` with the recipe's losses (heatmaps at
each resolution, completion, tags, limb fields), the adversarial term with its
discriminator step when the recipe has one (warm-up skipped), backward passes and Adam
steps; the timer wraps each batch from the callback hooks around it. The batch is random
(of the recipe's input size and target shapes), so no data loading is timed. Settings
compared in the same run: float32; channels-last; and mixed precision with channels-last
(bfloat16 on CPU, float16 on CUDA, Lightning's ``bf16-mixed`` / ``16-mixed``). The first
row of each recipe is its baseline. Peak memory is CUDA's allocator peak over the timed
steps (on CPU: "-").
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from rich.console import Console
from rich.table import Table

from occlupose.engine.config import load_config
from occlupose.engine.module import PoseTrainingModule
from occlupose.models import create_model
from occlupose.models.completion import PoseDiscriminator
from occlupose.structures import get_keypoint_set

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPES = [
    ROOT / "configs" / "hrgr_small_synthetic.yaml",
    ROOT / "configs" / "higherhrnet_small_synthetic.yaml",
]
SETTINGS = ("float32", "channels-last", "mixed + channels-last")


def random_batch(model, keypoint_set, batch: int, size: int) -> dict:
    """Inputs and targets of the shapes the data pipeline produces."""
    num_joints = keypoint_set.num_keypoints
    maps = [torch.rand(batch, num_joints, size // s, size // s) * 0.1 for s in model.output_strides]
    quarter = size // model.output_strides[0]
    people = 10
    joints = torch.stack(
        [
            torch.randint(0, quarter * quarter, (batch, people, num_joints)),
            torch.ones(batch, people, num_joints, dtype=torch.int64),
        ],
        dim=-1,
    )
    out = {
        "image": torch.randn(batch, 3, size, size),
        "heatmaps": maps,
        "complete_heatmaps": [m * 1.1 for m in maps],
        "masks": [torch.ones(batch, m.shape[-2], m.shape[-1]) for m in maps],
        "joint_weights": torch.ones(batch, num_joints),
        "joints": joints,
    }
    if model.limb_head is not None:
        out["limb_fields"] = torch.rand(batch, 2 * keypoint_set.num_limbs, quarter, quarter)
    return out


class StepTimer(Callback):
    """Wall-clock time of every training batch after the first ``warmup`` ones."""

    def __init__(self, warmup: int, cuda: bool) -> None:
        self.warmup, self.cuda = warmup, cuda
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            if batch_idx == self.warmup:
                torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self._start)


class RepeatedBatch(torch.utils.data.Dataset):
    """The same (already collated) batch, ``length`` times."""

    def __init__(self, batch: dict, length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


def measure(recipe: Path, setting: str, args: argparse.Namespace) -> dict:
    config = load_config(recipe)
    keypoint_set = get_keypoint_set("crowdpose" if config.data.layout == "crowdpose" else "coco")
    model = create_model(config.model.preset, keypoint_set=keypoint_set, **config.model.overrides)
    discriminator = None
    if config.adversarial.weight > 0:
        discriminator = PoseDiscriminator(
            keypoint_set.num_keypoints,
            hidden_channels=config.discriminator.hidden_channels,
            num_levels=config.discriminator.num_levels,
        )
    module = PoseTrainingModule(
        model,
        keypoint_set=keypoint_set,
        losses=config.loss,
        optimizer=config.optimizer,
        discriminator=discriminator,
        # The adversarial term and discriminator step run from the first batch.
        adversarial=replace(config.adversarial, warmup_epochs=0, warmup_steps=0),
        channels_last=setting != "float32",
    )
    size = args.size or config.data.input_size
    batch = random_batch(model, keypoint_set, args.batch_size, size)
    cuda = args.device == "cuda"
    mixed = "16-mixed" if cuda else "bf16-mixed"
    precision = mixed if setting.startswith("mixed") else "32-true"
    timer = StepTimer(args.warmup, cuda)
    trainer = L.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        precision=precision,
        max_epochs=1,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    loader = torch.utils.data.DataLoader(
        RepeatedBatch(batch, args.warmup + args.repeats), batch_size=None
    )
    trainer.fit(module, train_dataloaders=loader)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    median = statistics.median(timer.times)
    return {
        "recipe": recipe.stem,
        "setting": setting,
        "ms": median * 1000,
        "images_per_second": args.batch_size / median,
        "peak_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", type=Path, nargs="+", default=DEFAULT_RECIPES)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="default: the recipe's input")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # one fit per row
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = [measure(r, s, args) for r in args.recipes for s in args.settings]
    device = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    table = Table(title=f"training step, batch {args.batch_size}, {device}")
    for column in ("recipe", "setting", "ms / step", "images / s", "vs float32", "peak GiB"):
        table.add_column(column, justify="left" if column in ("recipe", "setting") else "right")
    for row in rows:
        base = next(r for r in rows if r["recipe"] == row["recipe"])
        table.add_row(
            row["recipe"],
            row["setting"],
            f"{row['ms']:.0f}",
            f"{row['images_per_second']:.1f}",
            f"{base['ms'] / row['ms']:.2f}x",
            "-" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # logs: full tables


if __name__ == "__main__":
    main()
