"""``occlupose eval``: evaluate keypoint results files, side by side, with occlusion analyses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from occlupose.cli.app import EXIT_STATUS, app

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
    from occlupose.evaluation.inputs import (
        EvaluationError,
        check_ground_truth,
        load_json,
        subset_ground_truth,
    )
    from occlupose.evaluation.occlusion import DEFAULT_OCCLUSION_BINS, DEFAULT_OVERLAP_BINS
    from occlupose.evaluation.report import report_models
    from occlupose.structures.keypoint_set import get_keypoint_set
    from occlupose.utils.io import ensure_writable_dir

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
    failed = False
    try:
        ground_truth, skipped = check_ground_truth(load_json(ann), str(ann), lenient=lenient)
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
        if weights is not None:
            run, predicted, failures = _run_model(
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
        else:
            results_per_model = {model_name: str(results)}
        for entry in compare or []:
            other, path = _split_pair(entry, "--compare")
            if other in results_per_model:
                raise typer.BadParameter(f"model name {other!r} used twice", param_hint="--compare")
            results_per_model[other] = path
        precomputed = dict(_load_sweep(entry) for entry in sweep or [])
        report_models(
            ground_truth,
            results_per_model,
            dataset_name,
            gt_name=str(ann),
            out_dir=out,
            curves={**_parse_curve(curve or [], model_name), **model_curves},
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
    try:
        rates = [float(r) for r in text.split(",")] if text else []
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated rates such as 0.1,0.3, got {text!r}",
            param_hint="--occlude",
        ) from None
    if any(not 0 <= r <= 1 for r in rates):
        raise typer.BadParameter(f"rates must lie in [0, 1], got {text!r}", param_hint="--occlude")
    return rates


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
) -> tuple[dict[float, list], list, list[tuple[Path, str]]]:
    """Results of the model at occlusion rate 0 and each of ``rates``, saved to ``out``;
    the ids of the images it ran on, and the images that could not be read."""
    from rich.progress import Progress

    from occlupose.cli.predict import load_predictor
    from occlupose.inference.dataset import dataset_images, predict_dataset
    from occlupose.utils.io import atomic_write_json

    with error_console.status("loading the model"):
        predictor = load_predictor(
            weights,
            preset,
            dataset_name,
            device=device,
            flip=flip,
            scales=scales,
            decoding=decoding,
            use_pose_prior=use_pose_prior,
        )
    entries = dataset_images(ground_truth, limit)
    num_images = len(entries)
    runs: dict[float, list] = {}
    failures: list[tuple[Path, str]] = []
    with Progress(console=error_console) as progress:
        for rate in [0.0, *[r for r in rates if r != 0.0]]:
            task = progress.add_task(f"occlusion {rate:.2f}", total=num_images)
            found, failed = predict_dataset(
                predictor,
                ground_truth,
                images,
                occlusion_rate=rate,
                seed=seed,
                limit=limit,
                on_image=lambda task=task: progress.advance(task),
            )
            if rate == 0.0:  # the same images fail at every rate
                failures = failed
                for path, why in failed:
                    progress.console.print(
                        f"[yellow]skipped {escape(str(path))}: {escape(why)}[/yellow]",
                        soft_wrap=True,
                    )
            runs[rate] = found
            atomic_write_json(out / f"results_occlusion{rate:.2f}.json", found)
    unread = {path for path, _ in failures}
    predicted = [e["id"] for e in entries if images / e["file_name"] not in unread]
    return runs, predicted, failures


def _print_error(message: str) -> None:
    # soft_wrap keeps file paths on one line so they can be copied.
    error_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
