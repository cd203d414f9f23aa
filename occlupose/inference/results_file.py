"""The results file of a prediction folder, shared safely by concurrent runs.

``occlupose predict --out DIR`` keeps one COCO keypoint results file, ``DIR/results.json``,
for every input predicted into ``DIR``. Several runs may write into the same folder at
once (e.g. one per GPU, each on its own images): :func:`update_results_file` takes an
exclusive lock on ``DIR/.results.json.lock``, reads the file, replaces the entries of
the inputs this run predicted, and writes it back atomically before releasing the lock,
so no run's results are lost and readers never see a partial file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from filelock import FileLock

from occlupose.utils.io import OutputError, atomic_write_json

__all__ = ["coco_image_id", "update_results_file"]

#: Seconds to wait for another run holding the lock before giving up.
LOCK_TIMEOUT = 600.0


def coco_image_id(file_name: str) -> int | None:
    """The image id in a COCO file name (``000000000785.jpg`` -> 785), else None."""
    stem = Path(file_name).stem
    return int(stem) if re.fullmatch(r"\d{1,12}", stem) else None


def _read_existing(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise OutputError(
            f"{path}: the existing results file cannot be read ({error}); move it away "
            "or choose another --out"
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise OutputError(
            f"{path}: the existing file is not a COCO results list; move it away or choose "
            "another --out"
        )
    return data


def update_results_file(
    path: str | os.PathLike,
    results_per_input: Mapping[str, Sequence[dict]],
    *,
    timeout: float = LOCK_TIMEOUT,
) -> list[dict]:
    """Merge one run's results into ``path`` under a lock; return the merged list.

    Args:
        path: the results file (created if missing).
        results_per_input: input file name -> its COCO result dicts (``file_name`` set,
            ``image_id`` set for video frames and left out for images). Every input
            predicted should be present, also with no people, so that its earlier
            results are replaced.
        timeout: seconds to wait for the lock.

    Image ids: a COCO file name's number (``000000000785.jpg`` -> 785); otherwise the
    id the name already has in the file, or else the smallest id no other image uses.
    Entries of inputs not in ``results_per_input`` are kept as they are.

    Raises:
        OutputError: the lock is not released in time, or the existing file is not a
            results list.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path.with_name(f".{path.name}.lock")), timeout=timeout)
    try:
        lock.acquire()
    except TimeoutError:
        raise OutputError(
            f"{path}: another run held its lock for {timeout:.0f} s; nothing was merged"
        ) from None
    try:
        existing = _read_existing(path)
        known_ids: dict[str, int] = {}
        for entry in existing:
            if "frame" not in entry and isinstance(entry.get("image_id"), int):
                known_ids.setdefault(str(entry.get("file_name")), entry["image_id"])
        kept = [r for r in existing if r.get("file_name") not in results_per_input]
        used = {r["image_id"] for r in kept if "frame" not in r and "image_id" in r}
        used |= {i for name in results_per_input if (i := coco_image_id(name)) is not None}
        free = 0
        merged = list(kept)
        for name, entries in results_per_input.items():
            image_id = coco_image_id(name)
            if image_id is None and known_ids.get(name) not in used:
                image_id = known_ids.get(name)
            if image_id is None:
                while free in used:
                    free += 1
                image_id = free
            used.add(image_id)
            for entry in entries:
                merged.append(entry if "frame" in entry else {**entry, "image_id": image_id})
        atomic_write_json(path, merged)
        return merged
    finally:
        lock.release()
