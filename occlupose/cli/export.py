"""``occlupose export``: the network (decoding stays outside) as ONNX."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from occlupose.cli.app import app

console = Console(stderr=True)


@app.command()
def export(
    weights: str = typer.Option(None, "--weights", "-w", help="Checkpoint (default: bundled)."),
    preset: str = typer.Option(None, "--preset", help="Preset of an official checkpoint."),
    keypoint_set: str = typer.Option(None, "--keypoints", help="coco or crowdpose."),
    out: Path = typer.Option(Path("occlupose.onnx"), "--out", "-o", help="Output file."),
    export_format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    opset: int = typer.Option(17, help="ONNX opset."),
    check: bool = typer.Option(True, help="Compare with PyTorch in onnxruntime if installed."),
) -> None:
    """Export the network with dynamic batch and input size; print the output names."""
    if export_format != "onnx":
        raise typer.BadParameter(f"unsupported format {export_format!r}; supported: onnx")
    from occlupose.cli.predict import load_predictor
    from occlupose.inference.export import export_onnx, verify_onnx

    predictor = load_predictor(weights, preset, keypoint_set, "cpu", False, False, [1.0], 0.0)
    size = predictor.options.input_size
    names = export_onnx(predictor.model, out, input_size=size, opset=opset)
    console.print(f"wrote {out}: input 'image' (B, 3, H, W), outputs {', '.join(names)}")
    if check:
        try:
            error = verify_onnx(predictor.model, out, input_size=size)
        except ImportError:
            console.print("onnxruntime is not installed; skipped the comparison")
        else:
            console.print(f"onnxruntime vs PyTorch: max abs difference {error:.2e}")
