"""Speed of the synthetic occlusion benchmark generator on one CPU core, and its occlusion rates.

Usage::

    python benchmarks/synth_speed.py [--sizes 256 512] [--images 100] [--rate-images 300]

The process is pinned to one core, OpenCV and torch to one thread. For every image
size and occlusion level it times

* ``render``: :func:`render_image` alone (scene layout, rasterisation, visibility);
* ``end to end``: :func:`generate_dataset` with one worker, i.e. rendering plus PNG
  encoding, atomic file writes, RLE masks and the JSON file,

and compares both with the target of 50 images/s at 256x256 in the same table.
Then it writes ``--rate-images`` images per level at 256 and prints the distribution
of the per-person occlusion rate (``#v=1 / #v>0``, COCO's 17 keypoints), the same
table ``occlupose synth`` prints.
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from occlupose.cli.synth import occlusion_table  # noqa: E402
from occlupose.data.synthetic import OCCLUSION_CHOICES, render_image  # noqa: E402
from occlupose.data.synthetic.annotations import occlusion_histogram  # noqa: E402
from occlupose.data.synthetic.generate import generate_dataset  # noqa: E402

TARGET_IMAGES_PER_S = 50.0
TARGET_SIZE = 256


def _pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _render_rate(size: int, level: str, count: int) -> float:
    render_image(123, 0, size, level)  # warm-up: imports, first allocations
    start = time.perf_counter()
    for i in range(count):
        render_image(0, i, size, level)
    return count / (time.perf_counter() - start)


def _end_to_end_rate(size: int, level: str, count: int, folder: Path) -> float:
    start = time.perf_counter()
    generate_dataset(folder, count, seed=0, size=size, occlusion=level, progress=False)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--images", type=int, default=100, help="images per timing")
    parser.add_argument("--rate-images", type=int, default=300, help="images per level")
    args = parser.parse_args()

    console = Console(width=None if sys.stdout.isatty() else 160)  # logs: full tables
    pinning = _pin_to_one_core()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    console.print(
        f"{pinning}; cv2.getNumThreads()={cv2.getNumThreads()}, "
        f"torch.get_num_threads()={torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; {args.images} images per timing"
    )

    table = Table(title="synthetic benchmark generation speed (one core)")
    for column in ("size", "occlusion", "render img/s", "end-to-end img/s", "target", "meets"):
        table.add_column(column, justify="left" if column == "occlusion" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for level in OCCLUSION_CHOICES:
                render = _render_rate(size, level, args.images)
                folder = Path(tmp) / f"{size}_{level}"
                end_to_end = _end_to_end_rate(size, level, args.images, folder)
                applies = size == TARGET_SIZE
                table.add_row(
                    f"{size}",
                    level,
                    f"{render:.1f}",
                    f"{end_to_end:.1f}",
                    f"{TARGET_IMAGES_PER_S:.0f}" if applies else "(256 only)",
                    ("yes" if end_to_end >= TARGET_IMAGES_PER_S else "NO") if applies else "-",
                )
        console.print(table)

        merged = {"images": [], "annotations": []}
        for level in OCCLUSION_CHOICES[:-1]:
            folder = Path(tmp) / f"rates_{level}"
            path = generate_dataset(
                folder, args.rate_images, seed=0, size=TARGET_SIZE, occlusion=level, progress=False
            )
            data = json.loads(path.read_text())
            # Image ids restart per folder; offset them so the merged dict stays consistent.
            offset = len(merged["images"])
            for img in data["images"]:
                merged["images"].append({**img, "id": img["id"] + offset})
            for ann in data["annotations"]:
                merged["annotations"].append({**ann, "image_id": ann["image_id"] + offset})
    console.print(
        occlusion_table(
            occlusion_histogram(merged),
            f"person occlusion rate per level ({args.rate_images} images of "
            f"{TARGET_SIZE}x{TARGET_SIZE} each, COCO keypoints)",
        )
    )


if __name__ == "__main__":
    main()
