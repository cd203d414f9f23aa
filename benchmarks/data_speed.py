"""Throughput of the bottom-up training pipeline: decode + augment + occluders + targets.

Usage::

    python benchmarks/data_speed.py [--data FOLDER]
                                    [--sizes 512 256] [--workers 0 2] [--num-images 96]
                                    [--repeats 3]

``--data`` is a folder with one COCO keypoint JSON and an ``images/`` folder (the 6
real COCO photos of ``tests/data/coco_subset`` by default). Without it, a folder of
synthetic 640x480 JPEGs with random people is generated, so the script always runs.

Prints (1) images/s of ``DataLoader(BottomUpPoseDataset, batch_size=8)`` for every
input size, with/without occluders (probability 1, the worst case), float32 and
``compact`` samples, in-process (``num_workers=0``) and with worker processes, next
to a decode-only baseline measured in the same run (best of ``--repeats`` runs:
other load on a shared machine only slows a run down); (2) milliseconds per image
of each stage in one process; (3) how many worker processes one GPU needs.

A sample at 512 is ~16 MB of float32 tensors (mostly the 1/2-resolution heatmaps),
and moving it from a worker to the main process costs about as much as computing
it; ``compact=True`` halves that. Each process runs OpenCV single-threaded.

Whether this starves a GPU: HigherHRNet-W32 trains with 12 images per GPU per step,
so one GPU consumes 12 / step-time images/s. The last table divides that by the
measured per-worker rate. Step times are assumptions (no GPU here), so are its rows.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Subset

from occlupose.data.augment import (
    ColorJitter,
    RandomAffine,
    mark_outside,
    stride_matrix,
    transform_keypoints,
    warp_image,
)
from occlupose.data.bottom_up import BottomUpPoseDataset, worker_init_fn
from occlupose.data.datasets import KeypointDataset, load_coco_keypoints
from occlupose.data.masks import ignore_mask
from occlupose.data.occluders import SyntheticOccluders
from occlupose.data.targets import joint_index_array, render_heatmaps, render_limb_fields
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

# Real COCO photos shipped with the tests (6 images); any COCO-format folder works.
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "coco_subset"
# Images one GPU consumes per second for HigherHRNet-W32 at 512 (12 images per step)
# for a range of step times; not measured here (no GPU on this machine).
GPU_STEP_SECONDS = (0.6, 0.3, 0.12)
IMAGES_PER_GPU_STEP = 12


def synthetic_folder(root: Path, num_images: int = 24, seed: int = 0) -> Path:
    """Write random 640x480 JPEGs and a COCO keypoint file with 1-6 people each."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        pixels = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
        name = f"{i:06d}.jpg"
        cv2.imwrite(str(root / "images" / name), pixels)
        images.append({"id": i, "file_name": name, "width": 640, "height": 480})
        for _ in range(int(rng.integers(1, 7))):
            cx, cy, s = rng.uniform(80, 560), rng.uniform(80, 400), rng.uniform(20, 80)
            kpts = np.stack(
                [cx + rng.normal(0, s / 2, 17), cy + rng.normal(0, s, 17), np.full(17, 2.0)], 1
            )
            kpts[:, 0] = kpts[:, 0].clip(0, 639)
            kpts[:, 1] = kpts[:, 1].clip(0, 479)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "iscrowd": 0,
                    "keypoints": kpts.round(1).reshape(-1).tolist(),
                    "bbox": [cx - s, cy - 2 * s, 2 * s, 4 * s],
                    "area": 4.0 * s * s,
                }
            )
    category = {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS.keypoint_names)}
    data = {"images": images, "annotations": annotations, "categories": [category]}
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def load(data_dir: Path) -> KeypointDataset:
    files = sorted(data_dir.glob("*.json"))
    if len(files) != 1 or not (data_dir / "images").is_dir():
        raise SystemExit(f"{data_dir} must hold one COCO keypoint JSON and an images/ folder")
    return load_coco_keypoints(files[0], data_dir / "images")


def make_dataset(records, size: int, occluders: bool, compact: bool) -> BottomUpPoseDataset:
    return BottomUpPoseDataset(
        records,
        COCO_KEYPOINTS,
        input_size=size,
        output_strides=(4, 2),
        sigmas=(2.0, 2.0),
        augment=RandomAffine(),
        color_jitter=ColorJitter(),
        occluders=SyntheticOccluders(probability=1.0) if occluders else None,
        seed=0,
        compact=compact,
    )


def sample_megabytes(sample) -> float:
    tensors = [
        v for value in sample.values() for v in (value if isinstance(value, list) else [value])
    ]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def loader_rate(dataset, num_images: int, workers: int, batch_size: int) -> float:
    """Images/s of a DataLoader, after its first batch (worker start-up excluded)."""
    indices = [i % len(dataset) for i in range(num_images + batch_size)]
    loader = DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        num_workers=workers,
        worker_init_fn=worker_init_fn if workers else None,
    )
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    count = sum(batch["image"].shape[0] for batch in iterator)
    return count / (time.perf_counter() - start)


def decode_rate(records, num_images: int) -> float:
    start = time.perf_counter()
    for i in range(num_images):
        records[i % len(records)].read_image()
    return num_images / (time.perf_counter() - start)


def normalise(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((image.astype(np.float32) / 255).transpose(2, 0, 1))


def stage_times(records, size: int, num_images: int) -> dict[str, float]:
    """Milliseconds per image of each pipeline stage, run one after the other."""
    rng = np.random.default_rng(0)
    affine, jitter, occluders = RandomAffine(), ColorJitter(), SyntheticOccluders(probability=1)
    times: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        times.setdefault(name, []).append(1e3 * (time.perf_counter() - start))
        return result

    for i in range(num_images):
        record = records[i % len(records)]
        image = timed("decode JPEG", record.read_image)
        mask = timed("ignore mask", ignore_mask, record)
        drawn = affine.sample(rng, image.shape[:2], size)
        warped = timed("warp image", warp_image, image, drawn.matrix, (size, size))
        flip = COCO_KEYPOINTS.flip_index if drawn.flipped else None
        kpts = mark_outside(
            transform_keypoints(record.keypoints[record.labelled], drawn.matrix, flip),
            (size, size),
        )
        occlusion = timed("occluders (p=1)", occluders, warped, kpts, rng)
        warped = timed("colour jitter", jitter, occlusion.image, rng)
        timed("normalise", normalise, warped)
        for stride in (4, 2):
            out = size // stride
            to_out = stride_matrix(stride)
            k = mark_outside(transform_keypoints(kpts, to_out), (out, out))
            timed("warp mask", warp_image, mask * 255, to_out @ drawn.matrix, (out, out))
            # visible and complete heatmaps: two renders per stride
            timed("heatmaps (x2 per stride)", render_heatmaps, k, (out, out), 2.0)
            timed("heatmaps (x2 per stride)", render_heatmaps, k, (out, out), 2.0)
            if stride == 4:
                timed("limb fields", render_limb_fields, k, COCO_KEYPOINTS.limbs, (out, out), 1.0)
                timed("joint index array", joint_index_array, k, (out, out), 30)
    return {name: sum(v) / num_images for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--num-images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    console = Console(width=120)
    cv2.setNumThreads(1)  # the main process counts as one worker, like a DataLoader worker
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if (args.data / "images").is_dir():
            source = f"{args.data} (real COCO images)"
            records = load(args.data)
        else:
            source = f"synthetic 640x480 JPEGs ({args.data} not found)"
            records = load(synthetic_folder(Path(tmp)))
        mean_side = np.mean([max(r.width, r.height) for r in records])
        console.print(
            f"data: {source}: {len(records)} images, mean longer side {mean_side:.0f} px; "
            f"{os.cpu_count()} CPU cores; OpenCV {cv2.__version__}, 1 thread per process"
        )

        baseline = max(decode_rate(records, args.num_images) for _ in range(args.repeats))
        table = Table(title="training pipeline throughput (images/s, higher is better)")
        for column in ("input", "occluders", "sample format", "MB/sample"):
            table.add_column(column, justify="right")
        for workers in args.workers:
            table.add_column(f"{workers} workers" if workers else "in-process", justify="right")
        table.add_column("per worker", justify="right")
        blank = [""] * (len(args.workers) - 1)
        table.add_row("decode", "only", "-", "-", f"{baseline:.1f}", *blank, "baseline")
        per_worker, single_process = {}, {}
        for size in args.sizes:
            for occluders in (False, True):
                for compact in (False, True):
                    dataset = make_dataset(records, size, occluders, compact)
                    # Best of the repeats: on a shared machine, other load only slows down.
                    rates = [
                        max(
                            loader_rate(dataset, args.num_images, workers, args.batch_size)
                            for _ in range(args.repeats)
                        )
                        for workers in args.workers
                    ]
                    # Rate per worker process at the largest worker count (what scales).
                    busiest = max(range(len(rates)), key=lambda i: args.workers[i])
                    per_worker[size, occluders, compact] = rates[busiest] / max(
                        args.workers[busiest], 1
                    )
                    pairs = zip(rates, args.workers, strict=True)
                    single_process[size, occluders, compact] = max(
                        rate / max(workers, 1) for rate, workers in pairs
                    )
                    table.add_row(
                        str(size),
                        "p=1" if occluders else "off",
                        "compact" if compact else "float32",
                        f"{sample_megabytes(dataset[0]):.1f}",
                        *[f"{rate:.1f}" for rate in rates],
                        f"{per_worker[size, occluders, compact]:.1f}",
                    )
        console.print(table)

        stages = Table(title=f"stage cost at {args.sizes[0]} input, one process (ms per image)")
        stages.add_column("stage")
        stages.add_column("ms", justify="right")
        costs = stage_times(records, args.sizes[0], min(args.num_images, 48))
        for name, ms in costs.items():
            stages.add_row(name, f"{ms:.2f}")
        stages.add_row("total", f"{sum(costs.values()):.2f}")
        console.print(stages)

        need = Table(
            title=f"worker processes needed per GPU: HigherHRNet-W32, {IMAGES_PER_GPU_STEP} images "
            "per GPU step (step times assumed, not measured here); occluders p=1; "
            "best case (best rate per process) - worst case (measured per-worker rate at "
            f"{max(args.workers)} workers)"
        )
        need.add_column("step time")
        need.add_column("GPU consumes img/s", justify="right")
        for size in args.sizes:
            need.add_column(f"@ {size} float32", justify="right")
            need.add_column(f"@ {size} compact", justify="right")
        for step in GPU_STEP_SECONDS:
            demand = IMAGES_PER_GPU_STEP / step
            cells = [
                f"{demand / single_process[size, True, compact]:.1f} - "
                f"{demand / per_worker[size, True, compact]:.1f}"
                for size in args.sizes
                for compact in (False, True)
            ]
            need.add_row(f"{step:.2f} s", f"{demand:.0f}", *cells)
        console.print(need)


if __name__ == "__main__":
    main()
