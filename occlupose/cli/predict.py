"""``occlupose predict``: poses on images, folders and videos; overlays and COCO results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from occlupose.cli.app import EXIT_STATUS, app
from occlupose.cli.status import status

console = Console(stderr=True)

SYNTHETIC_ONLY_NOTE = (
    "note: the default model is trained on synthetic scenes only, so expect rough "
    "results on photos. For COCO-level accuracy use COCO-trained weights: official "
    "HigherHRNet checkpoints load directly, e.g.\n"
    "  occlupose predict photo.jpg --weights pose_higher_hrnet_w32_512.pth "
    "--preset higherhrnet_w32_512"
)

#: The person and joint score thresholds of the pictures and results.json: the highest
#: F1 of the bundled model on 200 held-out synthetic images (benchmarks/score_thresholds.py:
#: people precision 0.815, recall 0.662; drawn joints precision 0.922, recall 0.860).
#: ``eval`` does not use them: AP ranks every person.
DEFAULT_MIN_SCORE = 0.44
DEFAULT_DRAW_THRESHOLD = 0.49
DEFAULT_MAX_PEOPLE = 30

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


#: Files a folder is searched for (other files in a folder are ignored, and counted).
IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".jp2", ".pbm", ".pgm", ".ppm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic",
}  # fmt: skip


def expand_inputs(
    inputs: list[Path],
) -> tuple[list[Path], list[tuple[Path, str]], list[Path]]:
    """The files to process, the inputs that failed already, and the files ignored.

    A folder gives its image and video files (by suffix, sorted); its other files are
    ignored (hidden files, notes, ...). A folder without any is a failed input, as is a
    path that does not exist. Files named on the command line are always tried.
    """
    files: list[Path] = []
    failed: list[tuple[Path, str]] = []
    ignored: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file())
            media = [
                p
                for p in found
                if not p.name.startswith(".")
                and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            ]
            ignored += [p for p in found if p not in media]
            if media:
                files += media
            else:
                failed.append((item, "folder has no image or video files"))
        elif item.is_file():
            files.append(item)
        else:
            failed.append((item, "does not exist"))
    return files, failed, ignored


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


PRECISION_HELP = (
    "The network's arithmetic on a CPU: auto (bfloat16 where the CPU has bfloat16 "
    "instructions, except for official decoding), fp32, or bf16."
)
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
    precision: str = "auto",
    runtime: str = "torch",
    min_score: float | None = None,
    detection_threshold: float | None = None,
    max_people: int | None = None,
    use_pose_prior: bool = True,
    completion: str = "auto",
    join_fragments: bool = True,
):
    """Build the Predictor the options ask for (the bundled default without --weights).

    ``min_score``, ``detection_threshold`` and ``max_people`` (people kept per image)
    change the decoding's defaults when given; ``join_fragments=False`` turns the joining
    of a person's pieces off.
    """
    from occlupose.inference import Predictor, PredictorOptions
    from occlupose.models import PRESETS
    from occlupose.structures import get_keypoint_set

    if any(scale <= 0 for scale in scales):
        raise typer.BadParameter(
            f"scales must be positive, got {list(scales)}", param_hint="--scale"
        )
    if precision not in ("auto", "fp32", "bf16"):
        raise typer.BadParameter(
            f"must be auto, fp32 or bf16, got {precision!r}", param_hint="--precision"
        )
    if runtime not in ("torch", "onnxruntime"):
        raise typer.BadParameter(
            f"must be torch or onnxruntime, got {runtime!r}", param_hint="--runtime"
        )
    if decoding not in ("auto", "official", "occlupose"):
        raise typer.BadParameter(
            f"must be auto, official or occlupose, got {decoding!r}", param_hint="--decoding"
        )
    if completion not in ("auto", "none", "prior", "learned"):
        raise typer.BadParameter(
            f"must be auto, none, prior or learned, got {completion!r}", param_hint="--completion"
        )
    if preset is not None and preset not in PRESETS:
        raise typer.BadParameter(
            f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}", param_hint="--preset"
        )
    if keypoint_set is not None:
        try:
            get_keypoint_set(keypoint_set)
        except KeyError as error:
            raise typer.BadParameter(str(error.args[0]), param_hint="--keypoints") from None
    options = PredictorOptions(
        input_size=PRESETS[preset].input_size if preset in PRESETS else None,
        scales=tuple(scales),
        flip=flip,
        decoding=decoding,
        precision=precision,
        runtime=runtime,
        completion=completion,
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
        hint = "--weights"
        if "decoding=" in str(error):
            hint = "--decoding"
        elif "precision=" in str(error):
            hint = "--precision"
        elif "onnxruntime" in str(error):
            hint = "--runtime"
        elif "complet" in str(error):
            hint = "--completion"
        raise typer.BadParameter(str(error), param_hint=hint) from None
    changes = {
        "min_score": min_score,
        "detection_threshold": detection_threshold,
        "max_results": max_people,
        "join_fragments": join_fragments,
    }
    predictor.update_settings(**{k: v for k, v in changes.items() if v is not None})
    return predictor


@app.command(epilog=EXIT_STATUS)
def predict(
    inputs: list[Path] = typer.Argument(
        ..., metavar="INPUT...", help="Images, folders of images, or videos."
    ),
    weights: str = typer.Option(
        None, "--weights", "-w", help="Checkpoint file (default: the bundled model)."
    ),
    preset: str = typer.Option(
        None, "--preset", help="Model preset of an official checkpoint, e.g. higherhrnet_w32_512."
    ),
    keypoint_set: str = typer.Option(
        None, "--keypoints", help="coco or crowdpose (default: from the checkpoint)."
    ),
    out: Path = typer.Option(
        Path("predictions"),
        "--out",
        "-o",
        help="Output folder: overlays and results.json, which collects every input predicted "
        "into this folder (runs in parallel are safe; an input predicted again replaces "
        "its earlier results).",
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    half: bool = typer.Option(False, help="float16 on the GPU."),
    flip: bool = typer.Option(True, help="Flip test."),
    scales: list[float] = typer.Option([1.0], "--scale", help="Test scales (repeatable)."),
    min_score: float = typer.Option(
        DEFAULT_MIN_SCORE,
        "--min-score",
        help="Drop people scoring lower, from the overlays and results.json (0: keep all, "
        "e.g. to compute AP from results.json). The default was chosen for F1 on held-out "
        "synthetic data.",
    ),
    max_people: int = typer.Option(
        DEFAULT_MAX_PEOPLE, "--max-people", min=1, help="Keep at most this many people per image."
    ),
    detection_threshold: float = typer.Option(
        None, help="Minimum heatmap peak of a joint candidate (default 0.1)."
    ),
    decoding: str = typer.Option("auto", "--decoding", help=DECODING_HELP),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
    runtime: str = typer.Option(
        "torch", "--runtime", help="torch, or onnxruntime (the exported network, float32, CPU)."
    ),
    draw_threshold: float = typer.Option(
        DEFAULT_DRAW_THRESHOLD,
        help="Joints scoring below this are not drawn (the default was chosen for F1 on "
        "held-out synthetic data).",
    ),
    batch_size: int = typer.Option(
        1, "--batch-size", min=1, help="Video frames per network run (e.g. 8 on a GPU)."
    ),
    max_pixels: int = typer.Option(
        100_000_000,
        "--max-pixels",
        min=1,
        help="Refuse images with more pixels than this (decompression bombs, gigapixel scans).",
    ),
    pose_prior: bool = typer.Option(
        True,
        "--pose-prior/--no-pose-prior",
        help="Load the pose prior saved with the weights, if any.",
    ),
    completion: str = typer.Option(
        "auto",
        "--completion",
        help="Fill in joints that were not found: learned (the bundled pose completer), "
        "prior (the pose prior saved with the weights), none, or auto (learned, except "
        "with official decoding). Completed joints score lower and are drawn as rings.",
    ),
    join_fragments: bool = typer.Option(
        True,
        "--join-fragments/--no-join-fragments",
        help="Join the pieces limb grouping splits an occluded person into, where the "
        "completer places the person's missing joints (limb grouping with a completer).",
    ),
) -> None:
    """Find people in images and videos; write skeleton overlays and a COCO results JSON.

    Every input is counted in the summary; inputs that cannot be read are reported
    and the others are still processed.
    """
    from occlupose.utils.io import ensure_writable_dir

    files, failures, ignored = expand_inputs(inputs)
    total = len(files) + len(failures)
    if ignored:
        names = ", ".join(p.name for p in ignored[:3]) + (", ..." if len(ignored) > 3 else "")
        console.print(
            f"ignored {_plural(len(ignored), 'file')} in the input folders that "
            f"{'is' if len(ignored) == 1 else 'are'} not images or videos by name ({names})"
        )
    if not files:
        _summary(0, total, failures, None, out)
        raise typer.Exit(code=1)
    ensure_writable_dir(out, "--out")  # before the model and the (long) inference

    with status("loading the model"):
        predictor = load_predictor(
            weights,
            preset,
            keypoint_set,
            device=device,
            half=half,
            flip=flip,
            scales=scales,
            decoding=decoding,
            precision=precision,
            runtime=runtime,
            min_score=min_score,
            detection_threshold=detection_threshold,
            max_people=max_people,
            use_pose_prior=pose_prior,
            completion=completion,
            join_fragments=join_fragments,
        )
    run = _PredictRun(predictor, out, draw_threshold, max_pixels, batch_size)
    with _progress() as progress:
        images = [f for f in files if f.suffix.lower() not in VIDEO_SUFFIXES]
        videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
        task = progress.add_task("images", total=len(images)) if images else None
        for path in images:
            why = run.image(path)
            if why is not None:
                failures.append((path, why))
                progress.console.print(
                    f"[yellow]skipped {escape(str(path))}: {escape(why)}[/yellow]",
                    soft_wrap=True,
                )
            progress.advance(task)
        for path in videos:
            why = run.video(path, progress)
            if why is not None:
                failures.append((path, why))
                progress.console.print(
                    f"[yellow]skipped {escape(str(path))}: {escape(why)}[/yellow]",
                    soft_wrap=True,
                )

    merged = None
    if run.results:
        from occlupose.inference.results_file import update_results_file

        merged = update_results_file(out / "results.json", run.results)
    if weights is None and run.results:
        console.print(f"[yellow]{escape(SYNTHETIC_ONLY_NOTE)}[/yellow]")
    _summary(len(run.results), total, failures, merged, out, people=run.people)
    if failures:
        raise typer.Exit(code=1)


def _summary(
    done: int,
    total: int,
    failures: list[tuple[Path, str]],
    merged: list[dict] | None,
    out: Path,
    *,
    people: int = 0,
) -> None:
    text = f"processed {done} of {_plural(total, 'input')}"
    if done:
        text += f", {_plural(people, 'person').replace('persons', 'people')}"
    if merged is not None:
        inputs = len({r.get("file_name") for r in merged})
        text += (
            f"; results: {out / 'results.json'} ({_plural(len(merged), 'person')} from "
            f"{_plural(inputs, 'input')} in all); overlays in {out}/"
        ).replace("persons", "people")
    console.print(escape(text), soft_wrap=True)
    if failures:
        console.print(f"[yellow]{_plural(len(failures), 'input')} failed:[/yellow]")
        for path, why in failures:
            console.print(f"  {escape(str(path))}: {escape(why)}", soft_wrap=True)


class _PredictRun:
    """One ``predict`` call: runs the model on each input, writes its overlay atomically
    and collects its results (input file name -> COCO result dicts)."""

    def __init__(
        self, predictor, out: Path, draw_threshold: float, max_pixels: int, batch_size: int
    ) -> None:
        self.predictor = predictor
        self.out = out
        self.draw_threshold = draw_threshold
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.results: dict[str, list[dict]] = {}
        self.people = 0

    def image(self, path: Path) -> str | None:
        """Predict one image; the reason it failed, or None."""
        import cv2

        from occlupose.data.image_io import ImageReadError, read_image
        from occlupose.utils.io import atomic_write_bytes
        from occlupose.visualization import draw_people

        try:
            rgb = read_image(path, max_pixels=self.max_pixels)
        except ImageReadError as error:
            return error.reason
        people = self.predictor.predict_image(rgb)
        overlay = draw_people(
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            people,
            self.predictor.keypoint_set,
            score_threshold=self.draw_threshold,
        )
        ok, encoded = cv2.imencode(".jpg", overlay)
        if not ok:
            return "OpenCV could not encode its overlay"
        try:
            atomic_write_bytes(self.out / f"{path.stem}_pose.jpg", encoded.tobytes())
        except OSError as error:
            return f"cannot write its overlay to {self.out} ({error.strerror or error})"
        self.results[path.name] = [
            {**person.to_coco(0), "file_name": path.name} for person in people
        ]
        self.people += len(people)
        return None

    def video(self, path: Path, progress) -> str | None:
        """Predict every frame of a video; the reason it failed, or None."""
        import os
        import tempfile

        import cv2

        from occlupose.visualization import draw_people

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            return "OpenCV cannot open this video"
        frames_total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        task = progress.add_task(path.name, total=frames_total)
        target = self.out / f"{path.stem}_pose.mp4"
        # Written under a temporary name (same suffix, for the container) and renamed
        # when complete, as every other output.
        self.out.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".mp4", dir=self.out)
        os.close(fd)
        tmp = Path(tmp_name)
        writer = None
        results: list[dict] = []
        frame_index = 0
        try:
            while True:
                frames = []
                while len(frames) < self.batch_size:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    frames.append(frame)
                if not frames:
                    break
                rgb = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames]
                found = self.predictor.predict_images(rgb, batch_size=self.batch_size)
                for frame, people in zip(frames, found, strict=True):
                    results += [
                        {**p.to_coco(frame_index), "file_name": path.name, "frame": frame_index}
                        for p in people
                    ]
                    overlay = draw_people(
                        frame,
                        people,
                        self.predictor.keypoint_set,
                        score_threshold=self.draw_threshold,
                    )
                    if writer is None:
                        h, w = overlay.shape[:2]
                        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                        writer = cv2.VideoWriter(str(tmp), fourcc, fps, (w, h))
                        if not writer.isOpened():
                            return f"OpenCV cannot write its overlay video to {self.out}"
                    writer.write(overlay)
                    frame_index += 1
                    progress.advance(task)
            if writer is not None:
                writer.release()
                writer = None
                if frame_index:
                    os.replace(tmp, target)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
            tmp.unlink(missing_ok=True)
        if frame_index == 0:
            return "no frames could be decoded"
        self.results[path.name] = results
        self.people += len(results)
        return None
