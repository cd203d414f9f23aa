"""``occlupose eval``: evaluate keypoint results files, side by side, with occlusion analyses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from occlupose.cli.app import EXIT_STATUS, app
from occlupose.cli.status import status

# The evaluation stack (numpy, pycocotools, torch) is imported inside the functions
# that use it, so that ``occlupose --help`` does not load it.

console = Console()
error_console = Console(stderr=True)


def _split_pair(text: str, option: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise typer.BadParameter(f"expected NAME=PATH, got {text!r}", param_hint=option)
    return name, path


def _parse_curve(entries: list[str], default_name: str) -> dict[str, dict[float, str]]:
    """``[NAME:]RATE=PATH`` entries -> {name: {rate: path}}."""
    curves: dict[str, dict[float, str]] = {}
    for entry in entries:
        key, path = _split_pair(entry, "--curve")
        name, _, rate_text = key.rpartition(":")
        try:
            rate = float(rate_text)
        except ValueError:
            raise typer.BadParameter(
                f"expected [NAME:]RATE=PATH with a numeric RATE, got {entry!r}",
                param_hint="--curve",
            ) from None
        if not 0.0 <= rate <= 1.0:
            raise typer.BadParameter(
                f"occlusion rate {rate:g} in {entry!r} is outside [0, 1]", param_hint="--curve"
            )
        curves.setdefault(name or default_name, {})[rate] = path
    return curves


def _parse_edges(text: str | None, option: str):
    from occlupose.evaluation.occlusion import bins_from_edges

    if text is None:
        return None
    try:
        return bins_from_edges([float(v) for v in text.split(",")])
    except ValueError as e:
        message = f"{e} (expected comma-separated edges)"
        raise typer.BadParameter(message, param_hint=option) from None


def _infer_dataset(ground_truth: dict, ann_path: str) -> str:
    from occlupose.evaluation.inputs import EvaluationError
    from occlupose.structures.keypoint_set import (
        COCO_KEYPOINTS,
        CROWDPOSE_KEYPOINTS,
        keypoint_set_from_coco_category,
    )

    categories = ground_truth.get("categories") if isinstance(ground_truth, dict) else None
    if not categories:
        raise EvaluationError(f"{ann_path}: ground truth has no categories")
    try:
        keypoint_set = keypoint_set_from_coco_category(categories[0])
    except ValueError as e:
        raise EvaluationError(f"{ann_path}: {e}") from None
    if keypoint_set in (COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS):
        return keypoint_set.name
    raise EvaluationError(
        f"{ann_path}: keypoints {list(keypoint_set.keypoint_names)} are neither COCO's nor "
        "CrowdPose's; register a KeypointSet with its OKS sigmas and pass --dataset NAME"
    )


def _covered_from_manifests(
    path: Path, ground_truth: dict, ann_path: str, rates: set[float]
) -> dict[float, dict[int, list[int]]]:
    """Covered keypoints per rate from ``occlupose occlude`` manifests, checked against
    the ground truth and the rates the curves need."""
    from occlupose.evaluation.inputs import EvaluationError
    from occlupose.evaluation.occluded_dataset import load_manifests

    manifests = load_manifests(path)
    images = ground_truth.get("images") if isinstance(ground_truth, dict) else None
    gt_images = {im.get("id") for im in images or [] if isinstance(im, dict)}
    gt_people = {
        a.get("id"): a.get("image_id")
        for a in ground_truth.get("annotations") or []
        if isinstance(a, dict)
    }
    covered = {}
    for rate, manifest in manifests.items():
        where = manifest["path"]
        occluded = set(manifest["image_ids"])
        if occluded != gt_images:
            missing = sorted(gt_images - occluded, key=str)
            extra = sorted(occluded - gt_images, key=str)
            if missing:
                detail = f"{len(missing)} ground-truth images are not in it (e.g. {missing[0]})"
            else:
                detail = f"it has {len(extra)} images not in the ground truth (e.g. {extra[0]})"
            hint = (
                f" (skipped when it was written: evaluate against "
                f"{Path(where).parent / 'annotations.json'})"
                if missing and manifest.get("skipped")
                else ""
            )
            raise EvaluationError(
                f"{where}: the occluded set does not match the ground truth {ann_path}: "
                f"{detail}{hint}"
            )
        for person in manifest["people"]:
            if gt_people.get(person.get("annotation_id")) != person.get("image_id"):
                raise EvaluationError(
                    f"{where}: person {person.get('annotation_id')} of image "
                    f"{person.get('image_id')} is not in the ground truth {ann_path}; "
                    "the manifest was written from other annotations"
                )
        covered[rate] = {p["annotation_id"]: p["covered"] for p in manifest["people"]}
    missing_rates = sorted(r for r in rates if r > 0 and r not in covered)
    if missing_rates:
        raise EvaluationError(
            f"{path}: no manifest for occlusion rate {missing_rates[0]:g} "
            f"(it has {', '.join(f'{r:g}' for r in sorted(covered))}); "
            "were the results made on images occluded with another --rates?"
        )
    return covered


def _load_sweep(entry: str) -> tuple[str, list]:
    """``NAME=REPORT.json``: the curve stored under that name (or the only one) in a report."""
    from occlupose.evaluation.inputs import EvaluationError, load_json

    name, path = _split_pair(entry, "--sweep")
    data = load_json(path)
    stored = data.get("controlled_occlusion") if isinstance(data, dict) else None
    if not isinstance(stored, dict) or not stored:
        raise EvaluationError(f"{path}: no 'controlled_occlusion' curves in this report")
    if name in stored:
        return name, stored[name]
    if len(stored) == 1:
        return name, next(iter(stored.values()))
    raise EvaluationError(f"{path}: no curve named {name!r}; it has {', '.join(stored)}")


@app.command("eval", epilog=EXIT_STATUS)
def evaluate(
    ann: Annotated[
        Path, typer.Option("--ann", "-a", help="Ground-truth annotations in COCO format.")
    ],
    results: Annotated[
        Path | None,
        typer.Option("--results", "-r", help="COCO keypoint results JSON (.json/.json.gz)."),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", "-w", help="Run this model on --images instead of reading --results."
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Preset of an official checkpoint.")
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", "-i", help="Image folder of the annotations.")
    ] = None,
    occlude: Annotated[
        str | None,
        typer.Option(
            "--occlude",
            help="With --weights: also evaluate under controlled occlusion at these rates, "
            "e.g. 0.1,0.2,0.3,0.4,0.5 (AP-vs-occlusion curve).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the controlled occlusion.")] = 0,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --weights: only the first N images (by id), and only they are scored.",
        ),
    ] = None,
    lenient: Annotated[
        bool,
        typer.Option(
            "--lenient",
            help="Skip bad ground-truth entries (duplicate ids, annotations of unknown "
            "images, NaN/infinite or negative numbers) with a count, instead of stopping.",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="With --weights: cpu, cuda, ...")] = "cpu",
    pose_prior: Annotated[
        bool,
        typer.Option(
            "--pose-prior/--no-pose-prior",
            help="With --weights: complete people with the pose prior saved with them, if any.",
        ),
    ] = True,
    flip: Annotated[
        bool, typer.Option("--flip/--no-flip", help="With --weights: flip test.")
    ] = True,
    scales: Annotated[
        list[float] | None,
        typer.Option(
            "--scale",
            help="With --weights: test scale, repeatable (multi-scale test, e.g. "
            "--scale 1 --scale 2; default 1).",
        ),
    ] = None,
    decoding: Annotated[
        str,
        typer.Option(
            "--decoding",
            help="With --weights: official (HigherHRNet's published test path, every "
            "person kept), occlupose, or auto (the checkpoint's: official for official "
            "checkpoints and HigherHRNet presets).",
        ),
    ] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="With --weights: auto (bfloat16 where the CPU has bfloat16 instructions, "
            "except for official decoding), fp32 or bf16.",
        ),
    ] = "auto",
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="With --weights: torch, or onnxruntime (the exported network, float32, CPU).",
        ),
    ] = "torch",
    completion: Annotated[
        str,
        typer.Option(
            "--completion",
            help="With --weights: fill in joints that were not found with learned (the "
            "bundled pose completer), prior (the pose prior saved with the weights), none, "
            "or auto (learned, except with official decoding).",
        ),
    ] = "auto",
    join_fragments: Annotated[
        bool,
        typer.Option(
            "--join-fragments/--no-join-fragments",
            help="With --weights: join the pieces limb grouping splits an occluded person "
            "into, where the completer places the person's missing joints.",
        ),
    ] = True,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="coco, crowdpose or a registered keypoint set "
            "(default: recognised from the annotation file).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder for report.json and the plots "
            "(default: <results name>_eval next to the results file).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the model in tables and plots.")
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="NAME=RESULTS.json of another model, shown side by side."),
    ] = None,
    curve: Annotated[
        list[str] | None,
        typer.Option(
            "--curve",
            help="[NAME:]RATE=RESULTS.json: results on the images occluded at RATE "
            "(controlled occlusion); NAME defaults to the main model.",
        ),
    ] = None,
    occluded: Annotated[
        Path | None,
        typer.Option(
            "--occluded",
            help="With --curve: the folder written by occlupose occlude; reports the share "
            "of the covered keypoints each model still localised.",
        ),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="NAME=REPORT.json: an occlusion curve evaluated before "
            "(the controlled_occlusion part of an earlier report).",
        ),
    ] = None,
    occlusion_bins: Annotated[
        str | None,
        typer.Option("--occlusion-bins", help="Edges of the occlusion-rate bins, e.g. 0,0.2,0.4."),
    ] = None,
    overlap_bins: Annotated[
        str | None,
        typer.Option("--overlap-bins", help="Edges of the overlap (box IoU) bins, e.g. 0,0.1,0.3."),
    ] = None,
) -> None:
    """Evaluate keypoint results: COCO/CrowdPose AP, AP per occlusion bin, keypoint-level rates.

    Writes a rich table to the terminal, report.json with every number and PNG plots.
    """
    from occlupose.utils.io import ensure_writable_dir, exclusive_output

    if (results is None) == (weights is None):
        raise typer.BadParameter("give either --results or --weights (with --images)")
    if weights is not None and images is None:
        raise typer.BadParameter("--weights needs --images, the folder of the annotated images")
    if weights is not None and not images.is_dir():
        why = "is a file, not a folder" if images.exists() else "does not exist"
        raise typer.BadParameter(f"{images} {why}", param_hint="--images")
    rates = _parse_rates(occlude)
    source = results if results is not None else Path(weights)
    model_name = name or source.stem
    out = out or source.with_name(f"{source.stem}_eval")
    ensure_writable_dir(out, "--out")  # before any (long) work
    # One run writes its report and results at a time, so that runs into the same folder
    # at once leave one complete set, never a report of one beside results of another.
    with exclusive_output(
        out,
        on_wait=lambda: error_console.print(
            f"waiting for another run writing to {escape(str(out))} ...", soft_wrap=True
        ),
    ):
        failed = False
        with status(f"reading {ann}"):
            from occlupose.evaluation.inputs import (
                EvaluationError,
                check_ground_truth,
                load_json,
                subset_ground_truth,
            )
            from occlupose.evaluation.occlusion import DEFAULT_OCCLUSION_BINS, DEFAULT_OVERLAP_BINS
            from occlupose.evaluation.report import report_models
            from occlupose.structures.keypoint_set import get_keypoint_set

            try:
                ground_truth, skipped = check_ground_truth(
                    load_json(ann), str(ann), lenient=lenient
                )
            except EvaluationError as e:
                _print_error(str(e))
                raise typer.Exit(1) from None
        try:
            if skipped:
                counts = "; ".join(f"{n} x {reason}" for reason, n in skipped.items())
                error_console.print(
                    f"[yellow]--lenient: skipped {sum(skipped.values())} entries of "
                    f"{escape(str(ann))}: {escape(counts)}[/yellow]",
                    soft_wrap=True,
                )
            dataset_name = dataset or _infer_dataset(ground_truth, str(ann))
            get_keypoint_set(dataset_name)
            model_curves: dict[str, dict[float, object]] = {}
            covered_per_model: dict[str, dict] = {}
            if weights is not None:
                run, run_covered, predicted, failures = _run_model(
                    weights,
                    preset,
                    dataset_name,
                    ground_truth,
                    images,
                    rates,
                    seed,
                    limit,
                    device,
                    out,
                    use_pose_prior=pose_prior,
                    flip=flip,
                    scales=scales or [1.0],
                    decoding=decoding,
                    precision=precision,
                    runtime=runtime,
                    completion=completion,
                    join_fragments=join_fragments,
                )
                # Only the images the model ran on are scored (--limit, unreadable images):
                # the others' people would count as missed.
                attempted = len(predicted) + len(failures)
                if not predicted:
                    path, why = failures[0]
                    raise EvaluationError(
                        f"--images {images}: none of the {attempted} images of {ann} could be "
                        f"read (first: {path}: {why})"
                    )
                total = len(ground_truth["images"])
                if len(predicted) < total:
                    ground_truth = subset_ground_truth(ground_truth, predicted)
                    why = [f"--limit {limit}"] if limit is not None and limit < total else []
                    if failures:
                        why.append(f"{len(failures)} could not be read")
                    error_console.print(
                        f"scoring the {len(predicted)} images the model ran on, of {total} in "
                        f"{escape(str(ann))} ({escape(', '.join(why))})",
                        soft_wrap=True,
                    )
                failed = bool(failures)
                results_per_model = {model_name: run.pop(0.0)}
                if run:
                    model_curves[model_name] = {0.0: results_per_model[model_name], **run}
                    covered_per_model[model_name] = run_covered
            else:
                results_per_model = {model_name: str(results)}
            for entry in compare or []:
                other, path = _split_pair(entry, "--compare")
                if other in results_per_model:
                    raise typer.BadParameter(
                        f"model name {other!r} used twice", param_hint="--compare"
                    )
                results_per_model[other] = path
            precomputed = dict(_load_sweep(entry) for entry in sweep or [])
            curves = _parse_curve(curve or [], model_name)
            for other, per_rate in curves.items():
                if other in results_per_model:  # results on the unoccluded images: rate 0
                    per_rate.setdefault(0.0, results_per_model[other])
            covered = None
            if occluded is not None:
                if not curves:
                    raise typer.BadParameter(
                        "--occluded needs --curve RATE=RESULTS.json "
                        "(results on the occluded images)",
                        param_hint="--occluded",
                    )
                needed = {rate for per_rate in curves.values() for rate in per_rate}
                covered = _covered_from_manifests(occluded, ground_truth, str(ann), needed)
            report_models(
                ground_truth,
                results_per_model,
                dataset_name,
                gt_name=str(ann),
                out_dir=out,
                curves={**curves, **model_curves},
                covered=covered,
                covered_per_model=covered_per_model,
                precomputed_curves=precomputed,
                console=console,
                occlusion_bins=_parse_edges(occlusion_bins, "--occlusion-bins")
                or DEFAULT_OCCLUSION_BINS,
                overlap_bins=_parse_edges(overlap_bins, "--overlap-bins") or DEFAULT_OVERLAP_BINS,
            )
        except KeyError as e:  # unknown --dataset name
            _print_error(str(e.args[0]))
            raise typer.Exit(2) from None
        except EvaluationError as e:
            _print_error(str(e))
            raise typer.Exit(1) from None
        if failed:
            raise typer.Exit(1)


def _parse_rates(text: str | None) -> list[float]:
    """``--occlude 0.1,0.3``: the rates (none without the option)."""
    from occlupose.cli.occlude import parse_rates

    return parse_rates(text, "--occlude") if text else []


def _run_model(
    weights: str,
    preset: str | None,
    dataset_name: str,
    ground_truth: dict,
    images: Path,
    rates: list[float],
    seed: int,
    limit: int | None,
    device: str,
    out: Path,
    *,
    use_pose_prior: bool = True,
    flip: bool = True,
    scales: Sequence[float] = (1.0,),
    decoding: str = "auto",
    precision: str = "auto",
    runtime: str = "torch",
    completion: str = "auto",
    join_fragments: bool = True,
) -> tuple[dict[float, list], dict[float, dict[int, list[int]]], list, list[tuple[Path, str]]]:
    """Results of the model at occlusion rate 0 and each of ``rates``, saved to ``out``; the
    keypoints covered at each rate (annotation id -> keypoint indices); the ids of the
    images it ran on, and the images that could not be read."""
    from rich.progress import Progress

    from occlupose.cli.predict import load_predictor
    from occlupose.evaluation.occluded_dataset import covered_keypoints
    from occlupose.inference.dataset import dataset_images, predict_dataset
    from occlupose.utils.io import atomic_write_json

    with status("loading the model"):
        predictor = load_predictor(
            weights,
            preset,
            dataset_name,
            device=device,
            flip=flip,
            scales=scales,
            decoding=decoding,
            precision=precision,
            runtime=runtime,
            use_pose_prior=use_pose_prior,
            completion=completion,
            join_fragments=join_fragments,
        )
    entries = dataset_images(ground_truth, limit)
    num_images = len(entries)
    runs: dict[float, list] = {}
    covered: dict[float, dict[int, list[int]]] = {}
    failures: list[tuple[Path, str]] = []
    with Progress(console=error_console) as progress:
        for rate in [0.0, *[r for r in rates if r != 0.0]]:
            task = progress.add_task(f"occlusion {rate:.2f}", total=num_images)
            covered_here: dict[int, list[int]] = {}

            def note(annotations, hidden, image_size, covered_here=covered_here):
                for person in covered_keypoints(annotations, hidden, image_size):
                    covered_here[person["annotation_id"]] = person["covered"]

            found, failed = predict_dataset(
                predictor,
                ground_truth,
                images,
                occlusion_rate=rate,
                seed=seed,
                limit=limit,
                on_image=lambda task=task: progress.advance(task),
                on_occlusion=note,
            )
            if rate == 0.0:  # the same images fail at every rate
                failures = failed
                for path, why in failed:
                    progress.console.print(
                        f"[yellow]skipped {escape(str(path))}: {escape(why)}[/yellow]",
                        soft_wrap=True,
                    )
            runs[rate] = found
            if rate:
                covered[rate] = covered_here
            atomic_write_json(out / f"results_occlusion{rate:.2f}.json", found)
    unread = {path for path, _ in failures}
    predicted = [e["id"] for e in entries if images / e["file_name"] not in unread]
    return runs, covered, predicted, failures


def _print_error(message: str) -> None:
    # soft_wrap keeps file paths on one line so they can be copied.
    error_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
