"""``occlupose demo``: the default model on a crowded, occluded scene (or your photo)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from occlupose.cli.app import EXIT_STATUS, app, print_error
from occlupose.cli.predict import DEFAULT_DRAW_THRESHOLD, SYNTHETIC_ONLY_NOTE
from occlupose.cli.status import status

console = Console()

#: The scene's occlusion levels (occlupose.data.synthetic.scene.OCCLUSION_LEVELS), here
#: so that a bad --occlusion is refused before the data stack is imported.
DEMO_OCCLUSION_LEVELS = ("none", "low", "medium", "high")


def _people_table(people, keypoint_set, title: str) -> Table:
    table = Table(title=title)
    for column in ("#", "score", "joints found", "box (x0, y0, x1, y1)"):
        table.add_column(column, justify="right")
    for i, person in enumerate(people, 1):
        found = int((person.keypoints[:, 2] > 0.1).sum())
        box = ", ".join(f"{v:.0f}" for v in person.box)
        table.add_row(str(i), f"{person.score:.2f}", f"{found}/{keypoint_set.num_keypoints}", box)
    return table


def scene_ground_truth(scene, keypoint_set, image_id: int = 1) -> dict:
    """A COCO-format ground-truth dict for one rendered synthetic scene."""
    from occlupose.data.synthetic.annotations import category_entry, person_annotation

    height, width = scene.image.shape[:2]
    annotations = [
        person_annotation(p, keypoint_set, image_id, i + 1) for i, p in enumerate(scene.people)
    ]
    return {
        "images": [{"id": image_id, "file_name": "scene.png", "height": height, "width": width}],
        "annotations": annotations,
        "categories": [category_entry(keypoint_set)],
    }


def _write_png(path: Path, image) -> Path:
    import cv2

    from occlupose.utils.io import OutputError, atomic_write_bytes

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode the picture")
    return atomic_write_bytes(path, encoded.tobytes())


def _shown(people: list) -> list:
    """The people ``occlupose predict`` keeps by default."""
    from occlupose.cli.predict import DEFAULT_MIN_SCORE

    return [person for person in people if person.score >= DEFAULT_MIN_SCORE]


@app.command(epilog=EXIT_STATUS)
def demo(
    image: Path = typer.Option(
        None, "--image", help="Your own photo (default: a synthetic scene)."
    ),
    out: Path = typer.Option(Path("demo_output"), "--out", "-o", help="Output folder."),
    seed: int = typer.Option(7, help="Seed of the synthetic scene."),
    occlusion: str = typer.Option("medium", help="Occlusion of the scene: none/low/medium/high."),
    size: int = typer.Option(256, min=32, max=4096, help="Side of the synthetic scene in pixels."),
    weights: str = typer.Option(None, "--weights", "-w", help="Checkpoint (default: bundled)."),
    draw_threshold: float = typer.Option(
        DEFAULT_DRAW_THRESHOLD, help="Joints below this score are not drawn."
    ),
    precision: str = typer.Option(
        "auto", "--precision", help="auto (bfloat16 where the CPU has it), fp32 or bf16."
    ),
) -> None:
    """Run the default model on a crowded, occluded scene and show what it finds."""
    from occlupose.utils.io import ensure_writable_dir

    if occlusion not in DEMO_OCCLUSION_LEVELS:
        raise typer.BadParameter(
            f"must be one of {', '.join(DEMO_OCCLUSION_LEVELS)}, got {occlusion!r}",
            param_hint="--occlusion",
        )
    ensure_writable_dir(out, "--out")
    with status("loading the model"):
        import cv2
        import numpy as np

        from occlupose.cli.predict import DEFAULT_MAX_PEOPLE, load_predictor
        from occlupose.data.image_io import ImageReadError
        from occlupose.data.synthetic import render_scene
        from occlupose.data.synthetic.annotations import select_keypoints
        from occlupose.evaluation import evaluate_keypoints
        from occlupose.inference import as_rgb_image
        from occlupose.visualization import draw_ground_truth, draw_people, side_by_side

        if image is not None:
            try:
                rgb = as_rgb_image(image)
            except (ImageReadError, ValueError) as error:
                print_error(str(error))
                raise typer.Exit(code=1) from None
        # Every person is kept for the scene's AP (as eval ranks them all); the picture
        # and the table show those predict would keep.
        predictor = load_predictor(
            weights, min_score=0.0, max_people=DEFAULT_MAX_PEOPLE, precision=precision
        )
    kps = predictor.keypoint_set

    if image is not None:
        if weights is None:
            console.print(f"[yellow]{SYNTHETIC_ONLY_NOTE}[/yellow]")
        with status(f"finding people in {image.name}"):
            people = _shown(predictor.predict_image(rgb))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        overlay = draw_people(bgr, people, kps, score_threshold=draw_threshold)
        path = _write_png(out / f"{image.stem}_pose.png", overlay)
        console.print(_people_table(people, kps, f"{len(people)} people in {image.name}"))
        console.print(f"overlay: {path}")
        return

    with status(f"rendering a {size} x {size} scene and finding its people"):
        scene = render_scene(seed, size=size, occlusion=occlusion)
        rgb = cv2.cvtColor(scene.image, cv2.COLOR_BGR2RGB)
        everyone = predictor.predict_image(rgb)
    people = _shown(everyone)
    truth = [select_keypoints(p.keypoints, kps) for p in scene.people]
    left = draw_ground_truth(scene.image, np.stack(truth), kps) if truth else scene.image.copy()
    right = draw_people(scene.image, people, kps, score_threshold=draw_threshold)
    panel = side_by_side(left, right, ("ground truth", "prediction"))
    path = _write_png(out / f"demo_scene_seed{seed}.png", panel)

    ground_truth = scene_ground_truth(scene, kps)
    results = [p.to_coco(1) for p in everyone]
    metrics = evaluate_keypoints(ground_truth, results, kps) if results else {"AP": 0.0}
    hidden = sum(int((t[:, 2] == 1).sum()) for t in truth)
    labelled = sum(int((t[:, 2] > 0).sum()) for t in truth)
    console.print(
        _people_table(
            people,
            kps,
            f"synthetic scene (seed {seed}, {occlusion} occlusion): {len(truth)} people, "
            f"{hidden} of {labelled} labelled joints hidden",
        )
    )
    console.print(f"AP on this scene: {metrics['AP']:.3f}   picture: {path}")
    console.print("left: ground truth, hidden joints drawn as crossed rings; right: prediction")
