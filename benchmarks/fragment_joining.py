"""Joining the pieces of occluded people (``DecodeSettings.join_fragments``): AP with and
without it, its threshold, its cost.

The bundled model runs once per image (flip test); the same merged maps are then decoded
with joining off and at several ``join_similarity`` thresholds, with the learned
completer and with the stored pose prior, so every row sees identical network outputs.
Data sets, all from ``occlupose synth`` at 256 px (image ``i`` of seed ``s`` is the same
whatever the number of images):

* ``training``: the first 400 images of seed 0, the bundled model's training split,
  where the default threshold is chosen;
* ``held-out``: seed 1, the 200 images every other benchmark validates on;
* ``medium`` and ``high``: 200 fresh scenes each (seeds 3 and 4) at those occlusion levels.

Decoding time per image (join + completion, grouping included) is measured for the
default against joining off, the two interleaved image by image.

    python benchmarks/fragment_joining.py --out docs/fragment_joining.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from occlupose.data.image_io import read_image
from occlupose.data.synthetic.generate import generate_dataset
from occlupose.decode import DecodeSettings, decode_people, load_completer
from occlupose.evaluation import evaluate_people
from occlupose.inference import Predictor, PredictorOptions
from occlupose.utils.io import atomic_write_json

# name -> (seed, images, occlusion)
DATA = {
    "training": (0, 400, "mixed"),
    "held-out": (1, 200, "mixed"),
    "medium": (3, 200, "medium"),
    "high": (4, 200, "high"),
}
THRESHOLDS = (0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
DEFAULT = DecodeSettings()


def variants() -> dict[str, tuple[str, DecodeSettings]]:
    """label -> (completer, decode settings)."""
    rows = {"learned, not joined": ("learned", DecodeSettings(join_fragments=False))}
    for threshold in THRESHOLDS:
        mark = " (default)" if threshold == DEFAULT.join_similarity else ""
        settings = DecodeSettings(join_similarity=threshold)
        rows[f"learned, joined at {threshold}{mark}"] = ("learned", settings)
    rows["prior, not joined"] = ("prior", DecodeSettings(join_fragments=False))
    rows[f"prior, joined at {DEFAULT.join_similarity}"] = ("prior", DEFAULT)
    return rows


def measure(predictor: Predictor, completers: dict, folder: Path, gt: dict) -> dict:
    """AP of every variant on one data set, and decoding times of the default vs off."""
    rows = variants()
    people: dict[str, dict[int, list]] = {label: {} for label in rows}
    timed = {  # row label -> name in decode_ms: the learned completer, off and default
        label: "not joined" if not settings.join_fragments else "joined"
        for label, (completer, settings) in rows.items()
        if completer == "learned" and (settings == DEFAULT or not settings.join_fragments)
    }
    seconds: dict[str, list[float]] = {name: [] for name in timed.values()}
    for image in track(gt["images"], description=folder.name, transient=True):
        maps, to_image = predictor.maps(read_image(folder / "images" / image["file_name"]))
        for label, (completer, settings) in rows.items():
            start = time.perf_counter()
            found = decode_people(
                maps,
                predictor.keypoint_set,
                settings,
                to_image=to_image,
                pose_prior=completers[completer],
            )
            if label in timed:
                seconds[timed[label]].append(time.perf_counter() - start)
            people[label][image["id"]] = found
    result = {"images": len(gt["images"]), "people": len(gt["annotations"]), "AP": {}}
    for label in rows:
        report = evaluate_people(people[label], gt, "coco")
        bins = report["bins"].get("occlusion_rate") or []
        result["AP"][label] = {
            "AP": report["metrics"]["AP"],
            "bins": {b["label"]: b["AP"] for b in bins},
        }
    result["decode_ms"] = {k: 1000 * float(np.mean(v)) for k, v in seconds.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("fragment_joining.json"))
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(options=PredictorOptions(completion="none"))
    prior = Predictor.from_pretrained(options=PredictorOptions(completion="prior")).completer
    completers = {"learned": load_completer("coco"), "prior": prior}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            seed, count, occlusion = DATA[name]
            folder = Path(tmp) / name
            gt_path = generate_dataset(
                folder, count, seed=seed, size=256, occlusion=occlusion, progress=False
            )
            gt = json.loads(Path(gt_path).read_text())
            results[name] = {"seed": seed, "occlusion": occlusion}
            results[name].update(measure(predictor, completers, folder, gt))

    console = Console(width=160)
    table = Table(title="AP of the bundled model (flip test), same maps decoded each way")
    table.add_column("decoding")
    for name in results:
        table.add_column(f"{name} ({results[name]['images']} images)", justify="right")
    for label in variants():
        table.add_row(label, *(f"{results[n]['AP'][label]['AP']:.4f}" for n in results))
    console.print(table)
    for name, result in results.items():
        times = result["decode_ms"]
        console.print(
            f"{name}: decoding {times['not joined']:.1f} ms per image not joined, "
            f"{times['joined']:.1f} ms joined (learned completer, grouping included)"
        )
    atomic_write_json(args.out, results, indent=1)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
