"""``occlupose train``: train a pose network from a YAML recipe with Lightning."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from occlupose.cli.app import EXIT_STATUS, app, print_error
from occlupose.cli.status import status

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
    # Only the recipe reader here: a bad recipe or output folder is reported at once,
    # before the seconds of importing torch and Lightning.
    from occlupose.engine.config import check_init_weights, load_config
    from occlupose.utils.io import ensure_writable_dir

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
    recipe = load_config(config, as_overrides + list(overrides or []))
    check_init_weights(recipe)
    out_dir = out if out is not None else Path("runs") / recipe.name
    ensure_writable_dir(out_dir, "--out")
    created_out_dir = not out_dir.exists()
    if resume_from is not None and not resume_from.is_file():
        _stop(f"--resume-from: checkpoint {resume_from} does not exist")

    with _working("reading the data and building the model"):
        from occlupose.data.datasets import AnnotationError
        from occlupose.engine.build import prepare_training
        from occlupose.engine.checkpoint import (
            find_resume_checkpoint,
            read_resume_checkpoint,
            remove_stale_temporaries,
        )
        from occlupose.engine.config import save_config

        checkpoint = resume_from or (find_resume_checkpoint(out_dir) if resume else None)
        if resume and checkpoint is None:
            console.print(f"[yellow]--resume:[/] no checkpoint in {out_dir}; starting from scratch")
        # Garbage, truncated or weights-only files stop here, before the data is read.
        to_resume = read_resume_checkpoint(checkpoint) if checkpoint is not None else None
        try:
            run = prepare_training(recipe, out_dir)
        except (FileNotFoundError, AnnotationError) as error:
            _stop(str(error))  # a data path or file of the recipe
        if to_resume is not None:
            to_resume.check_fits(run.module, recipe.model.preset)

    try:
        if run.trainer.is_global_zero:
            removed = remove_stale_temporaries(out_dir)
            if removed:
                console.print(
                    f"removed {len(removed)} stale checkpoint temporary file(s) left by a killed "
                    f"run in {out_dir} (e.g. {removed[0].name})"
                )
            save_config(recipe, out_dir / "config.yaml")
            console.print(
                f"[bold]{recipe.name}[/]: {recipe.model.preset} on "
                f"{len(run.datamodule.train_dataset)} training images -> {out_dir}"
                + (f" (resuming from {checkpoint})" if checkpoint else "")
            )
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=checkpoint)
    except BaseException:
        if created_out_dir and run.trainer.is_global_zero and run.module.pose_steps == 0:
            _remove_if_unused(out_dir)
        raise
    if run.trainer.is_global_zero:
        console.print(f"checkpoints: {out_dir / 'checkpoints'}")


def _stop(message: str) -> NoReturn:
    """A bad option or recipe value: one line, exit status 2."""
    print_error(message)
    raise typer.Exit(2)


@contextmanager
def _working(message: str) -> Iterator[None]:
    """:func:`occlupose.cli.status.status`, said by the first process of a multi-process
    launch only (the others would repeat it)."""
    if _launched_as_rank_zero():
        with status(message):
            yield
    else:
        yield


def _launched_as_rank_zero() -> bool:
    # The variables torchrun, SLURM and Lightning's own launcher set in each process.
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return all(os.environ.get(name, "0") == "0" for name in names)


def _remove_if_unused(out_dir: Path) -> None:
    """Remove a run folder this command created for a run that failed before training
    a step (e.g. on a corrupt first image): it holds nothing to resume from or read."""
    from occlupose.engine.checkpoint import find_resume_checkpoint

    if out_dir.is_dir() and find_resume_checkpoint(out_dir) is None:
        shutil.rmtree(out_dir, ignore_errors=True)
