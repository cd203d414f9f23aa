"""Atomic writes leave either the old file or the complete new one."""

from __future__ import annotations

import json

import pytest
import torch

from occlupose.utils.io import (
    OutputError,
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    staged_folder,
)


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


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_staged_folder_becomes_the_folder_when_complete(tmp_path):
    out = tmp_path / "data"
    with staged_folder(out) as staging:
        (staging / "a.txt").write_text("new")
        assert not out.exists()  # nothing visible under the final name while writing
    assert (out / "a.txt").read_text() == "new" and _hidden(tmp_path) == []

    with pytest.raises(RuntimeError), staged_folder(tmp_path / "failed") as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert not (tmp_path / "failed").exists() and _hidden(tmp_path) == []


def test_a_folder_another_run_filled_meanwhile_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "data"
    refused = pytest.raises(OutputError, match="another run wrote there")
    with refused, staged_folder(out) as staging:
        (staging / "mine.txt").write_text("mine")
        out.mkdir()  # the other run finishes first
        (out / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    assert _hidden(tmp_path) == []

    with staged_folder(out, overwrite=True) as staging:
        (staging / "mine.txt").write_text("mine")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert _hidden(tmp_path) == []

    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_folder(empty) as staging:  # an empty folder holds nothing to lose
        (staging / "mine.txt").write_text("mine")
    assert sorted(p.name for p in empty.iterdir()) == ["mine.txt"]
