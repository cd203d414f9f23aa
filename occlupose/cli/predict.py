"""``occlupose predict``: poses on images, folders and videos; overlays and COCO results."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from occlupose.cli.app import EXIT_STATUS, app

console = Console(stderr=True)

SYNTHETIC_ONLY_NOTE = (
    "note: the default model is trained on synthetic scenes only, so expect rough "
    "results on photos. For COCO-level accuracy use COCO-trained weights: official "
    "HigherHRNet checkpoints load directly, e.g.\n"
    "  occlupose predict photo.jpg --weights pose_higher_hrnet_w32_512.pth "
    "--preset higherhrnet_w32_512"
)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def expand_inputs(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to process (folders expanded, sorted) and the inputs that do not exist."""
    files, missing = [], []
    for item in inputs:
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.is_file()))
        elif item.is_file():
            files.append(item)
        else:
            missing.append((item, "does not exist"))
    return files, missing


def image_id_for(path: Path, index: int) -> int:
    """COCO file names carry the image id (``000000000785.jpg`` -> 785); else the index."""
    return int(path.stem) if re.fullmatch(r"\d{1,12}", path.stem) else index


DECODING_HELP = (
    "official: HigherHRNet's published test path (centred canvas aligned to 64, maps at "
    "input resolution, tags of scale 1; every person kept); occlupose: occlupose's own; "
    "auto: the checkpoint's (official for official checkpoints and HigherHRNet presets)."
)


def load_predictor(
    weights: str | None,
    preset: str | None = None,
    keypoint_set: str | None = None,
    *,
    device: str = "cpu",
    half: bool = False,
    flip: bool = True,
    scales: Sequence[float] = (1.0,),
    decoding: str = "auto",
    min_score: float | None = None,
    detection_threshold: float | None = None,
    use_pose_prior: bool = True,
):
    """Build the Predictor the options ask for (the bundled default without --weights).

    ``min_score`` and ``detection_threshold`` change the decoding's defaults when given.
    """
    from occlupose.inference import Predictor, PredictorOptions
    from occlupose.models import PRESETS

    if any(scale <= 0 for scale in scales):
        raise typer.BadParameter(
            f"scales must be positive, got {list(scales)}", param_hint="--scale"
        )
    if decoding not in ("auto", "official", "occlupose"):
        raise typer.BadParameter(
            f"must be auto, official or occlupose, got {decoding!r}", param_hint="--decoding"
        )
    options = PredictorOptions(
        input_size=PRESETS[preset].input_size if preset in PRESETS else None,
        scales=tuple(scales),
        flip=flip,
        decoding=decoding,
    )
    try:
        predictor = Predictor.from_pretrained(
            weights,
            preset=preset,
            keypoint_set=keypoint_set,
            options=options,
            device=device,
            half=half,
            use_pose_prior=use_pose_prior,
        )
    except (FileNotFoundError, ValueError) as error:
        hint = "--decoding" if "decoding=" in str(error) else "--weights"
        raise typer.BadParameter(str(error), param_hint=hint) from None
    changes = {"min_score": min_score, "detection_threshold": detection_threshold}
    predictor.update_settings(**{k: v for k, v in changes.items() if v is not None})
    return predictor


@app.command(epilog=EXIT_STATUS)
def predict(
    inputs: list[Path] = typer.Argument(..., help="Images, folders of images, or videos."),
    weights: str = typer.Option(
        None, "--weights", "-w", help="Checkpoint file (default: the bundled model)."
    ),
    preset: str = typer.Option(
        None, "--preset", help="Model preset of an official checkpoint, e.g. higherhrnet_w32_512."
    ),
    keypoint_set: str = typer.Option(
        None, "--keypoints", help="coco or crowdpose (default: from the checkpoint)."
    ),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    half: bool = typer.Option(False, help="float16 on the GPU."),
    flip: bool = typer.Option(True, help="Flip test."),
    scales: list[float] = typer.Option([1.0], "--scale", help="Test scales (repeatable)."),
    min_score: float = typer.Option(0.05, help="Drop people scoring lower."),
    detection_threshold: float = typer.Option(
        None, help="Minimum heatmap peak of a joint candidate (default 0.1)."
    ),
    decoding: str = typer.Option("auto", "--decoding", help=DECODING_HELP),
    draw_threshold: float = typer.Option(0.2, help="Joints below this score are not drawn."),
    batch_size: int = typer.Option(
        1, "--batch-size", min=1, help="Video frames per network run (e.g. 8 on a GPU)."
    ),
    pose_prior: bool = typer.Option(
        True,
        "--pose-prior/--no-pose-prior",
        help="Complete people with the pose prior saved with the weights, if any.",
    ),
) -> None:
    """Find people in images and videos; write skeleton overlays and a COCO results JSON."""
    import cv2

    from occlupose.data.image_io import ImageReadError
    from occlupose.inference import as_rgb_image
    from occlupose.utils.io import atomic_write_json
    from occlupose.visualization import draw_people

    files, failures = expand_inputs(inputs)
    if not files:
        for path, why in failures:
            console.print(f"[red]{path}: {why}[/red]")
        raise typer.Exit(code=1)
    predictor = load_predictor(
        weights,
        preset,
        keypoint_set,
        device=device,
        half=half,
        flip=flip,
        scales=scales,
        decoding=decoding,
        min_score=min_score,
        detection_threshold=detection_threshold,
        use_pose_prior=pose_prior,
    )
    if weights is None:
        console.print(f"[yellow]{SYNTHETIC_ONLY_NOTE}[/yellow]")
    kps = predictor.keypoint_set
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    done = 0

    with _progress() as progress:
        images = [f for f in files if f.suffix.lower() not in VIDEO_SUFFIXES]
        videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
        task = progress.add_task("images", total=len(images)) if images else None
        for index, path in enumerate(images):
            try:
                rgb = as_rgb_image(path)
                people = predictor.predict_image(rgb)
            except (ImageReadError, ValueError) as error:
                failures.append((path, str(error)))
                progress.console.print(f"[yellow]skipped {path}: {error}[/yellow]")
            else:
                image_id = image_id_for(path, index)
                for person in people:
                    results.append({**person.to_coco(image_id), "file_name": path.name})
                overlay = draw_people(
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    people,
                    kps,
                    score_threshold=draw_threshold,
                )
                cv2.imwrite(str(out / f"{path.stem}_pose.jpg"), overlay)
                done += 1
            progress.advance(task)

        for path in videos:
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                failures.append((path, "OpenCV cannot open this video"))
                progress.console.print(f"[yellow]skipped {path}: cannot open video[/yellow]")
                continue
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            vtask = progress.add_task(path.name, total=frames)
            writer = None
            frame_index = 0
            while True:
                frames = []
                while len(frames) < batch_size:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    frames.append(frame)
                if not frames:
                    break
                rgb_frames = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames]
                found = predictor.predict_images(rgb_frames, batch_size=batch_size)
                for frame, people in zip(frames, found, strict=True):
                    for person in people:
                        results.append(
                            {
                                **person.to_coco(frame_index),
                                "file_name": path.name,
                                "frame": frame_index,
                            }
                        )
                    overlay = draw_people(frame, people, kps, score_threshold=draw_threshold)
                    if writer is None:
                        h, w = overlay.shape[:2]
                        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                        writer = cv2.VideoWriter(
                            str(out / f"{path.stem}_pose.mp4"), fourcc, fps, (w, h)
                        )
                    writer.write(overlay)
                    frame_index += 1
                    progress.advance(vtask)
            capture.release()
            if writer is not None:
                writer.release()
            if frame_index == 0:
                failures.append((path, "no frames could be decoded"))
            else:
                done += 1

    results_path = atomic_write_json(out / "results.json", results)
    console.print(
        f"processed {done} of {len(files)} inputs, {len(results)} people; "
        f"results: {results_path}; overlays in {out}/"
    )
    if failures:
        console.print(f"[yellow]{len(failures)} inputs failed:[/yellow]")
        for path, why in failures:
            console.print(f"  {path}: {why}")
    if done == 0:
        raise typer.Exit(code=1)
