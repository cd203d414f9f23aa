"""File output that never leaves a half-written file behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    "check_output_folder",
    "ensure_writable_dir",
    "exclusive_output",
    "staged_folder",
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


def check_output_folder(
    path: str | os.PathLike, what: str = "output folder", *, overwrite: bool = False
) -> Path:
    """:func:`ensure_writable_dir`, and refuse a folder that holds files unless ``overwrite``.

    For commands that write a whole folder (a data set): its old content is replaced,
    never mixed with the new, so an existing one is only replaced when asked to.

    Raises:
        OutputError: as :func:`ensure_writable_dir`, or ``path`` is not empty.
    """
    path = ensure_writable_dir(path, what)
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise OutputError(
            f"{what}: {path} exists and is not empty (remove it, choose another folder, "
            "or pass --overwrite to replace it)"
        )
    return path


@contextmanager
def staged_folder(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """A new folder beside ``path`` to write into, which becomes ``path`` at the end.

    The block writes into the yielded folder (hidden, ``.NAME.partial-*``); when it
    completes, the folder is renamed to ``path``, replacing an old ``path`` only then
    and only with ``overwrite`` (an empty ``path`` is always replaced). Without it, a
    ``path`` that another run filled in the meantime is kept and :class:`OutputError`
    says so: the rename is atomic, so of two runs at once one wins and the other is told.
    If the block fails or is interrupted, the partial folder and any parent folders made
    for it are removed and ``path`` is left as it was: no half-written data set, and no
    good one lost. (A process killed outright, by SIGKILL or an unhandled SIGTERM, leaves
    the hidden folder behind, never a half-written ``path``.)
    """
    path = Path(path)
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    # mkdtemp makes the folder private (0700); give it the permissions of a normal folder.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    done = False
    try:
        yield staging
        if overwrite and path.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, trash / "old")
            os.replace(staging, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            try:
                os.replace(staging, path)  # fails on a folder that is not empty
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                raise OutputError(
                    f"{path}: another run wrote there while this one was working; its "
                    "files are kept and this run's are discarded"
                ) from None
        done = True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for folder in missing:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break


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


@contextmanager
def exclusive_output(
    path: str | os.PathLike, *, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the lock of output folder ``path`` while a run writes files that belong
    together (a report and the results it scores), so that runs writing there at the
    same time leave one run's complete set, never a mix of two.

    A second run waits for the first (``on_wait`` is called once, to say so). The lock
    file lives in the temporary folder, named after the folder's resolved path, so no
    file is left in the user's folders; it serialises runs on one machine.
    """
    from filelock import FileLock

    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:20]
    lock = FileLock(str(Path(tempfile.gettempdir()) / f"occlupose-output-{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
