"""Checkpoints that survive ``kill -9``: atomic writes, ``last`` every N steps, ``best``.

:class:`AtomicCheckpointIO` makes every checkpoint Lightning writes (ours, and SLURM's
``hpc_ckpt_*.ckpt``) appear in one rename: a killed run leaves the previous complete
file, never a truncated one. :class:`RunCheckpoints` writes ``last.ckpt`` every N
optimiser steps of the pose network and at every epoch end, and ``best.ckpt``
whenever the monitored validation metric improves.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO

from occlupose.utils.io import atomic_torch_save

__all__ = ["AtomicCheckpointIO", "RunCheckpoints", "find_resume_checkpoint"]

LAST = "last.ckpt"
BEST = "best.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` writing to a temporary file and renaming it into place.

    Lightning's own writer streams into the final path, so a process killed while
    writing leaves a truncated checkpoint that cannot be resumed from.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                "AtomicCheckpointIO does not take storage_options (got "
                f"{storage_options!r}); it writes local files"
            )
        atomic_torch_save(path, checkpoint)


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
    candidates = [out_dir / "checkpoints" / LAST, *out_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        return None
    return max(existing, key=lambda p: p.stat().st_mtime_ns)
