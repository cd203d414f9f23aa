"""``occlupose info``: the model presets, or one preset built and run once."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from occlupose.cli.app import EXIT_STATUS, app

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
    import torch

    from occlupose.models import PRESETS, create_model, list_presets

    if preset is None:
        table = Table(title=f"occlupose model presets ({keypoint_set} keypoints)")
        for column in ("preset", "input", "parameters", "modules", "description"):
            table.add_column(column, justify="right" if column == "parameters" else "left")
        for p in list_presets():
            # Built on the meta device: shapes only, no memory, no initialisation cost.
            with torch.device("meta"):
                model = p.factory(keypoint_set=keypoint_set)
            table.add_row(
                p.name,
                f"{p.input_size}",
                f"{_count_parameters(model):,}",
                _modules_of(model),
                p.description,
            )
        console.print(table)
        return

    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
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
