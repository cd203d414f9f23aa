"""``occlupose train``: train a pose network from a YAML recipe with Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from occlupose.cli.app import EXIT_STATUS, app

console = Console(stderr=True)

_EXAMPLES = """
\b
Examples:
  occlupose train configs/hrgr_small_synthetic.yaml
  occlupose train configs/hrgr_w32_512_coco.yaml --devices 8 --precision 16-mixed \\
      data.root=/datasets/coco model.init_weights=pretrained/higherhrnet_w32_512.pth
  occlupose train configs/hrgr_w32_512_coco.yaml --out runs/hrgr --resume   # after a crash

Multi-node: launch one process per GPU with torchrun or srun (see docs/training.md).
"""


@app.command(epilog=_EXAMPLES + "\n" + EXIT_STATUS)
def train(
    config: Annotated[Path, typer.Argument(help="Training recipe (YAML), e.g. configs/*.yaml.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Recipe overrides section.key=value, e.g. optimizer.lr=2e-3 data.root=/data.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (checkpoints, logs). Default: runs/NAME."),
    ] = None,
    devices: Annotated[
        int | None, typer.Option("--devices", help="Processes (GPUs) per node; -1: all GPUs.")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option("--num-nodes", min=1, help="Nodes.")] = None,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="32-true, 16-mixed or bf16-mixed."),
    ] = None,
    sync_bn: Annotated[
        bool | None,
        typer.Option("--sync-bn/--no-sync-bn", help="Synchronise BatchNorm across processes."),
    ] = None,
    accumulate: Annotated[
        int | None,
        typer.Option("--accumulate", min=1, help="Batches per optimiser step."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=0, help="Data-loader processes per GPU.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from the newest checkpoint in the run folder (start fresh if none).",
        ),
    ] = False,
    resume_from: Annotated[
        Path | None,
        typer.Option("--resume-from", help="Continue from this checkpoint file."),
    ] = None,
) -> None:
    """Train HRGR-Net or HigherHRNet (Lightning: DDP, mixed precision, resumable)."""
    from occlupose.data.datasets import AnnotationError
    from occlupose.data.image_io import ImageReadError
    from occlupose.engine.build import prepare_training
    from occlupose.engine.checkpoint import find_resume_checkpoint
    from occlupose.engine.config import ConfigError, load_config, save_config
    from occlupose.models import CheckpointError

    flags = {
        "trainer.devices": devices,
        "trainer.num_nodes": num_nodes,
        "trainer.precision": precision,
        "trainer.sync_batchnorm": sync_bn,
        "optimizer.accumulate_grad_batches": accumulate,
        "data.num_workers": workers,
    }
    # Flags are spelled-out overrides; explicit key=value overrides come last and win.
    as_overrides = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in flags.items()]
    as_overrides = [o for o, v in zip(as_overrides, flags.values(), strict=True) if v is not None]
    try:
        recipe = load_config(config, as_overrides + list(overrides or []))
        out_dir = out if out is not None else Path("runs") / recipe.name
        checkpoint = _checkpoint_to_resume(out_dir, resume, resume_from, find_resume_checkpoint)
        run = prepare_training(recipe, out_dir)
    except (ConfigError, FileNotFoundError, AnnotationError, ImageReadError, CheckpointError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None

    if run.trainer.is_global_zero:
        save_config(recipe, out_dir / "config.yaml")
        console.print(
            f"[bold]{recipe.name}[/]: {recipe.model.preset} on {len(run.datamodule.train_dataset)} "
            f"training images -> {out_dir}"
            + (f" (resuming from {checkpoint})" if checkpoint else "")
        )
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=checkpoint)
    if run.trainer.is_global_zero:
        console.print(f"checkpoints: {out_dir / 'checkpoints'}")


def _checkpoint_to_resume(
    out_dir: Path, resume: bool, resume_from: Path | None, find
) -> Path | None:
    if resume_from is not None:
        if not resume_from.is_file():
            raise FileNotFoundError(f"--resume-from: checkpoint {resume_from} does not exist")
        return resume_from
    if not resume:
        return None
    found = find(out_dir)
    if found is None:
        console.print(f"[yellow]--resume:[/] no checkpoint in {out_dir}; starting from scratch")
    return found
