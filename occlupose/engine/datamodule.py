"""The Lightning data module: resumable training loader, sharded validation loader."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import lightning as L
from torch.utils.data import Dataset

from occlupose.engine.data import (
    EpochSampler,
    ResumableDataLoader,
    ShardSampler,
    UserErrorDataLoader,
)

__all__ = ["PoseDataModule"]


def _worker_init_fn(worker_id: int) -> None:
    # Imported lazily: the training dataset module needs the data package's target encoders.
    from occlupose.data.bottom_up import worker_init_fn

    worker_init_fn(worker_id)


class PoseDataModule(L.LightningDataModule):
    """Batches of :class:`~occlupose.data.bottom_up.BottomUpSample` for training and validation.

    The training order is a function of ``(seed, epoch)`` and resumes mid-epoch (see
    :mod:`occlupose.engine.data`); under DDP each rank reads its own shard (the
    trainer must run with ``use_distributed_sampler=False``). Compact samples (uint8
    images, float16 targets) become float32 once on the training device.

    Args:
        train_dataset: training samples, e.g. a ``BottomUpPoseDataset`` with a seed.
        val_dataset: validation samples (no augmentation), or None for no validation.
        batch_size: images per process and step.
        num_workers: loader processes per training process (0: load in the main process).
        seed: seed of the training order.
        val_batch_size: images per validation batch (default ``batch_size``).
        pin_memory: pin host memory (GPU training).
    """

    def __init__(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        *,
        batch_size: int = 12,
        num_workers: int = 4,
        seed: int = 0,
        val_batch_size: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Imported lazily, as in _worker_init_fn.
        from occlupose.data.bottom_up import prepare_batch

        return prepare_batch(batch, batch["image"].device)

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader_kwargs(self) -> dict:
        return dict(
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            worker_init_fn=_worker_init_fn if self.num_workers > 0 else None,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> ResumableDataLoader:
        assert isinstance(self.train_dataset, Sized)
        rank, world = self._rank_world()
        sampler = EpochSampler(
            len(self.train_dataset), seed=self.seed, shuffle=True, num_replicas=world, rank=rank
        )
        if len(sampler) < self.batch_size:
            raise ValueError(
                f"{len(self.train_dataset)} training images give {len(sampler)} per process, fewer "
                f"than one batch of {self.batch_size}; lower data.batch_size or add images"
            )
        return ResumableDataLoader(
            self.train_dataset,
            sampler=sampler,
            batch_size=self.batch_size,
            drop_last=True,  # a last batch of 1 image would break BatchNorm
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> UserErrorDataLoader | list:
        if self.val_dataset is None:
            return []
        assert isinstance(self.val_dataset, Sized)
        rank, world = self._rank_world()
        return UserErrorDataLoader(
            self.val_dataset,
            sampler=ShardSampler(len(self.val_dataset), num_replicas=world, rank=rank),
            batch_size=self.val_batch_size,
            **self._loader_kwargs(),
        )
