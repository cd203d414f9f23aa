"""Cost of every model preset: parameters, multiply-adds, CPU/GPU latency, peak memory.

Usage::

    python benchmarks/model_cost.py [--presets hrgr_w32_512 higherhrnet_w32_512 ...]
                                    [--repeats 10] [--threads 2] [--device cpu|cuda]

Multiply-adds are counted exactly by PyTorch's FLOP counter (FLOPs / 2). A
transposed convolution is counted at its input resolution (each input pixel
meets the kernel once), which is its true cost. HigherHRNet's published
"47.9 GFLOPs" for W32 at 512 counts the transposed convolution as if it ran at
its output resolution (4x), so the table also gives that convention's number.

Each preset runs in its own process so that its peak memory is its own. The
targets (hrgr_w32_512 within 15 % of higherhrnet_w32_512 in latency and
parameters) are checked against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from occlupose.models import PRESETS, create_model

BASELINE, CANDIDATE, TARGET = "higherhrnet_w32_512", "hrgr_w32_512", 1.15


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _deconv_macs(model: torch.nn.Module, size: int) -> int:
    """Multiply-adds of the transposed convolutions, at their input resolution."""
    total, resolution = 0, size // 4
    for m in model.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += m.in_channels * m.out_channels * k * resolution * resolution
            resolution *= 2
    return total


def measure(name: str, repeats: int, threads: int, device: str) -> dict:
    torch.set_num_threads(threads)
    size = PRESETS[name].input_size
    model = create_model(name).eval().to(device)
    x = torch.randn(1, 3, size, size, device=device)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    macs = counter.get_total_flops() / 2
    deconv = _deconv_macs(model, size)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = _rss_mb()
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    return {
        "name": name,
        "input": size,
        "params": params,
        "gmacs": macs / 1e9,
        "gmacs_published_convention": (macs + 3 * deconv) / 1e9,
        "latency_ms": statistics.median(times) * 1e3,
        "peak_mb": peak,
    }


def _worker(args, queue):
    queue.put(measure(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    presets = list(dict.fromkeys([BASELINE, CANDIDATE, *args.presets]))

    ctx = mp.get_context("spawn")
    rows = []
    for name in presets:
        queue = ctx.Queue()
        proc = ctx.Process(
            target=_worker, args=((name, args.repeats, args.threads, args.device), queue)
        )
        proc.start()
        rows.append(queue.get())
        proc.join()

    by_name = {r["name"]: r for r in rows}
    base = by_name[BASELINE]
    where = "GPU" if args.device == "cuda" else f"CPU, {args.threads} threads"
    table = Table(title=f"Model cost (batch 1, {where}, median of {args.repeats})")
    for col in (
        "preset", "input", "params (M)", "GMACs", "GMACs (HigherHRNet convention)",
        "latency (ms)", "peak memory (MB)", f"vs {BASELINE} (params / latency)",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col == "preset" else "right")
    for r in rows:
        table.add_row(
            r["name"],
            str(r["input"]),
            f"{r['params'] / 1e6:.2f}",
            f"{r['gmacs']:.2f}",
            f"{r['gmacs_published_convention']:.2f}",
            f"{r['latency_ms']:.1f}",
            f"{r['peak_mb']:.0f}",
            f"{r['params'] / base['params']:.3f} / {r['latency_ms'] / base['latency_ms']:.3f}",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)  # logs: full tables
    console.print(table)
    cand = by_name[CANDIDATE]
    p_ratio, t_ratio = cand["params"] / base["params"], cand["latency_ms"] / base["latency_ms"]
    ok = p_ratio <= TARGET and t_ratio <= TARGET
    console.print(
        f"target {CANDIDATE} <= {TARGET:.2f}x {BASELINE}: parameters {p_ratio:.3f}x, "
        f"latency {t_ratio:.3f}x -> {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
