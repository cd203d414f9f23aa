"""``occlupose synth``: render the synthetic occlusion benchmark."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from occlupose.cli.app import EXIT_STATUS, app, sigterm_runs_cleanup
from occlupose.cli.status import status

console = Console()


class SynthFormat(str, Enum):
    coco = "coco"
    crowdpose = "crowdpose"


class OcclusionChoice(str, Enum):
    none = "none"
    low = "low"
    medium = "medium"
    high = "high"
    mixed = "mixed"


class ImageFormat(str, Enum):
    png = "png"
    jpg = "jpg"


def occlusion_table(histogram: dict[str, dict[str, float]], title: str) -> Table:
    """Rich table of :func:`~occlupose.data.synthetic.annotations.occlusion_histogram`."""
    from occlupose.data.synthetic.annotations import OCCLUSION_BINS
    from occlupose.data.synthetic.scene import OCCLUSION_LEVELS

    table = Table(title=title, caption="share of people per occlusion-rate bin (#v=1 / #v>0)")
    table.add_column("level")
    table.add_column("people", justify="right")
    for name in OCCLUSION_BINS:
        table.add_column(name, justify="right")
    table.add_column("mean", justify="right")
    table.add_column("median", justify="right")
    order = [lvl for lvl in OCCLUSION_LEVELS if lvl in histogram]
    order += sorted(set(histogram) - set(order))
    for level in order:
        row = histogram[level]
        table.add_row(
            level,
            f"{int(row['people'])}",
            *(f"{100 * row[name]:.1f}%" for name in OCCLUSION_BINS),
            f"{row['mean']:.3f}",
            f"{row['median']:.3f}",
        )
    return table


#: Upper bounds of the options: far beyond any real use, and refused up front instead of
#: running out of memory (a 100,000 px image needs 30 GB) or disk.
MAX_SIZE = 4096
MAX_IMAGES = 1_000_000
MAX_WORKERS = 256


@app.command(epilog=EXIT_STATUS)
def synth(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (images/ + annotations.json). Written under a temporary name "
            "and renamed when complete, so it never holds half a data set.",
        ),
    ],
    num_images: Annotated[
        int, typer.Option("--num-images", "-n", min=1, max=MAX_IMAGES, help="Images.")
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="Dataset seed (image i is seeded by seed and i).")
    ] = 0,
    size: Annotated[
        int, typer.Option("--size", min=32, max=MAX_SIZE, help="Square image side (px).")
    ] = 256,
    format: Annotated[
        SynthFormat, typer.Option("--format", help="coco: 17 keypoints; crowdpose: 14.")
    ] = SynthFormat.coco,
    occlusion: Annotated[
        OcclusionChoice, typer.Option("--occlusion", help="Occlusion level; mixed: one per image.")
    ] = OcclusionChoice.mixed,
    image_format: Annotated[
        ImageFormat, typer.Option("--image-format", help="png (lossless) or jpg.")
    ] = ImageFormat.png,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=1, max=MAX_WORKERS, help="Processes.")
    ] = 1,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace a non-empty --out folder (once the new data set is complete).",
        ),
    ] = False,
) -> None:
    """Render multi-person scenes with exact occlusion labels as a COCO-format dataset.

    Prints the distribution of the per-person occlusion rate (hidden / labelled
    keypoints) for every occlusion level at the end.
    """
    from occlupose.utils.io import OutputError, check_output_folder, staged_folder

    check_output_folder(out, "--out", overwrite=overwrite)  # before any work
    with status(f"rendering {num_images} image{'s' if num_images > 1 else ''}"):
        from occlupose.data.synthetic.annotations import occlusion_histogram
        from occlupose.data.synthetic.generate import generate_dataset

    try:
        with sigterm_runs_cleanup(), staged_folder(out, overwrite=overwrite) as staging:
            path = generate_dataset(
                staging,
                num_images,
                seed=seed,
                size=size,
                format=format.value,
                occlusion=occlusion.value,
                image_format=image_format.value,
                workers=workers,
                progress=str(out),
            )
    except OutputError:
        raise
    except OSError as error:  # e.g. the disk filled up: the partial folder is gone already
        reason = (error.strerror or str(error)).lower()
        raise OutputError(f"--out: cannot write the data set to {out} ({reason})") from None
    with open(out / path.name, encoding="utf-8") as f:
        dataset = json.load(f)
    console.print(
        f"wrote {len(dataset['images'])} images and {len(dataset['annotations'])} people "
        f"to {out} ({path.name}, {format.value} keypoints)"
    )
    console.print(occlusion_table(occlusion_histogram(dataset), "person occlusion rate per level"))
