"""File output that never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from occlupose.utils.errors import UserError

__all__ = [
    "OutputError",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_output_file",
    "ensure_writable_dir",
]


class OutputError(UserError, OSError):
    """An output folder or file cannot be written; the message names it and why."""


def ensure_writable_dir(
    path: str | os.PathLike, what: str = "output folder", *, create: bool = False
) -> Path:
    """Check that files can be written in folder ``path``, which may not exist yet.

    Meant to run before any long work, so that a run does not compute for minutes and
    then fail to save. A missing folder is checked through its nearest existing
    parent (and made only with ``create``; writers make it when they write, so a run
    that fails early leaves nothing behind). ``what`` names the folder in messages
    (e.g. ``"--out"``).

    Raises:
        OutputError: ``path`` or a parent is a file, or the folder is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what}: {path} is a file, not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what}: cannot create {path}: {existing} is a file, not a folder")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
            existing = path
        fd, probe = tempfile.mkstemp(prefix=".occlupose-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise OutputError(f"{what}: cannot write to {path} ({reason})") from None
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check that ``path`` can be written as a file (its folder created if needed).

    Raises:
        OutputError: ``path`` is a folder, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what}: {path} is a folder, not a file")
    ensure_writable_dir(path.parent, f"{what}: the folder of {path.name}")
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step.

    The temporary file sits in the target directory so the final ``os.replace`` is
    an atomic rename on the same file system: readers see either the old file or
    the complete new one, never a truncated file (e.g. after ``kill -9``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file private (0600); give it the permissions of a normal file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = None) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent)

    return atomic_write(path, write)


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
