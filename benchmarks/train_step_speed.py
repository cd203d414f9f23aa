"""Training-step time and peak memory of a recipe's model, per numeric setting.

Usage::

    python benchmarks/train_step_speed.py                          # hrgr_small vs its baseline, CPU
    python benchmarks/train_step_speed.py --device cuda --batch-size 12 \\
        --recipes configs/hrgr_w32_512_coco.yaml configs/higherhrnet_w32_512_coco.yaml

One step is what the training module does per batch: the network's forward pass, every
loss term of the recipe (heatmaps at each resolution, completion, tags, limb fields),
the adversarial term with a discriminator step when the recipe has one, backward passes
and Adam steps. The batch is random (of the recipe's input size and target shapes), so
no data loading is timed. Settings compared in the same run: float32; channels-last;
and mixed precision with channels-last (bfloat16 on CPU, float16 on CUDA). The first
row of each recipe is its baseline. Peak memory is CUDA's allocator peak (on CPU: "-").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from occlupose.engine.config import load_config
from occlupose.engine.losses import discriminator_loss, generator_adversarial_loss
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


def random_batch(model, keypoint_set, batch: int, size: int, device: str) -> dict:
    """Inputs and targets of the shapes the data pipeline produces."""
    num_joints = keypoint_set.num_keypoints
    maps = [
        torch.rand(batch, num_joints, size // s, size // s, device=device) * 0.1
        for s in model.output_strides
    ]
    quarter = size // model.output_strides[0]
    people = 10
    joints = torch.stack(
        [
            torch.randint(0, quarter * quarter, (batch, people, num_joints), device=device),
            torch.ones(batch, people, num_joints, dtype=torch.int64, device=device),
        ],
        dim=-1,
    )
    out = {
        "image": torch.randn(batch, 3, size, size, device=device),
        "heatmaps": maps,
        "complete_heatmaps": [m * 1.1 for m in maps],
        "masks": [torch.ones(batch, m.shape[-2], m.shape[-1], device=device) for m in maps],
        "joint_weights": torch.ones(batch, num_joints, device=device),
        "joints": joints,
    }
    if model.limb_head is not None:
        out["limb_fields"] = torch.rand(
            batch, 2 * keypoint_set.num_limbs, quarter, quarter, device=device
        )
    return out


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
    channels_last = setting != "float32"
    module = PoseTrainingModule(
        model,
        keypoint_set=keypoint_set,
        losses=config.loss,
        discriminator=discriminator,
        adversarial=config.adversarial,
        channels_last=channels_last,
    ).to(args.device)
    size = args.size or config.data.input_size
    batch = random_batch(model, keypoint_set, args.batch_size, size, args.device)
    mixed = setting.startswith("mixed")
    dtype = torch.float16 if args.device == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(args.device, enabled=mixed and dtype == torch.float16)
    opt_pose = torch.optim.Adam(model.parameters(), lr=1e-4)
    opt_disc = torch.optim.Adam(discriminator.parameters(), lr=1e-4) if discriminator else None

    def step() -> None:
        autocast = torch.autocast(args.device, dtype=dtype) if mixed else nullcontext()
        with autocast:
            outputs = model(module._images(batch))
            terms = module.pose_losses(outputs, batch)
            if discriminator is not None:
                fake = module._judge(outputs.final_heatmaps[0], outputs.features)
                terms["adversarial"] = config.adversarial.weight * generator_adversarial_loss(fake)
            loss = torch.stack(list(terms.values())).sum()
        scaler.scale(loss).backward()
        scaler.step(opt_pose)
        opt_pose.zero_grad(set_to_none=True)
        if discriminator is not None:
            with autocast:
                real = module._judge(batch["complete_heatmaps"][0], outputs.features.detach())
                fake = module._judge(outputs.final_heatmaps[0].detach(), outputs.features.detach())
                disc = discriminator_loss(real, fake)
            scaler.scale(disc).backward()
            scaler.step(opt_disc)
            opt_disc.zero_grad(set_to_none=True)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None
    return {
        "recipe": recipe.stem,
        "setting": setting,
        "ms": statistics.median(times) * 1000,
        "images_per_second": args.batch_size / statistics.median(times),
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
