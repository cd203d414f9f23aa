"""Atomic checkpoint writing and the choice of the checkpoint to resume from."""

import os

import pytest
import torch

from occlupose.engine import checkpoint as checkpoint_module
from occlupose.engine.checkpoint import AtomicCheckpointIO, find_resume_checkpoint


def test_atomic_checkpoint_io_writes_a_loadable_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 3, "w": torch.ones(2)}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["step"] == 3 and torch.equal(loaded["w"], torch.ones(2))
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left


def test_a_write_killed_halfway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)

    def dies_after_half_a_file(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # the process is interrupted mid-write

    monkeypatch.setattr(torch, "save", dies_after_half_a_file)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_atomic_checkpoint_io_refuses_remote_options(tmp_path):
    with pytest.raises(TypeError, match="storage_options"):
        AtomicCheckpointIO().save_checkpoint({}, tmp_path / "x.ckpt", storage_options={"a": 1})


def test_find_resume_checkpoint_takes_the_newest(tmp_path):
    assert find_resume_checkpoint(tmp_path) is None
    last = tmp_path / "checkpoints" / checkpoint_module.LAST
    last.parent.mkdir()
    last.write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path) == last
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"y")
    os.utime(last, ns=(1_000_000_000, 1_000_000_000))
    assert find_resume_checkpoint(tmp_path) == hpc
