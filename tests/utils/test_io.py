"""Atomic writes leave either the old file or the complete new one."""

from __future__ import annotations

import json

import pytest
import torch

from occlupose.utils.io import atomic_torch_save, atomic_write, atomic_write_json


def test_json_and_torch_round_trip(tmp_path):
    atomic_write_json(tmp_path / "sub" / "r.json", {"AP": 0.5})
    assert json.loads((tmp_path / "sub" / "r.json").read_text()) == {"AP": 0.5}
    atomic_torch_save(tmp_path / "c.pt", {"w": torch.ones(2)})
    assert torch.load(tmp_path / "c.pt")["w"].sum() == 2


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"old": True})

    def crash(tmp):
        tmp.write_text('{"new": tr')  # half-written, then the job dies
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_written_files_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(umask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
