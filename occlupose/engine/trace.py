"""A per-process record of what training did, to check multi-process runs.

With ``OCCLUPOSE_TRAIN_TRACE=FOLDER`` in the environment, every training process
appends JSON lines to ``FOLDER/rank<R>.jsonl``: the dataset indices of each batch it
trained on (after the pose network's optimiser step ``step``), and each checkpoint file
it wrote. ``tests/engine/test_multi_process.py`` reads them to check that the ranks of a
DDP run train on disjoint samples, that only rank 0 writes checkpoints, and that a
resumed run continues at the step of its checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L

__all__ = ["TRACE_ENV", "TrainingTrace"]

#: The environment variable that names the trace folder.
TRACE_ENV = "OCCLUPOSE_TRAIN_TRACE"


class TrainingTrace(L.Callback):
    """Appends this process's batches and checkpoint writes to ``folder/rank<R>.jsonl``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.rank = 0

    @classmethod
    def from_environment(cls) -> TrainingTrace | None:
        """The trace ``OCCLUPOSE_TRAIN_TRACE`` asks for, or None."""
        folder = os.environ.get(TRACE_ENV)
        return cls(folder) if folder else None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.rank = trainer.global_rank  # known once the processes are launched

    def record(self, event: str, **details: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"event": event, "rank": self.rank, **details})
        with open(self.folder / f"rank{self.rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        loader = trainer.train_dataloader
        self.record(
            "batch",
            epoch=trainer.current_epoch,
            step=int(getattr(pl_module, "pose_steps", trainer.global_step)),
            indices=loader.last_batch_indices() if hasattr(loader, "last_batch_indices") else None,
        )
