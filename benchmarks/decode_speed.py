"""Speed of decoding + grouping against the number of people, for both groupers.

Usage::

    python benchmarks/decode_speed.py [--people 1 5 20 50 100] [--repeats 7] [--seed 0]
                                      [--out results.json]

Setting: a 512x512 input, network outputs as HigherHRNet makes them, rendered from
known random poses (COCO-17 people of random size, rotation and jitter, 10 % of joints
unlabelled, some beyond the image): heatmaps at 1/4 (128x128) and 1/2 (256x256),
tags (one per joint) and limb fields at 1/4.

Per image it times (median over ``--repeats`` runs of the CPU time of the process,
``time.process_time``, with torch and OpenCV on one thread: on an idle machine this
equals wall-clock time, and on a shared one it is not inflated by other jobs):

* aggregate: both heatmap resolutions averaged at 256x256, the 1/4 maps (tags or
  limb fields) upsampled to 256x256 (:mod:`occlupose.decode.aggregate`);
* tags: :func:`occlupose.decode.group_by_tags` on the aggregated maps;
* limbs: :func:`occlupose.decode.group_by_limbs` on the aggregated maps;
* baseline: the same tag grouping written the straightforward way HigherHRNet's
  ``group.py`` does it (max-pool, top-k, a Python dict of people, Python loops for the
  cost matrix and the quarter-pixel adjust, a full-map refine per person and missing
  joint), kept in this script. It uses scipy's assignment instead of ``munkres``, so
  among equally cheap assignments it may choose differently.

It also reports, per grouper, the share of labelled in-image joints found within 1 px
in the person that holds most of that true person's joints: a check that the timed
code did the work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from scipy.optimize import linear_sum_assignment

from occlupose.data.synthetic.template import STANDING_COCO
from occlupose.data.targets import render_heatmaps, render_limb_fields, render_tag_maps
from occlupose.decode import (
    aggregate_heatmaps,
    concat_tags,
    group_by_limbs,
    group_by_tags,
    resize_maps,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS
from occlupose.utils.io import atomic_write_json

INPUT = 512
SIGMA = 2.0
LIMB_WIDTH = 1.0


def random_people(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 17, 3) keypoints in input pixels; heights 60-200 px, 10 % unlabelled."""
    people = np.zeros((count, 17, 3))
    for n in range(count):
        angle = rng.uniform(-0.4, 0.4)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pose = STANDING_COCO + rng.normal(0, 0.02, STANDING_COCO.shape)
        height = rng.uniform(60, 200)
        people[n, :, :2] = pose @ rotation.T * height + rng.uniform(20, INPUT - 20, 2)
        people[n, :, 2] = rng.random(17) > 0.1
    return people


def network_outputs(people: np.ndarray) -> dict[str, np.ndarray]:
    """What a perfect HigherHRNet-style network would output for these people."""
    quarter, half = people.copy(), people.copy()
    quarter[..., :2] = (people[..., :2] + 0.5) / 4 - 0.5  # pixel centres, stride 4
    half[..., :2] = (people[..., :2] + 0.5) / 2 - 0.5
    tag_values = 2.0 * np.arange(1, len(people) + 1)
    q, h = (INPUT // 4,) * 2, (INPUT // 2,) * 2
    return {
        "heatmaps_4": render_heatmaps(quarter, q, SIGMA),
        "heatmaps_2": render_heatmaps(half, h, SIGMA),
        "tags_4": render_tag_maps(quarter, tag_values, q, 2.0),
        "limbs_4": render_limb_fields(quarter, COCO_KEYPOINTS.limbs, q, LIMB_WIDTH),
        "truth_2": half,
    }


# --- the straightforward implementation, for comparison --------------------------------


def naive_group_by_tags(heatmaps, tags, *, max_people, threshold=0.1, tag_threshold=1.0):
    """HigherHRNet's group.py structure, loops and all (tags (J, H, W, D))."""
    num_joints, height, width = heatmaps.shape
    det = torch.from_numpy(heatmaps)[None]
    pooled = F.max_pool2d(det, 5, 1, 2)
    det_nms = (det * torch.eq(pooled, det).float()).view(1, num_joints, -1)
    val_k, ind = det_nms.topk(max_people, dim=2)
    val_k, ind = val_k[0].numpy(), ind[0].numpy()
    people: dict[float, np.ndarray] = {}
    person_tags: dict[float, list[np.ndarray]] = {}
    for step, j in enumerate(COCO_KEYPOINTS.grouping_order):
        joints = []
        for k in range(max_people):
            if val_k[j, k] > threshold:
                y, x = divmod(int(ind[j, k]), width)
                joints.append((x, y, float(val_k[j, k]), tags[j, y, x]))
        if not joints:
            continue
        if step == 0 or not people:
            for x, y, v, t in joints:
                people.setdefault(float(t[0]), np.zeros((num_joints, 3)))[j] = (x, y, v)
                person_tags[float(t[0])] = [t]
            continue
        keys = list(people)[:max_people]
        means = [np.mean(person_tags[key], axis=0) for key in keys]
        size = max(len(joints), len(keys))
        cost = np.full((len(joints), size), 1e10)
        dist = np.zeros((len(joints), len(keys)))
        for r, (_, _, v, t) in enumerate(joints):
            for c, mean in enumerate(means):
                dist[r, c] = np.sqrt(((t - mean) ** 2).sum())
                cost[r, c] = np.round(dist[r, c]) * 100 - v
        rows, cols = linear_sum_assignment(cost)
        matched = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        for r, (x, y, v, t) in enumerate(joints):
            c = matched.get(r, size)
            if c < len(keys) and dist[r, c] < tag_threshold:
                people[keys[c]][j] = (x, y, v)
                person_tags[keys[c]].append(t)
            else:
                people.setdefault(float(t[0]), np.zeros((num_joints, 3)))[j] = (x, y, v)
                person_tags[float(t[0])] = [t]
    result = np.array(list(people.values()), dtype=np.float32).reshape(-1, num_joints, 3)
    for person in result:  # adjust
        for j in range(num_joints):
            if person[j, 2] > 0:
                x, y = int(person[j, 0]), int(person[j, 1])
                m = heatmaps[j]
                person[j, 0] += 0.75 if m[y, min(x + 1, width - 1)] > m[y, max(x - 1, 0)] else 0.25
                person[j, 1] += 0.75 if m[min(y + 1, height - 1), x] > m[max(y - 1, 0), x] else 0.25
    scores = result[:, :, 2].mean(axis=1)
    for person in result:  # refine, one full map per missing joint
        found = person[:, 2] > 0
        if not found.any():
            continue
        mean = np.mean(
            [tags[j, int(person[j, 1]), int(person[j, 0])] for j in np.flatnonzero(found)], axis=0
        )
        for j in np.flatnonzero(~found):
            score = heatmaps[j] - np.round(np.sqrt(((tags[j] - mean) ** 2).sum(axis=2)))
            y, x = np.unravel_index(np.argmax(score), score.shape)
            if heatmaps[j, y, x] > 0:
                person[j] = (x + 0.5, y + 0.5, heatmaps[j, y, x])
    return result, scores


# --- measurement -------------------------------------------------------------------------


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def recovered(decoded: np.ndarray, truth: np.ndarray, size: int) -> float:
    """Share of labelled in-map joints found within 1 px in their best decoded person."""
    inside = (
        (truth[..., 2] > 0)
        & (truth[..., :2] >= -0.5).all(-1)
        & (truth[..., :2] < size - 0.5).all(-1)
    )
    if len(decoded) == 0:
        return 0.0
    xy = decoded[None, :, :, :2] - 0.5
    close = (np.linalg.norm(xy - truth[:, None, :, :2], axis=-1) < 1) & (decoded[None, :, :, 2] > 0)
    hits = (close & inside[:, None, :]).sum(axis=2).max(axis=1)
    return float(hits.sum() / max(inside.sum(), 1))


def measure(count: int, rng: np.random.Generator, repeats: int) -> dict:
    """Timings and recovery for one image with ``count`` random people."""
    out = network_outputs(random_people(count, rng))
    max_people = max(30, count)
    half = (INPUT // 2, INPUT // 2)

    def aggregate_tags():
        heat = aggregate_heatmaps([out["heatmaps_4"], out["heatmaps_2"]], half)
        return heat, concat_tags([out["tags_4"]], half)

    def aggregate_limbs():
        heat = aggregate_heatmaps([out["heatmaps_4"], out["heatmaps_2"]], half)
        return heat, resize_maps(out["limbs_4"], half)

    heat, tags = aggregate_tags()
    _, fields = aggregate_limbs()

    def tags_grouping():
        return group_by_tags(heat, tags, max_people=max_people)

    def limbs_grouping():
        return group_by_limbs(heat, fields, COCO_KEYPOINTS, max_people=max_people)

    def baseline_grouping():
        return naive_group_by_tags(heat, tags, max_people=max_people)

    truth = out["truth_2"]
    return {
        "people": count,
        "aggregate_tags_ms": median_ms(aggregate_tags, repeats),
        "aggregate_limbs_ms": median_ms(aggregate_limbs, repeats),
        "tags_ms": median_ms(tags_grouping, repeats),
        "limbs_ms": median_ms(limbs_grouping, repeats),
        "naive_tags_ms": median_ms(baseline_grouping, max(1, repeats // 2)),
        "tags_found": recovered(tags_grouping()[0], truth, half[0]),
        "limbs_found": recovered(limbs_grouping()[0], truth, half[0]),
        "naive_found": recovered(baseline_grouping()[0], truth, half[0]),
    }


def run(people_counts: list[int], repeats: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [measure(count, rng, repeats) for count in people_counts]


def print_table(rows: list[dict], console: Console) -> None:
    table = Table(
        title="Decode + grouping per 512x512 image (median CPU ms, maps 128x128 and 256x256)",
        caption="total = aggregate + grouping; found = labelled joints recovered within 1 px",
    )
    for name in ("people", "aggregate", "tags", "tags total", "baseline total", "speed-up",
                 "limbs", "limbs total", "found tags/base/limbs"):  # fmt: skip
        table.add_column(name, justify="right")
    for r in rows:
        tags_total = r["aggregate_tags_ms"] + r["tags_ms"]
        naive_total = r["aggregate_tags_ms"] + r["naive_tags_ms"]
        table.add_row(
            str(r["people"]),
            f"{r['aggregate_tags_ms']:.1f}",
            f"{r['tags_ms']:.1f}",
            f"{tags_total:.1f}",
            f"{naive_total:.1f}",
            f"{naive_total / tags_total:.1f}x",
            f"{r['limbs_ms']:.1f}",
            f"{r['aggregate_limbs_ms'] + r['limbs_ms']:.1f}",
            f"{r['tags_found']:.0%} / {r['naive_found']:.0%} / {r['limbs_found']:.0%}",
        )
    console.print(table)
    by_count = {r["people"]: r for r in rows}
    if 20 in by_count:
        r = by_count[20]
        for name, total in (
            ("tags", r["aggregate_tags_ms"] + r["tags_ms"]),
            ("limbs", r["aggregate_limbs_ms"] + r["limbs_ms"]),
        ):
            verdict = "[green]meets[/]" if total < 10 else "[red]misses[/]"
            console.print(f"{name}: {total:.1f} ms for 20 people, {verdict} the 10 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 20, 50, 100])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = run(args.people, args.repeats, args.seed)
    print_table(rows, Console(width=130))
    if args.out:
        atomic_write_json(args.out, rows, indent=2)


if __name__ == "__main__":
    main()
