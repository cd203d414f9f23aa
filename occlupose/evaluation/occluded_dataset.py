"""Occluded copies of an annotated image folder, for running any pose model on them.

:func:`write_occluded_copies` writes, for each occlusion rate, the image folder with
:func:`~occlupose.evaluation.controlled_occlusion.occlude_image` applied (the same
occluders, seeded by ``(seed, image id)``, as ``occlupose eval --weights ... --occlude``
pastes in memory), the unchanged ground truth and a manifest::

    OUT/rate0.10/images/<file_name>     same names as the input folder
    OUT/rate0.10/annotations.json       the ground truth, unchanged
    OUT/rate0.10/manifest.json          rate, seed, kind, and per person the covered keypoints

A model's predictor runs on ``OUT/rate0.10/images`` unchanged; its results are then
scored with ``occlupose eval --curve 0.1=RESULTS.json --occluded OUT``, which reads the
manifests to report how many of the covered keypoints were still found
(:func:`~occlupose.evaluation.occlusion.covered_keypoint_localisation`).

Image files that get no occluder (rate 0, no visible person) are copied byte for byte;
the others are re-encoded in their own format (JPEG at ``jpeg_quality``, 4:4:4 chroma).
The output appears in one step: it is built in a hidden sibling folder and renamed,
so an interrupted run leaves nothing under ``OUT``.

Manifest (``manifest.json``)::

    {"format": 1, "rate": 0.1, "seed": 0, "kind": "textured", "dataset": "coco",
     "keypoints": [names], "ground_truth": "<path given>", "image_ids": [...],
     "skipped": [{"file_name", "reason"}],       # images that could not be read
     "visible_keypoints": 1234, "covered_keypoints": 130, "covered_share": 0.105,
     "people": [{"annotation_id", "image_id", "visible": 17, "covered": [3, 9]}]}

``covered`` lists the indices (0-based, in ``keypoints`` order) of the person's visible
(``v = 2``) keypoints that lie under an occluder; ``visible`` counts its visible
keypoints inside the image. People without visible keypoints and crowd regions are
not listed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occlupose.data.image_io import ImageReadError, read_image
from occlupose.evaluation.controlled_occlusion import OCCLUDER_KINDS, occlude_image
from occlupose.evaluation.inputs import EvaluationError, load_ground_truth, load_json
from occlupose.structures.keypoint_set import KeypointSet, keypoint_set_from_coco_category
from occlupose.utils.io import staged_folder

__all__ = [
    "ANNOTATIONS_NAME",
    "IMAGES_DIR",
    "MANIFEST_NAME",
    "OccludedCopies",
    "check_rates",
    "covered_keypoints",
    "load_manifests",
    "rate_folder_name",
    "write_occluded_copies",
]

MANIFEST_NAME = "manifest.json"
ANNOTATIONS_NAME = "annotations.json"
IMAGES_DIR = "images"
MANIFEST_FORMAT = 1


@dataclass
class OccludedCopies:
    """What :func:`write_occluded_copies` wrote."""

    out_dir: Path
    folders: dict[float, Path]  # rate -> OUT/rateR
    num_images: int  # images written per rate
    covered_share: dict[float, float]  # rate -> covered / visible keypoints, all people
    images_without_people: int  # copied unchanged at every rate
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def rate_folder_name(rate: float) -> str:
    """``rate0.10`` for 0.1; more digits only where a rate has them (``rate0.125``)."""
    if abs(rate * 100 - round(rate * 100)) < 1e-9:
        return f"rate{rate:.2f}"
    return f"rate{rate:g}"


def check_rates(rates: Sequence[float]) -> list[float]:
    """Sorted, distinct rates; :class:`ValueError` naming the first one outside [0, 1]."""
    for rate in rates:
        if not (0.0 <= rate <= 1.0):  # also rejects NaN
            raise ValueError(f"occlusion rate {rate:g} is outside [0, 1]")
    return sorted(set(float(r) for r in rates))


def covered_keypoints(
    annotations: Sequence[Mapping], hidden: np.ndarray, image_size: tuple[int, int]
) -> list[dict[str, Any]]:
    """Per person with visible keypoints: its visible count and the visible ones now covered.

    Args:
        annotations: the image's COCO annotations, as given to ``occlude_image``.
        hidden: ``(N, J)`` bool, the mask ``occlude_image`` returned.
        image_size: ``(height, width)`` of the image (keypoints outside it are not
            visible, as in ``occlude_image``).

    Returns:
        ``[{"annotation_id", "image_id", "visible", "covered": [joint, ...]}, ...]``
    """
    height, width = image_size
    people = []
    for n, ann in enumerate(annotations):
        if ann.get("iscrowd", 0):
            continue
        kps = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        px, py = np.rint(kps[:, 0]), np.rint(kps[:, 1])
        visible = (kps[:, 2] == 2) & (px >= 0) & (px < width) & (py >= 0) & (py < height)
        if not visible.any():
            continue
        people.append(
            {
                "annotation_id": ann["id"],
                "image_id": ann["image_id"],
                "visible": int(visible.sum()),
                "covered": [int(j) for j in np.flatnonzero(visible & hidden[n])],
            }
        )
    return people


def _check_folders(image_dir: Path, out_dir: Path, overwrite: bool) -> None:
    if not image_dir.is_dir():
        raise EvaluationError(f"{image_dir}: image folder not found")
    images, out = image_dir.resolve(), out_dir.resolve()
    if out == images or images in out.parents:
        raise EvaluationError(
            f"{out_dir}: the output folder is inside the image folder {image_dir}; "
            "choose a folder outside it"
        )
    if out in images.parents:
        raise EvaluationError(
            f"{out_dir}: the output folder contains the image folder {image_dir}; "
            "choose a folder outside it"
        )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise EvaluationError(f"{out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()) and not overwrite:
            raise EvaluationError(
                f"{out_dir}: the output folder exists and is not empty "
                "(remove it, choose another, or pass --overwrite)"
            )


def _encode(path: Path, image_rgb: np.ndarray, jpeg_quality: int) -> bytes:
    suffix = path.suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    try:
        ok, data = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageReadError(path, f"OpenCV cannot write the format {suffix!r}")
    return data.tobytes()


def _file_path(root: Path, file_name: str) -> Path:
    path = (root / file_name).resolve()
    if root.resolve() not in path.parents:
        raise ImageReadError(root / file_name, "file_name points outside the image folder")
    return path


def write_occluded_copies(
    ground_truth: str | os.PathLike | Mapping[str, Any],
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    rates: Sequence[float],
    *,
    seed: int = 0,
    kind: str = "textured",
    keypoint_set: KeypointSet | None = None,
    jpeg_quality: int = 95,
    overwrite: bool = False,
    on_image: Callable[[], None] | None = None,
    gt_name: str | None = None,
) -> OccludedCopies:
    """Write a copy of ``image_dir`` occluded at each rate (layout: module docstring).

    Args:
        ground_truth: COCO-format keypoint annotations (path or parsed dict).
        image_dir: folder holding the images' ``file_name``.
        out_dir: output folder; must not exist, be empty, or (``overwrite``) is
            replaced; neither inside ``image_dir`` nor containing it.
        rates: occlusion rates in [0, 1] (fraction of each person's visible keypoints
            to cover).
        seed: seed of the occluders (combined with each image id).
        kind: ``"textured"``, ``"patches"`` or ``"mixed"`` (see ``occlude_image``).
        keypoint_set: the annotations' keypoints (default: from their category).
        jpeg_quality: quality of re-encoded JPEG files.
        overwrite: replace a non-empty ``out_dir``.
        on_image: called after each image (progress bars).
        gt_name: how messages and manifests call the ground truth (default: its path).

    Raises:
        EvaluationError: bad annotations, no visible person to occlude, a bad output
            folder, or no image could be read. Nothing is left under ``out_dir`` then.
        ValueError: a rate outside [0, 1] or an unknown ``kind``.

    Images that cannot be read are left out (with the reason in the result and in the
    manifests) and so are their annotations in the copied ground truth.
    """
    rates = check_rates(rates)
    if not rates:
        raise ValueError("no occlusion rates given")
    if kind not in OCCLUDER_KINDS:
        raise ValueError(f"occluder kind must be one of {', '.join(OCCLUDER_KINDS)}, got {kind!r}")
    names = [rate_folder_name(r) for r in rates]
    if len(set(names)) != len(names):
        raise ValueError(f"rates {rates} give the same folder name twice")
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    gt_path = Path(ground_truth) if isinstance(ground_truth, str | os.PathLike) else None
    gt_name = gt_name or (str(gt_path) if gt_path else "<ground truth>")
    data = load_json(gt_path) if gt_path is not None else ground_truth
    if not isinstance(data, Mapping) or not data.get("categories"):
        raise EvaluationError(f"{gt_name}: ground truth has no categories")
    if keypoint_set is None:
        try:
            keypoint_set = keypoint_set_from_coco_category(data["categories"][0])
        except ValueError as e:
            raise EvaluationError(f"{gt_name}: {e}") from None
    load_ground_truth(data, keypoint_set, name=gt_name)  # every entry checked first
    _check_folders(image_dir, out_dir, overwrite)

    by_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = sorted(data["images"], key=lambda im: im["id"])
    if not any(
        not ann.get("iscrowd", 0) and any(v == 2 for v in ann["keypoints"][2::3])
        for ann in data["annotations"]
    ):
        raise EvaluationError(
            f"{gt_name}: no person has a visible (v=2) keypoint, so there is nothing to occlude"
        )

    with staged_folder(out_dir, overwrite=overwrite) as staging:
        folders = {rate: staging / name for rate, name in zip(rates, names, strict=True)}
        for folder in folders.values():
            (folder / IMAGES_DIR).mkdir(parents=True)
        people: dict[float, list[dict]] = {rate: [] for rate in rates}
        written, skipped, without_people = [], [], 0
        for entry in images:
            file_name = str(entry.get("file_name", ""))
            try:
                source = _file_path(image_dir, file_name)
                image = read_image(source)
                anns = by_image.get(entry["id"], [])
                nothing = np.zeros((len(anns), keypoint_set.num_keypoints), dtype=bool)
                uncovered = covered_keypoints(anns, nothing, image.shape[:2])
                has_people = bool(uncovered)
                outputs, found = {}, {}
                for rate in rates:
                    if rate == 0.0 or not has_people:
                        outputs[rate], found[rate] = None, uncovered
                        continue
                    occluded, hidden = occlude_image(
                        image, anns, rate, seed, keypoint_set, image_id=entry["id"], kind=kind
                    )
                    outputs[rate] = _encode(source, occluded, jpeg_quality)
                    found[rate] = covered_keypoints(anns, hidden, image.shape[:2])
            except ImageReadError as error:
                skipped.append((file_name, error.reason))
            else:
                without_people += not has_people
                for rate, folder in folders.items():
                    target = folder / IMAGES_DIR / file_name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if outputs[rate] is None:
                        shutil.copyfile(source, target)
                    else:
                        target.write_bytes(outputs[rate])
                    people[rate] += found[rate]
                written.append(entry["id"])
            if on_image is not None:
                on_image()
        if not written:
            shown = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
            raise EvaluationError(
                f"{image_dir}: none of the annotated images could be read ({shown})"
            )

        gt_text = _ground_truth_text(data, gt_path, set(written), bool(skipped))
        covered_share = {}
        for rate, folder in folders.items():
            (folder / ANNOTATIONS_NAME).write_text(gt_text, encoding="utf-8")
            visible = sum(p["visible"] for p in people[rate])
            covered = sum(len(p["covered"]) for p in people[rate])
            covered_share[rate] = covered / visible if visible else 0.0
            manifest = {
                "format": MANIFEST_FORMAT,
                "rate": rate,
                "seed": int(seed),
                "kind": kind,
                "dataset": keypoint_set.name,
                "keypoints": list(keypoint_set.keypoint_names),
                "ground_truth": gt_name,
                "image_ids": written,
                "skipped": [{"file_name": n, "reason": why} for n, why in skipped],
                "visible_keypoints": visible,
                "covered_keypoints": covered,
                "covered_share": covered_share[rate],
                "people": people[rate],
            }
            (folder / MANIFEST_NAME).write_text(_manifest_text(manifest), encoding="utf-8")
    return OccludedCopies(
        out_dir=out_dir,
        folders={rate: out_dir / name for rate, name in zip(rates, names, strict=True)},
        num_images=len(written),
        covered_share=covered_share,
        images_without_people=without_people,
        skipped=skipped,
    )


def _ground_truth_text(
    data: Mapping[str, Any], gt_path: Path | None, written: set, any_skipped: bool
) -> str:
    """The ground truth as it was (the file's own text when it is plain JSON), less the
    images that were skipped and their annotations."""
    if gt_path is not None and gt_path.suffix == ".json" and not any_skipped:
        return gt_path.read_text(encoding="utf-8")
    kept = dict(data)
    kept["images"] = [im for im in data["images"] if im["id"] in written]
    kept["annotations"] = [a for a in data["annotations"] if a["image_id"] in written]
    return json.dumps(kept)


def _manifest_text(manifest: Mapping[str, Any]) -> str:
    """JSON with one line per field and per person (readable, and diffs well)."""
    lines = []
    for key, value in manifest.items():
        if key == "people":
            rows = ",\n".join(f"    {json.dumps(person)}" for person in value)
            lines.append(f'  "people": [\n{rows}\n  ]' if rows else '  "people": []')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load_manifests(path: str | os.PathLike) -> dict[float, dict[str, Any]]:
    """The manifests under a folder written by :func:`write_occluded_copies`, by rate.

    ``path`` may be that folder, one of its ``rateR`` folders or a ``manifest.json``.
    Raises :class:`EvaluationError` when there is none or one is malformed.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
    elif (path / MANIFEST_NAME).is_file():
        files = [path / MANIFEST_NAME]
    elif path.is_dir():
        files = sorted(path.glob(f"*/{MANIFEST_NAME}"))
    else:
        raise EvaluationError(f"{path}: not found")
    if not files:
        raise EvaluationError(
            f"{path}: no {MANIFEST_NAME} in it or its sub-folders "
            "(expected the folder written by occlupose occlude)"
        )
    manifests: dict[float, dict[str, Any]] = {}
    for file in files:
        manifest = load_json(file)
        ok = isinstance(manifest, Mapping) and manifest.get("format") == MANIFEST_FORMAT
        ok = ok and isinstance(manifest.get("rate"), int | float)
        ok = ok and isinstance(manifest.get("people"), list)
        ok = ok and isinstance(manifest.get("image_ids"), list)
        if not ok:
            raise EvaluationError(f"{file}: not an occlupose occlusion manifest")
        rate = float(manifest["rate"])
        if rate in manifests:
            raise EvaluationError(f"{file}: a second manifest for rate {rate:g} under {path}")
        manifests[rate] = {**manifest, "path": str(file)}
    return manifests
