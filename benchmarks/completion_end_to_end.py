"""The bundled model on the synthetic benchmark with completion none / prior / learned.

Same weights, same held-out images (``occlupose synth --num-images 200 --seed 1 --size 256
--occlusion mixed``, as ``benchmarks/train_synthetic.py`` validates), flip test on; only
the completion step of the decoder differs. Prints AP, AP per annotated occlusion bin and
the keypoint-level rates (share of visible / hidden joints localised).

    python benchmarks/completion_end_to_end.py --out completion_end_to_end.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from occlupose.data.image_io import read_image
from occlupose.data.synthetic.generate import generate_dataset
from occlupose.evaluation import evaluate_people
from occlupose.inference import Predictor, PredictorOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("completion_end_to_end.json"))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = generate_dataset(
            tmp, args.images, seed=1, size=256, occlusion="mixed", progress=False
        )
        gt = json.loads(gt_path.read_text())
        images = {
            im["id"]: read_image(Path(tmp) / "images" / im["file_name"]) for im in gt["images"]
        }
        for completion in ("none", "prior", "learned"):
            predictor = Predictor.from_pretrained(options=PredictorOptions(completion=completion))
            t = time.time()
            people = {i: predictor.predict(image) for i, image in images.items()}
            report = evaluate_people(people, gt, "coco")
            row = {
                "AP": report["metrics"]["AP"],
                "bins": report["bins"].get("occlusion_rate"),
                "keypoints": report["keypoints"],
                "seconds": time.time() - t,
            }
            results[completion] = row
            print(completion, json.dumps({k: row[k] for k in ("AP", "bins")}), flush=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
