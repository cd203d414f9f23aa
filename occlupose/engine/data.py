"""Data loading that resumes exactly: per-epoch deterministic order, mid-epoch restarts.

Lightning 2.x restores the loop counters of a checkpoint saved in the middle of an
epoch, but it restarts an ordinary ``DataLoader`` from its first batch (it only warns
that the loader is "not resumable"), so a resumed run would see the images of the
epoch's first batches twice and never see the last ones. The pieces here make the
data order a pure function of ``(seed, epoch, position)`` and let Lightning save and
restore the position:

* :class:`EpochSampler` yields ``(epoch, index)`` pairs in an order fixed by
  ``(seed, epoch)``, sharded over DDP ranks like ``DistributedSampler``, and can
  start part-way through an epoch.
* :class:`EpochIndexedDataset` passes the epoch to ``dataset.set_epoch`` before
  reading ``index``, so augmentations are a function of ``(seed, epoch, index)`` in
  any worker process, persistent workers included.
* :class:`ResumableDataLoader` implements ``state_dict`` / ``load_state_dict``
  (Lightning's ``_Stateful`` protocol): the state is the epoch and the number of
  batches handed to the training loop; on a mid-epoch restart Lightning loads it
  before creating the iterator, and the loader skips the batches already trained on
  (without reading their images).

A sample that cannot be read (an :class:`~occlupose.utils.errors.UserError`, e.g. a
corrupt image) stops training with that error as it is, naming the file, from worker
processes too (see :class:`UserErrorDataLoader`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from occlupose.utils.errors import UserError

__all__ = [
    "EpochIndexedDataset",
    "EpochSampler",
    "ResumableDataLoader",
    "ShardSampler",
    "UserErrorDataLoader",
]


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled (or ordered) indices of one epoch, for one DDP rank, as ``(epoch, index)``.

    The permutation of epoch ``e`` is ``numpy.random.default_rng((seed, e))`` applied to
    ``range(num_samples)``; it is padded by repeating its head to a multiple of
    ``num_replicas`` and rank ``r`` takes positions ``r, r + R, r + 2R, ...`` (the
    ``DistributedSampler`` layout), so every rank has the same number of samples.

    Args:
        num_samples: dataset length.
        seed: seed of the order.
        shuffle: shuffle each epoch (False: ``0, 1, 2, ...`` every epoch).
        num_replicas: number of DDP processes.
        rank: this process.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError("EpochSampler needs at least one sample")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.start = 0  # samples of this rank to skip in the next iteration only

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (Lightning calls this before every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.num_samples // self.num_replicas)  # ceil

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's dataset indices of ``epoch``, in order (the whole epoch)."""
        if self.shuffle:
            order = np.random.default_rng((self.seed, epoch)).permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        total = len(self) * self.num_replicas
        if total > self.num_samples:
            order = np.concatenate([order, order[: total - self.num_samples]])
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self.start = self.start, 0
        epoch = self.epoch
        for index in self.indices(epoch)[start:]:
            yield epoch, int(index)


class ShardSampler(Sampler[int]):
    """Every ``num_replicas``-th index from ``rank``, in order (evaluation, no padding)."""

    def __init__(self, num_samples: int, *, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, num_samples, num_replicas))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


class EpochIndexedDataset(Dataset):
    """``dataset`` indexed by ``(epoch, index)``: calls ``dataset.set_epoch(epoch)`` first.

    Datasets without ``set_epoch`` are read unchanged.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        assert isinstance(self.dataset, Sized)
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return self.dataset[index]


class _FailedSample:
    """A sample that raised a :class:`UserError`, carried to the loading process as a value."""

    def __init__(self, error: UserError) -> None:
        self.error = error


class _UserErrorsAsValues(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        assert isinstance(self.dataset, Sized)
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.dataset[key]
        except UserError as error:
            return _FailedSample(error)


class _CollateUnlessFailed:
    def __init__(self, collate_fn: Any) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples: list[Any]) -> Any:
        failed = next((s for s in samples if isinstance(s, _FailedSample)), None)
        return failed if failed is not None else self.collate_fn(samples)


class UserErrorDataLoader(DataLoader):
    """A ``DataLoader`` that raises its dataset's :class:`UserError` unchanged.

    A plain ``DataLoader`` re-raises an exception from a worker process as a new
    exception built from the worker's traceback text (a ``RuntimeError`` when the
    class takes other arguments than a message), so ``cannot read image X: ...``
    would reach the user as a multi-line traceback. Here the worker returns the error
    as a value, and iterating raises it in the loading process, with its own type and
    one-line message.
    """

    def __init__(self, dataset: Dataset, **kwargs: Any) -> None:
        collate_fn = kwargs.pop("collate_fn", None) or default_collate
        super().__init__(
            _UserErrorsAsValues(dataset), collate_fn=_CollateUnlessFailed(collate_fn), **kwargs
        )

    def __iter__(self) -> Iterator[Any]:
        return self._raise_failures(super().__iter__())

    @staticmethod
    def _raise_failures(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            if isinstance(batch, _FailedSample):
                raise batch.error
            yield batch


class ResumableDataLoader(UserErrorDataLoader):
    """A ``DataLoader`` over an :class:`EpochSampler` that can restart mid-epoch.

    ``state_dict()`` is ``{"epoch", "batches"}``: the sampler's epoch and the number of
    batches of that epoch handed out so far. Lightning's training loop does not fetch
    ahead from loaders with a length, so "handed out" is "trained on" when Lightning
    saves a checkpoint at the end of a batch. ``load_state_dict`` makes the next
    iteration start at that batch; ``len()`` stays the full epoch's length, which is
    what Lightning expects when it restores its batch counter.

    Keyword arguments other than ``sampler`` are those of ``DataLoader``; the dataset is
    wrapped in :class:`EpochIndexedDataset`.
    """

    def __init__(self, dataset: Dataset, *, sampler: EpochSampler, **kwargs: Any) -> None:
        if kwargs.get("batch_sampler") is not None or kwargs.get("shuffle"):
            raise ValueError("ResumableDataLoader takes its order from `sampler` only")
        super().__init__(EpochIndexedDataset(dataset), sampler=sampler, **kwargs)
        self._skip_batches = 0
        self._batches_handed_out = 0

    @property
    def epoch_sampler(self) -> EpochSampler:
        assert isinstance(self.sampler, EpochSampler)
        return self.sampler

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip_batches = self._skip_batches, 0
        assert self.batch_size is not None
        self.epoch_sampler.start = skip * self.batch_size
        self._batches_handed_out = skip
        # A generator, so the counter follows what the consumer has taken, not what the
        # worker processes have prefetched.
        return self._count(super().__iter__())

    def _count(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._batches_handed_out += 1
            yield batch

    def last_batch_indices(self) -> list[int]:
        """The dataset indices of the batch handed out last (this rank's, this epoch)."""
        assert self.batch_size is not None
        end = self._batches_handed_out * self.batch_size
        indices = self.epoch_sampler.indices(self.epoch_sampler.epoch)
        return [int(i) for i in indices[max(0, end - self.batch_size) : end]]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch_sampler.epoch, "batches": self._batches_handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch_sampler.set_epoch(int(state["epoch"]))
        batches = int(state["batches"])
        # A checkpoint written after the epoch's last batch: Lightning moves on to the
        # next epoch and sets its sampler epoch; nothing is left to skip.
        self._skip_batches = batches if batches < len(self) else 0
