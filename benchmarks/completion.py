"""Completion benchmark on real poses: how well each completer recovers hidden joints.

CrowdPose val (7,074 real people) split by image id: ``id % 4 != 0`` fits everything
(nearest-pose references, mean pose, learned completers), ``id % 4 == 0`` is the table
(its fully labelled people, joints hidden by the patterns of
:func:`occlupose.evaluation.hide_patterns` and k random joints, k = 1..8). A second
table scores the real occluded (v = 1) joints of the shared COCO sample given the
visible (v = 2) ones, with COCO-17 completers fitted on CrowdPose's 12 body joints and
synthetic poses only (nothing from COCO).

Rows: no completion; the mean pose aligned by a similarity transform; the nearest-pose
prior (references: the fitting split, or synthetic poses); learned completers
(:func:`occlupose.engine.completion_training.train_pose_completer`) trained on the real
fitting split or real + synthetic poses, with and without the adversarial term, two
seeds each.

    python benchmarks/completion.py --out completion_results.json
    # train and write the bundled occlupose/weights/completer_*.pt by that table:
    python benchmarks/completion.py --bundle completion_results.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch

from occlupose.data.synthetic.annotations import select_keypoints
from occlupose.data.synthetic.poses import articulate, sample_pose
from occlupose.decode.prior import fit_reference_pose
from occlupose.engine.completion_training import CompletionRecipe, train_pose_completer
from occlupose.evaluation.completion import (
    completion_people,
    completion_scores,
    evaluate_completer,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS, KeypointSet

ROOT = Path(__file__).resolve().parent.parent
CROWDPOSE = ROOT / "tests/data/crowdpose_val/crowdpose_val.json.gz"
COCO_SAMPLE = ROOT.parent / "shared/data/coco_sample/person_keypoints_sample.json"
WEIGHTS = ROOT / "occlupose/weights"


def synthetic_poses(keypoint_set: KeypointSet, n: int, seed: int) -> np.ndarray:
    """(n, J, 2) poses of the synthetic benchmark's body model (every joint placed)."""
    rng = np.random.default_rng(seed)
    out = [
        select_keypoints(articulate(sample_pose(rng), 200.0, (0.0, 0.0)).points, keypoint_set)
        for _ in range(n)
    ]
    return np.stack(out)


def to_coco(poses: np.ndarray, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CrowdPose-14 people in COCO-17 order; the 5 COCO head joints unlabelled."""
    j = COCO_KEYPOINTS.num_keypoints
    out, lab = np.zeros((len(poses), j, 2)), np.zeros((len(poses), j), dtype=bool)
    for c, name in enumerate(CROWDPOSE_KEYPOINTS.keypoint_names):
        if name in COCO_KEYPOINTS.keypoint_names:
            i = COCO_KEYPOINTS.index(name)
            out[:, i], lab[:, i] = poses[:, c], labelled[:, c]
    return out, lab


def nearest_pose(references: np.ndarray):
    """A completer from reference poses (one reference: the aligned mean pose)."""

    def complete(keypoints: np.ndarray, known: np.ndarray) -> np.ndarray:
        out = np.array(keypoints, dtype=np.float64)
        for person, mask in zip(out, known, strict=True):
            if mask.sum() < 2:
                person[~mask] = np.nan
                continue
            fitted, _ = fit_reference_pose(person, mask, references)
            person[~mask] = fitted[~mask]
        return out

    return complete


def mean_pose(poses: np.ndarray) -> np.ndarray:
    centred = poses - poses.mean(axis=1, keepdims=True)
    spread = np.sqrt((centred**2).sum(axis=(1, 2)) / poses.shape[1])
    return (centred / spread[:, None, None]).mean(axis=0, keepdims=True)


def no_completion(keypoints: np.ndarray, known: np.ndarray) -> np.ndarray:
    return np.where(known[..., None], keypoints, np.nan)


def coco_v1_scores(complete, gt: dict) -> dict[str, float]:
    people = completion_people(gt, min_labelled=1)
    keep = (people.labelled & ~people.visible).any(axis=1) & (people.visible.sum(axis=1) >= 2)
    p = people.subset(keep)
    hidden = p.labelled & ~p.visible
    keypoints = np.where(p.visible[..., None], p.poses, np.nan)
    predicted = complete(keypoints, p.visible)
    return completion_scores(
        predicted, p.poses, hidden, p.areas, COCO_KEYPOINTS.sigmas, labelled=p.labelled
    )


SHORT = {
    "lower_body": "lower body", "one_side": "one side", "one_arm": "one arm",
    "below_knee": "ankles", "head": "head",
}  # fmt: skip


def markdown(results: dict) -> str:
    """The README tables: share within KS 0.5 per pattern, then the means."""
    cp = results["crowdpose"]
    patterns = [p for p in next(iter(cp.values())) if p != "mean"]
    head = [SHORT.get(p, p.replace("random", "k=")) for p in patterns]
    lines = [
        "| completer (CrowdPose held-out fold) | " + " | ".join(head)
        + " | **mean KS>=0.5** | KS>=0.75 | median err | OKS |",
        "| --- " * (len(head) + 5) + "|",
    ]  # fmt: skip
    for name, row in cp.items():
        cells = [f"{row[p]['within_0.5']:.3f}" for p in patterns]
        m = row["mean"]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | **{m['within_0.5']:.3f}** | "
            f"{m['within_0.75']:.3f} | {m['median_error']:.2f} | {m['oks']:.3f} |"
        )
    lines += ["", "| completer (COCO sample, real v=1 joints) | KS>=0.5 | KS>=0.75 | "
              "median err | OKS | joints |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, r in results["coco_v1"].items():
        lines.append(
            f"| {name} | {r['within_0.5']:.3f} | {r['within_0.75']:.3f} | "
            f"{r['median_error']:.2f} | {r['oks']:.3f} | {r['hidden']} |"
        )
    return "\n".join(lines)


def chosen_recipe(results: dict) -> tuple[str, str]:
    """(data, loss) of the bundled completers: the training data whose seeds average
    best; the GAN term only where it beats L1 alone by more than 0.005 (the seeds'
    spread), as it doubles the training time."""

    def average(data: str, loss: str) -> float:
        prefix = f"learned, {data}, {loss}, seed"
        rows = [v["mean"]["within_0.5"] for k, v in results["crowdpose"].items()
                if k.startswith(prefix)]  # fmt: skip
        return float(np.mean(rows))

    data = max(("real", "real+synthetic"), key=lambda d: average(d, "L1"))
    loss = "L1+GAN" if average(data, "L1+GAN") > average(data, "L1") + 0.005 else "L1"
    return data, loss


def bundle(results: dict, args: argparse.Namespace) -> None:
    """Train and save the two bundled completers (seed 0 of the chosen recipe)."""
    data, loss = chosen_recipe(results)
    recipe = CompletionRecipe(steps=args.steps, adversarial=args.adversarial if loss != "L1" else 0)
    with gzip.open(CROWDPOSE) as f:
        gt = json.load(f)
    fit = completion_people(gt, split="fit", min_labelled=4, area_from_box=True)
    test = completion_people(gt, split="test", area_from_box=True)
    poses, labelled = fit.poses, fit.labelled
    if data == "real+synthetic":
        synth = synthetic_poses(CROWDPOSE_KEYPOINTS, args.synthetic, seed=12345)
        poses = np.concatenate([poses, synth])
        labelled = np.concatenate([labelled, np.ones(synth.shape[:2], dtype=bool)])
    crowdpose = train_pose_completer(poses, labelled, CROWDPOSE_KEYPOINTS, recipe, seed=0)
    cp_coco, cp_coco_lab = to_coco(fit.poses, fit.labelled)
    synth_coco = synthetic_poses(COCO_KEYPOINTS, args.synthetic, seed=12345)
    coco = train_pose_completer(
        np.concatenate([cp_coco, synth_coco]),
        np.concatenate([cp_coco_lab, np.ones(synth_coco.shape[:2], dtype=bool)]),
        COCO_KEYPOINTS,
        recipe,
        seed=0,
    )
    crowdpose.metadata.update(
        variant=f"learned, {data}, {loss}, seed 0",
        data="CrowdPose val people of images with id % 4 != 0"
        + (f" + {args.synthetic} synthetic poses" if data != "real" else ""),
        table=json.dumps(evaluate_completer(crowdpose.complete, test, CROWDPOSE_KEYPOINTS)),
    )
    coco_sample = json.loads(COCO_SAMPLE.read_text())
    coco.metadata.update(
        variant=f"learned, CrowdPose body + synthetic, {loss}, seed 0",
        data="CrowdPose val people of images with id % 4 != 0 (12 body joints) + "
        f"{args.synthetic} synthetic poses",
        table=json.dumps(coco_v1_scores(coco.complete, coco_sample)),
    )
    for key, completer in (("crowdpose", crowdpose), ("coco", coco)):
        completer.save(WEIGHTS / f"completer_{key}.pt")
        print(f"saved {WEIGHTS / f'completer_{key}.pt'}: {completer.metadata['variant']}")
        print(completer.metadata["table"][:400])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("completion_results.json"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--adversarial", type=float, default=0.05)
    parser.add_argument("--synthetic", type=int, default=5000, help="synthetic poses to add")
    parser.add_argument(
        "--bundle",
        type=Path,
        help="train the bundled completers by the recipe this results JSON favours, "
        "write occlupose/weights/completer_*.pt, and stop",
    )
    parser.add_argument("--table", type=Path, help="print the tables of a results JSON and stop")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: shared CPUs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    if args.bundle:
        bundle(json.loads(args.bundle.read_text()), args)
        return

    with gzip.open(CROWDPOSE) as f:
        gt = json.load(f)
    kps = CROWDPOSE_KEYPOINTS
    fit = completion_people(gt, split="fit", min_labelled=4, area_from_box=True)
    test = completion_people(gt, split="test", area_from_box=True)
    fit_full = fit.poses[fit.labelled.all(axis=1)]
    synth = synthetic_poses(kps, args.synthetic, seed=12345)
    print(
        f"fit: {len(fit)} people ({len(fit_full)} fully labelled); "
        f"test: {int(test.labelled.all(axis=1).sum())} fully labelled; synthetic {len(synth)}"
    )
    results: dict[str, dict] = {"crowdpose": {}, "coco_v1": {}}
    rows = {
        "none": no_completion,
        "mean pose (similarity)": nearest_pose(mean_pose(fit_full)),
        "nearest pose, fit split": nearest_pose(fit_full),
        "nearest pose, synthetic": nearest_pose(synth),
    }
    for name, complete in rows.items():
        t = time.time()
        results["crowdpose"][name] = evaluate_completer(complete, test, kps)
        print(f"{name}: {results['crowdpose'][name]['mean']} ({time.time() - t:.0f} s)")

    data = {
        "real": (fit.poses, fit.labelled),
        "real+synthetic": (
            np.concatenate([fit.poses, synth]),
            np.concatenate([fit.labelled, np.ones(synth.shape[:2], dtype=bool)]),
        ),
    }
    learned = {}
    for data_name, (poses, labelled) in data.items():
        for adv in (0.0, args.adversarial):
            for seed in args.seeds:
                recipe = CompletionRecipe(steps=args.steps, adversarial=adv)
                t = time.time()
                completer = train_pose_completer(poses, labelled, kps, recipe, seed=seed)
                name = f"learned, {data_name}, {'L1+GAN' if adv else 'L1'}, seed {seed}"
                results["crowdpose"][name] = evaluate_completer(completer.complete, test, kps)
                learned[name] = completer
                print(f"{name}: {results['crowdpose'][name]['mean']} ({time.time() - t:.0f} s)")

    # COCO-17: the real v=1 joints of the COCO sample, completers fitted without COCO.
    coco = json.loads(COCO_SAMPLE.read_text())
    cp_coco, cp_coco_lab = to_coco(fit.poses, fit.labelled)
    synth_coco = synthetic_poses(COCO_KEYPOINTS, args.synthetic, seed=12345)
    coco_rows = {
        "none": no_completion,
        "mean pose (similarity), synthetic": nearest_pose(mean_pose(synth_coco)),
        "nearest pose, synthetic": nearest_pose(synth_coco),
    }
    for name, complete in coco_rows.items():
        results["coco_v1"][name] = coco_v1_scores(complete, coco)
    coco_learned = {}
    for adv in (0.0, args.adversarial):
        for seed in args.seeds:
            recipe = CompletionRecipe(steps=args.steps, adversarial=adv)
            completer = train_pose_completer(
                np.concatenate([cp_coco, synth_coco]),
                np.concatenate([cp_coco_lab, np.ones(synth_coco.shape[:2], dtype=bool)]),
                COCO_KEYPOINTS,
                recipe,
                seed=seed,
            )
            name = f"learned, CrowdPose body + synthetic, {'L1+GAN' if adv else 'L1'}, seed {seed}"
            results["coco_v1"][name] = coco_v1_scores(completer.complete, coco)
            coco_learned[name] = completer
    for name, row in results["coco_v1"].items():
        print(f"COCO v=1 {name}: {row}")
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
