"""``occlupose occlude``: occluded copies of an annotated image folder, for any model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from occlupose.cli.app import app, sigterm_runs_cleanup
from occlupose.cli.status import status

console = Console(stderr=True)


class OccluderKind(str, Enum):
    textured = "textured"
    patches = "patches"
    mixed = "mixed"


def parse_rates(text: str, option: str) -> list[float]:
    """``0.1,0.2,0.3`` -> sorted distinct rates in [0, 1]; a BadParameter naming ``option``."""
    from occlupose.evaluation.occluded_dataset import check_rates

    try:
        rates = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, e.g. 0.1,0.2,0.3, got {text!r}", param_hint=option
        ) from None
    if not rates:
        raise typer.BadParameter("no rate given", param_hint=option)
    try:
        return check_rates(rates)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None


@app.command()
def occlude(
    ann: Annotated[Path, typer.Option("--ann", "-a", help="Ground truth in COCO format.")],
    images: Annotated[Path, typer.Option("--images", "-i", help="Folder of the annotated images.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output folder (one rateR/ folder per rate); outside --images."
        ),
    ],
    rates: Annotated[
        str,
        typer.Option(
            "--rates",
            help="Fractions of every person's visible keypoints to cover, in [0, 1].",
        ),
    ] = "0.1,0.2,0.3,0.4,0.5",
    seed: Annotated[
        int, typer.Option(help="Seed of the occluders (as eval --occlude --seed).")
    ] = 0,
    kind: Annotated[
        OccluderKind,
        typer.Option(
            "--kind",
            help="Occluder fill: random textures, patches of the same photo, or mixed.",
        ),
    ] = OccluderKind.textured,
    jpeg_quality: Annotated[
        int, typer.Option(min=1, max=100, help="Quality of re-encoded JPEG images.")
    ] = 95,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")
    ] = False,
) -> None:
    """Write copies of an image folder with a share of every person's keypoints occluded.

    For each rate R: OUT/rateR/images/ (same file names, so any model's predictor runs on it unchanged), OUT/rateR/annotations.json (the ground truth, unchanged) and OUT/rateR/manifest.json (rate, seed, and per person which keypoints were covered).

    Score a model's results on them with occlupose eval --results R0.json --curve 0.1=R1.json ... --occluded OUT.

    Images that cannot be read are named, left out of the copies and of their annotations.json, and the command exits with status 1.
    """  # noqa: E501 (one line per paragraph: the help output wraps them)
    from occlupose.utils.io import ensure_writable_dir

    if not images.is_dir():
        why = "is a file, not a folder" if images.exists() else "does not exist"
        raise typer.BadParameter(f"{images} {why}", param_hint="--images")
    ensure_writable_dir(out, "--out")  # a file or an unwritable folder: before any work
    with status(f"reading {ann}"):
        from occlupose.evaluation.inputs import EvaluationError, load_json
        from occlupose.evaluation.occluded_dataset import write_occluded_copies

        rate_list = parse_rates(rates, "--rates")
        try:
            ground_truth = load_json(ann)
        except EvaluationError as e:
            console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(1) from None
    try:
        num_images = len(ground_truth.get("images") or []) if isinstance(ground_truth, dict) else 0
        with (
            sigterm_runs_cleanup(),
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task(f"occluding at {len(rate_list)} rates", total=num_images)
            written = write_occluded_copies(
                ann,  # the file itself: its text is copied unchanged
                images,
                out,
                rate_list,
                seed=seed,
                kind=kind.value,
                jpeg_quality=jpeg_quality,
                overwrite=overwrite,
                on_image=lambda: progress.advance(task),
                gt_name=str(ann),
            )
    except EvaluationError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from None

    shares = ", ".join(f"{r:g}: {s:.3f}" for r, s in written.covered_share.items())
    console.print(
        f"wrote {written.num_images} images at {len(written.folders)} rates to {out} "
        f"(share of visible keypoints covered: {shares})"
    )
    if written.images_without_people:
        count = written.images_without_people
        console.print(
            f"{count} {'image has' if count == 1 else 'images have'} no person with a visible "
            "keypoint: copied unchanged at every rate"
        )
    for name, why in written.skipped:
        console.print(
            f"[red]error:[/red] {escape(str(images / name))}: {escape(why)}", soft_wrap=True
        )
    if written.skipped:
        first = next(iter(written.folders.values()))
        console.print(
            f"[red]{len(written.skipped)} of {written.num_images + len(written.skipped)} "
            "images could not be read (above)[/red]; the copies and their annotations.json "
            f"leave them out: evaluate against {escape(str(first / 'annotations.json'))}"
        )
        raise typer.Exit(1)
