"""``occlupose export``: the network as ONNX (decoding stays outside), or a slim checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from occlupose.cli.app import EXIT_STATUS, app
from occlupose.cli.status import status

console = Console(stderr=True)


@app.command(epilog=EXIT_STATUS)
def export(
    weights: str = typer.Option(None, "--weights", "-w", help="Checkpoint (default: bundled)."),
    preset: str = typer.Option(None, "--preset", help="Preset of an official checkpoint."),
    keypoint_set: str = typer.Option(None, "--keypoints", help="coco or crowdpose."),
    out: Path = typer.Option(Path("occlupose.onnx"), "--out", "-o", help="Output file."),
    export_format: str = typer.Option(
        "onnx", "--format", help="onnx, or pt: a slim self-describing PyTorch checkpoint."
    ),
    half: bool = typer.Option(False, help="pt: store float16 weights (half the size)."),
    opset: int = typer.Option(17, help="ONNX opset."),
    check: bool = typer.Option(True, help="Compare with PyTorch in onnxruntime if installed."),
) -> None:
    """Export a model: ONNX (dynamic batch and input size) or a slim PyTorch checkpoint.

    The pt format keeps only the network's weights and what ``Predictor.from_pretrained``
    needs to rebuild it (preset, keypoint set, overrides, input size), e.g. to share a
    model trained with ``occlupose train``.
    """
    if export_format not in ("onnx", "pt"):
        raise typer.BadParameter(
            f"unsupported format {export_format!r}; supported: onnx, pt", param_hint="--format"
        )
    from occlupose.utils.io import check_output_file

    check_output_file(out, "--out")  # before loading and converting the model
    with status("loading the model"):
        from occlupose.cli.predict import load_predictor
        from occlupose.inference.export import export_onnx, verify_onnx

        predictor = load_predictor(weights, preset, keypoint_set, flip=False)
    size = predictor.options.input_size
    if export_format == "pt":
        from occlupose.inference import resolve_weights, save_pretrained
        from occlupose.models import read_checkpoint

        meta = read_checkpoint(resolve_weights(weights)).metadata
        save_pretrained(
            predictor.model,
            out,
            preset=preset or meta.get("preset") or "",
            keypoint_set=predictor.keypoint_set,
            model_kwargs=meta.get("model_kwargs", {}),
            input_size=size,
            half=half,
            pose_prior=predictor.pose_prior,
            decoding=predictor.options.decoding,
            pixel_convention=predictor.settings.pixel_convention,
        )
        console.print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        return
    with status("exporting to ONNX"):
        names = export_onnx(predictor.model, out, input_size=size, opset=opset)
    console.print(f"wrote {out}: input 'image' (B, 3, H, W), outputs {', '.join(names)}")
    if check:
        try:
            with status("comparing onnxruntime with PyTorch"):
                error = verify_onnx(predictor.model, out, input_size=size)
        except ImportError:
            console.print("onnxruntime is not installed; skipped the comparison")
        else:
            console.print(f"onnxruntime vs PyTorch: max abs difference {error:.2e}")
