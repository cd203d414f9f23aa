"""The ``occlupose`` Typer application; command modules register themselves on it."""

import typer

app = typer.Typer(
    name="occlupose",
    help="Multi-person 2D pose estimation under occlusion (HRGR-Net, HigherHRNet).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main() -> None:
    """occlupose: multi-person 2D pose estimation that stays accurate under occlusion."""
