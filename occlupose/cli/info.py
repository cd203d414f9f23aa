"""``occlupose info``: the model presets, or one preset built and run once."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from occlupose.cli.app import EXIT_STATUS, app
from occlupose.cli.status import status

console = Console()


def _count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _modules_of(model) -> str:
    parts = []
    if any(m.attention is not None for m in model.modules() if hasattr(m, "fuse_layers")):
        parts.append("attention")
    if model.multi_scale_fusion is not None:
        parts.append("multi-scale fusion")
    if model.tag_channels:
        parts.append("tags")
    if model.limb_head is not None:
        parts.append("limb fields")
    if model.generator is not None:
        parts.append("completion")
    return ", ".join(parts)


@app.command(epilog=EXIT_STATUS)
def info(
    preset: str = typer.Option(
        None, "--preset", "-p", help="Build this preset, run it once and print its summary."
    ),
    keypoint_set: str = typer.Option("coco", "--keypoints", "-k", help="coco, crowdpose, ..."),
) -> None:
    """List the model presets with their parameter counts, or summarise one preset."""
    if preset is None:
        with status("counting the parameters of the model presets"):
            _check_keypoint_set(keypoint_set)
            rows = _preset_rows(keypoint_set)
        title = f"occlupose model presets ({keypoint_set} keypoints)"
        if console.width >= _TABLE_WIDTH:
            console.print(_presets_table(rows, title))
        else:  # a table this narrow would cut or fold every column: one block per preset
            console.print(title, style="italic")
            for name, size, parameters, modules, description in rows:
                console.print(name, style="bold", no_wrap=True, overflow="ignore")
                text = f"{description}; input {size} px, {parameters} parameters; {modules}"
                console.print(Padding(text, (0, 0, 0, 2), expand=False))
        return

    with status(f"building {preset} and running it once"):
        _check_keypoint_set(keypoint_set)
        import torch

        from occlupose.models import PRESETS, create_model

        if preset not in PRESETS:
            raise typer.BadParameter(
                f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}", param_hint="--preset"
            )
        size = PRESETS[preset].input_size
        model = create_model(preset, keypoint_set=keypoint_set).eval()
        with torch.no_grad():
            outputs = model(torch.zeros(1, 3, size, size))
    table = Table(title=f"{preset} ({keypoint_set} keypoints, input 1x3x{size}x{size})")
    table.add_column("output")
    table.add_column("shape")
    for i, h in enumerate(outputs.heatmaps):
        table.add_row(f"heatmaps 1/{model.output_strides[i]}", str(tuple(h.shape)))
    if outputs.tags is not None:
        table.add_row("tags 1/4", str(tuple(outputs.tags.shape)))
    if outputs.limbs is not None:
        table.add_row("limb fields 1/4", str(tuple(outputs.limbs.shape)))
    if outputs.completed is not None:
        for i, h in enumerate(outputs.completed):
            table.add_row(f"completed 1/{model.output_strides[i]}", str(tuple(h.shape)))
    console.print(table)
    console.print(f"parameters: {_count_parameters(model):,}; modules: {_modules_of(model)}")


def _check_keypoint_set(name: str) -> None:
    from occlupose.structures.keypoint_set import get_keypoint_set

    try:
        get_keypoint_set(name)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--keypoints") from None


#: Narrower than this, ``info`` lists the presets as blocks instead of a table.
_TABLE_WIDTH = 80


def _preset_rows(keypoint_set: str) -> list[tuple[str, str, str, str, str]]:
    """(name, input size, parameter count, modules, description) of every preset."""
    import torch

    from occlupose.models import list_presets

    rows = []
    for p in list_presets():
        # Built on the meta device: shapes only, no memory, no initialisation cost.
        with torch.device("meta"):
            model = p.factory(keypoint_set=keypoint_set)
        rows.append(
            (
                p.name,
                f"{p.input_size}",
                f"{_count_parameters(model):,}",
                _modules_of(model),
                p.description,
            )
        )
    return rows


def _presets_table(rows: list[tuple[str, ...]], title: str) -> Table:
    table = Table(title=title)
    # Names are what users type: never wrapped or cut; the other columns wrap.
    table.add_column("preset", no_wrap=True)
    table.add_column("input")
    table.add_column("parameters", justify="right", no_wrap=True)
    table.add_column("modules")
    table.add_column("description")
    for row in rows:
        table.add_row(*row)
    return table
