"""Inference throughput on video-like frames: one frame per network run vs. batches.

Usage::

    python benchmarks/predict_speed.py                                # bundled model, CPU
    python benchmarks/predict_speed.py --weights pose_higher_hrnet_w32_512.pth \\
        --preset higherhrnet_w32_512 --size 512 --device cuda --batch-sizes 1 4 8 16

Frames are synthetic crowded scenes of one size (``render_scene``, seeded), so the
grouping has real people to assemble. For every batch size it times, over ``--frames``
frames after a warm-up: the network with test-time augmentation (``Predictor.maps_batch``:
each batch and its mirror in one run when ``--flip``) and the whole pipeline
(``Predictor.predict_images``: network, merging, grouping, projection to the image). The
first row (batch 1, what ``predict_image`` does) is the baseline of the speed-up column.
Batching pays where the network is the bottleneck and the device has spare parallelism
(GPUs); grouping stays per frame on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import torch
from rich.console import Console
from rich.table import Table

from occlupose.data.synthetic import render_scene
from occlupose.inference import Predictor, PredictorOptions


def frames_of(count: int, size: int, seed: int) -> list:
    """``count`` RGB synthetic scenes of ``size`` x ``size`` pixels."""
    return [
        cv2.cvtColor(render_scene(seed + i, size=size).image, cv2.COLOR_BGR2RGB)
        for i in range(count)
    ]


def timed(run, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="default: the bundled model")
    parser.add_argument("--preset", default=None, help="for official checkpoints")
    parser.add_argument("--size", type=int, default=256, help="frame side and input size (px)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="float16 network (CUDA)")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    options = PredictorOptions(input_size=args.size, flip=args.flip)
    predictor = Predictor.from_pretrained(
        args.weights, preset=args.preset, options=options, device=args.device, half=args.half
    )
    frames = frames_of(args.frames, args.size, args.seed)
    rows = []
    for batch in args.batch_sizes:
        chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
        predictor.maps_batch(chunks[0])  # warm-up (allocator, kernels) at this batch size
        network = sum(timed(lambda c=c: predictor.maps_batch(c), args.device) for c in chunks)
        found: list = []
        total = timed(
            lambda b=batch, out=found: out.extend(predictor.predict_images(frames, batch_size=b)),
            args.device,
        )
        rows.append(
            {
                "batch": batch,
                "network_ms": 1000 * network / len(frames),
                "total_ms": 1000 * total / len(frames),
                "people": sum(len(p) for p in found),
            }
        )

    where = (
        torch.cuda.get_device_name(predictor.device)
        if predictor.device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    table = Table(
        title=f"{args.frames} frames of {args.size} px, flip test {'on' if args.flip else 'off'},"
        f" {where}"
    )
    for column in ("batch", "network ms / frame", "total ms / frame", "frames / s", "speed-up"):
        table.add_column(column, justify="right")
    table.add_column("people found", justify="right")
    for row in rows:
        table.add_row(
            str(row["batch"]),
            f"{row['network_ms']:.1f}",
            f"{row['total_ms']:.1f}",
            f"{1000 / row['total_ms']:.1f}",
            f"{rows[0]['total_ms'] / row['total_ms']:.2f}x",
            str(row["people"]),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # logs: full tables


if __name__ == "__main__":
    main()
