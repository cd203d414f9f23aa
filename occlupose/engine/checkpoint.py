"""Checkpoints that survive ``kill -9``: atomic writes, ``last`` every N steps, ``best``.

:class:`AtomicCheckpointIO` makes every checkpoint Lightning writes (ours, and SLURM's
``hpc_ckpt_*.ckpt``) appear in one rename: a killed run leaves the previous complete
file, never a truncated one. :class:`RunCheckpoints` writes ``last.ckpt`` every N
optimiser steps of the pose network and at every epoch end, and ``best.ckpt``
whenever the monitored validation metric improves.

A process killed while writing leaves its temporary file (``.last.ckpt.<random>.tmp``);
:func:`remove_stale_temporaries` deletes those when a run starts or resumes.
:func:`read_resume_checkpoint` checks a checkpoint to resume from before the run is
built, and :meth:`ResumeCheckpoint.check_fits` that it fits the run's module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from occlupose.engine.trace import TrainingTrace
from occlupose.models.checkpoint import CheckpointError, load_checkpoint_file
from occlupose.utils.io import atomic_torch_save

__all__ = [
    "AtomicCheckpointIO",
    "ResumeCheckpoint",
    "RunCheckpoints",
    "find_resume_checkpoint",
    "read_resume_checkpoint",
    "remove_stale_temporaries",
]

LAST = "last.ckpt"
BEST = "best.ckpt"
CHECKPOINT_DIR = "checkpoints"
# The temporaries occlupose.utils.io.atomic_write makes: ".<name>.<random>.tmp".
_STALE_IN_CHECKPOINT_DIR = (f".{LAST}.*.tmp", f".{BEST}.*.tmp")
_STALE_IN_RUN_DIR = (".hpc_ckpt_*.ckpt.*.tmp",)  # Lightning's SLURM checkpoints
_MAX_LISTED = 3


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` writing to a temporary file and renaming it into place.

    Lightning's own writer streams into the final path, so a process killed while
    writing leaves a truncated checkpoint that cannot be resumed from.

    Args:
        trace: records each file written (see :mod:`occlupose.engine.trace`).
    """

    def __init__(self, trace: TrainingTrace | None = None) -> None:
        super().__init__()
        self.trace = trace

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                "AtomicCheckpointIO does not take storage_options (got "
                f"{storage_options!r}); it writes local files"
            )
        atomic_torch_save(path, checkpoint)
        if self.trace is not None:
            self.trace.record("checkpoint", path=str(path))


class RunCheckpoints(L.Callback):
    """Writes ``dirpath/last.ckpt`` and ``dirpath/best.ckpt``.

    Args:
        dirpath: checkpoint folder.
        every_n_steps: also write ``last.ckpt`` after every this many optimiser steps of
            the pose network (0: only at epoch ends). Steps are counted by the module's
            ``pose_steps`` (Lightning's ``global_step`` also counts discriminator steps).
        monitor: validation metric of ``best.ckpt``; None for no best checkpoint.
        mode: ``"max"`` or ``"min"``.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike,
        *,
        every_n_steps: int = 0,
        monitor: str | None = "val/AP",
        mode: str = "max",
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {mode!r}")
        self.dirpath = Path(dirpath)
        self.every_n_steps = int(every_n_steps)
        self.monitor = monitor
        self.mode = mode
        self.best_score = -math.inf if mode == "max" else math.inf
        self.best_step = -1
        self._saved_at_step = -1

    @property
    def state_key(self) -> str:
        return f"RunCheckpoints[{self.monitor}]"

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_step = int(state_dict["best_step"])

    @staticmethod
    def _steps(pl_module: L.LightningModule) -> int:
        return int(getattr(pl_module, "pose_steps", pl_module.global_step))

    def _save(self, trainer: L.Trainer, name: str) -> None:
        # Every rank calls save_checkpoint (it may be collective); only rank 0 writes.
        trainer.save_checkpoint(self.dirpath / name, weights_only=False)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        steps = self._steps(pl_module)
        if self.every_n_steps <= 0 or steps == self._saved_at_step or steps == 0:
            return
        # Only right after an optimiser step: a checkpoint between accumulated batches
        # would lose the gradients accumulated so far.
        if steps % self.every_n_steps == 0:
            self._save(trainer, LAST)
            self._saved_at_step = steps

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, LAST)
        self._saved_at_step = self._steps(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.monitor is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        improved = score > self.best_score if self.mode == "max" else score < self.best_score
        if improved:
            self.best_score = score
            self.best_step = self._steps(pl_module)
            self._save(trainer, BEST)


def find_resume_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint to resume a run in ``out_dir`` from, or None.

    Candidates: ``out_dir/checkpoints/last.ckpt`` and the ``hpc_ckpt_*.ckpt`` files
    Lightning writes in ``out_dir`` when SLURM pre-empts a job.
    """
    out_dir = Path(out_dir)
    candidates = [out_dir / CHECKPOINT_DIR / LAST, *out_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        return None
    return max(existing, key=lambda p: p.stat().st_mtime_ns)


def remove_stale_temporaries(out_dir: str | os.PathLike) -> list[Path]:
    """Delete the checkpoint temporaries that killed processes of the run left behind.

    Only files of the exact names :class:`AtomicCheckpointIO` writes through are
    removed: ``checkpoints/.last.ckpt.*.tmp``, ``checkpoints/.best.ckpt.*.tmp`` and
    ``.hpc_ckpt_*.ckpt.*.tmp`` in the run folder. Call it when no process of the run
    is writing (at the start of a run, on rank 0).

    Returns:
        The files removed.
    """
    out_dir = Path(out_dir)
    stale = [
        path
        for folder, patterns in (
            (out_dir / CHECKPOINT_DIR, _STALE_IN_CHECKPOINT_DIR),
            (out_dir, _STALE_IN_RUN_DIR),
        )
        for pattern in patterns
        for path in sorted(folder.glob(pattern))
        if path.is_file() and not path.is_symlink()
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@dataclass
class ResumeCheckpoint:
    """A checkpoint of ``occlupose train`` to resume from, read and checked.

    Attributes:
        path: the file.
        preset: the model preset it was trained with (None when it does not say).
        shapes: the shape of every tensor of the training module's state.
    """

    path: Path
    preset: str | None
    shapes: dict[str, tuple[int, ...]]

    def check_fits(self, module: nn.Module, preset: str) -> None:
        """Check that the run's training module can load this checkpoint exactly.

        Raises:
            CheckpointError: another preset, or tensors that are missing, extra or of
                another shape (e.g. a model or loss option changed since).
        """
        if self.preset is not None and self.preset != preset:
            raise CheckpointError(
                f"{self.path}: a checkpoint of preset {self.preset}, but the recipe trains "
                f"{preset} (model.preset); resume with the recipe of the run that wrote it"
            )
        expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
        problems = [
            *(f"{key} missing" for key in expected if key not in self.shapes),
            *(f"{key} not in the model" for key in self.shapes if key not in expected),
            *(
                f"{key} {self.shapes[key]} vs {expected[key]}"
                for key in expected
                if key in self.shapes and self.shapes[key] != expected[key]
            ),
        ]
        if problems:
            more = f" and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
            raise CheckpointError(
                f"{self.path} does not fit the recipe's model: {', '.join(problems[:_MAX_LISTED])}"
                f"{more}; resume with the recipe (model.overrides, loss, adversarial) of the "
                "run that wrote it"
            )


def read_resume_checkpoint(path: str | os.PathLike) -> ResumeCheckpoint:
    """Read a checkpoint to resume a run from, without running pickled code.

    Raises:
        CheckpointError: the file is missing, not a PyTorch checkpoint, truncated or
            corrupt, needs to run pickled code (see
            :func:`occlupose.models.checkpoint.load_checkpoint_file`), or holds weights
            only (no optimiser and loop state to resume).
    """
    path = Path(path)
    contents = load_checkpoint_file(path, mmap=True)
    needed = ("state_dict", "optimizer_states", "loops")
    if not isinstance(contents, Mapping) or not all(key in contents for key in needed):
        raise CheckpointError(
            f"{path}: not a checkpoint of occlupose train (it has no optimiser and loop state "
            f"to resume); to start a new run from its weights, use model.init_weights={path}"
        )
    metadata = contents.get("occlupose")
    preset = metadata.get("preset") if isinstance(metadata, Mapping) else None
    shapes = {
        key: tuple(value.shape)
        for key, value in contents["state_dict"].items()
        if isinstance(value, Tensor)
    }
    return ResumeCheckpoint(path, preset, shapes)
