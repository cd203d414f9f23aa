"""Deterministic, shardable, resumable training order."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from occlupose.data.image_io import ImageReadError
from occlupose.engine.data import (
    EpochIndexedDataset,
    EpochSampler,
    ResumableDataLoader,
    UserErrorDataLoader,
)


class _EpochEcho(Dataset):
    """Returns (epoch, index) as seen by the dataset: checks set_epoch reaches it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.epoch = -1

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([self.epoch, index])


def _order(loader) -> list[list[int]]:
    return [batch[:, 1].tolist() for batch in loader]


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    a, b = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    assert sorted(i for _, i in a) == list(range(10))
    assert all(e == 2 for e, _ in a)
    b.set_epoch(3)
    assert [i for _, i in a] != [i for _, i in b]
    assert [i for _, i in EpochSampler(10, seed=4)] != [i for _, i in EpochSampler(10, seed=3)]
    assert [i for _, i in EpochSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]


def test_epoch_sampler_shards_like_distributed_sampler():
    shards = [EpochSampler(10, seed=1, num_replicas=3, rank=r) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    seen = [i for s in shards for _, i in s]
    assert sorted(set(seen)) == list(range(10))  # everything, 2 padded repeats
    assert len(seen) == 12
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(10, num_replicas=2, rank=2)


def test_epoch_indexed_dataset_sets_the_epoch():
    wrapped = EpochIndexedDataset(_EpochEcho(4))
    assert wrapped[(7, 2)].tolist() == [7, 2]
    assert len(wrapped) == 4


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_mid_epoch_with_the_same_batches(num_workers):
    def make():
        return ResumableDataLoader(
            _EpochEcho(11),
            sampler=EpochSampler(11, seed=5),
            batch_size=3,
            drop_last=True,
            num_workers=num_workers,
        )

    full = make()
    full.epoch_sampler.set_epoch(1)
    expected = [b.tolist() for b in full]
    assert len(expected) == len(full) == 3
    assert all(row[0] == 1 for b in expected for row in b)  # the workers saw epoch 1

    interrupted = make()
    interrupted.epoch_sampler.set_epoch(1)
    iterator = iter(interrupted)
    first = next(iterator).tolist()
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches": 1}

    resumed = make()
    resumed.load_state_dict(state)
    rest = [b.tolist() for b in resumed]
    assert [first, *rest] == expected
    assert len(resumed) == 3  # Lightning counts the skipped batches itself
    # Only the next iteration is shortened; then whole epochs again.
    assert [b.tolist() for b in resumed] == expected


def test_loader_order_differs_between_epochs_and_is_reproducible():
    loader = ResumableDataLoader(_EpochEcho(12), sampler=EpochSampler(12, seed=0), batch_size=4)
    epoch0 = _order(loader)
    loader.epoch_sampler.set_epoch(1)
    epoch1 = _order(loader)
    assert epoch0 != epoch1
    assert sorted(np.concatenate(epoch1).tolist()) == list(range(12))
    loader.epoch_sampler.set_epoch(0)
    assert _order(loader) == epoch0


def test_loader_rejects_other_orders():
    with pytest.raises(ValueError, match="sampler"):
        ResumableDataLoader(_EpochEcho(4), sampler=EpochSampler(4), shuffle=True)


class _OneUnreadable(Dataset):
    """Four samples; the third is an image file that cannot be read."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 2:
            raise ImageReadError(f"images/{index}.png", "file is empty (0 bytes)")
        return torch.tensor(index)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_sample_error_reaches_the_training_loop_unchanged(workers):
    loader = UserErrorDataLoader(_OneUnreadable(), batch_size=1, num_workers=workers)
    batches = []
    with pytest.raises(ImageReadError) as caught:
        batches.extend(loader)
    assert str(caught.value) == "cannot read image images/2.png: file is empty (0 bytes)"
    assert [int(b) for b in batches] == [0, 1]  # the samples before it were trained on
    # What a plain DataLoader makes of it in a worker: the worker's traceback as text.
    with pytest.raises(RuntimeError, match="Caught ImageReadError in DataLoader worker"):
        list(DataLoader(_OneUnreadable(), batch_size=1, num_workers=1))
