"""Ground truth that would score silently wrong, and ``eval --weights`` that would score
the wrong images: each as ``occlupose eval`` meets it (exit status, message, report)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from occlupose.cli import app

runner = CliRunner(env={"COLUMNS": "80"})


@pytest.fixture
def perfect(scenes, tmp_path):
    """(ground truth, write): 3 people on 2 images and perfect results for them."""
    anns = [scenes.annotation(i + 1, 1 + i % 2, (50 + 220 * i, 60, 100, 300)) for i in range(3)]
    gt = scenes.ground_truth(anns, [1, 2])

    def write(ground_truth: dict) -> list[str]:
        (tmp_path / "gt.json").write_text(json.dumps(ground_truth))
        results = [scenes.as_result(a) for a in anns]
        (tmp_path / "results.json").write_text(json.dumps(results))
        return ["eval", "--results", str(tmp_path / "results.json"), "--ann"] + [
            str(tmp_path / "gt.json"),
            "--out",
            str(tmp_path / "report"),
        ]

    return gt, write


def _broken(gt: dict, case: str) -> dict:
    gt = json.loads(json.dumps(gt))
    anns, images = gt["annotations"], gt["images"]
    if case == "duplicate annotation id":
        anns[2]["id"] = anns[0]["id"]
    elif case == "duplicate image id":
        images.append({**images[1], "file_name": "other.jpg"})
    elif case == "annotation of an unknown image":
        anns[1]["image_id"] = 99
    elif case == "NaN keypoint":
        anns[1]["keypoints"][3] = math.nan
    elif case == "infinite box":
        anns[1]["bbox"][2] = math.inf
    elif case == "negative box size":
        anns[1]["bbox"][3] = -5.0
    elif case == "negative area":
        anns[1]["area"] = -1.0
    elif case == "zero image width":
        images[0]["width"] = 0
    return gt


CASES = {
    "duplicate annotation id": "annotations[2] (id 1, image 1): duplicate annotation id, "
    "also annotations[0]",
    "duplicate image id": "images[2] (id 2): duplicate image id, also images[1]",
    "annotation of an unknown image": "annotations[1] (id 2, image 99): 'image_id' is not in",
    "NaN keypoint": "annotations[1] (id 2, image 2): 'keypoints' contains NaN or infinity",
    "infinite box": "annotations[1] (id 2, image 2): 'bbox' contains NaN or infinity",
    "negative box size": "annotations[1] (id 2, image 2): 'bbox' has a negative width",
    "negative area": "annotations[1] (id 2, image 2): 'area' must be a finite number >= 0",
    "zero image width": "images[0] (id 1): 'width' and 'height' must be positive numbers",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_ground_truth_is_an_error_naming_the_entry(perfect, tmp_path, case):
    gt, write = perfect
    result = runner.invoke(app, write(_broken(gt, case)))
    assert result.exit_code == 1, result.output
    status, line = result.output.strip().splitlines()
    assert status == f"reading {tmp_path / 'gt.json'} ..."
    assert line.startswith(f"error: {tmp_path / 'gt.json'}: {CASES[case]}"), line
    assert line.endswith("(--lenient skips such entries)")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("case", "people", "images"),
    [
        ("duplicate annotation id", 2, 2),  # the later duplicate is skipped
        ("duplicate image id", 3, 2),
        ("NaN keypoint", 2, 2),
        ("negative box size", 2, 2),
        ("annotation of an unknown image", 2, 2),
    ],
)
def test_lenient_skips_bad_entries_and_counts_them(perfect, tmp_path, case, people, images):
    gt, write = perfect
    result = runner.invoke(app, [*write(_broken(gt, case)), "--lenient"])
    assert result.exit_code == 0, result.output
    skipped = 3 - people + 2 - images + (case == "duplicate image id")
    assert f"--lenient: skipped {skipped} entries of {tmp_path / 'gt.json'}" in " ".join(
        result.output.split()
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())["models"]["results"]
    assert (report["num_people"], report["num_images"]) == (people, images)


def test_perfect_results_score_one_and_a_duplicate_id_no_longer_hides_a_person(perfect, tmp_path):
    gt, write = perfect
    result = runner.invoke(app, write(gt))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["models"]["results"]["metrics"]["AP"] == pytest.approx(1.0)


@pytest.fixture
def synthetic(tmp_path):
    from occlupose.data.synthetic import generate_dataset

    return generate_dataset(tmp_path / "synth", 4, seed=2, size=64, progress=False)


def test_limit_scores_only_the_images_predicted(synthetic, tiny_checkpoint, tmp_path, monkeypatch):
    # A perfect model: its results are the ground truth of the images it is run on. Scored
    # against the whole ground truth, the images it did not see would count as misses.
    from occlupose.inference import dataset

    gt = json.loads(synthetic.read_text())

    def perfect_model(predictor, ground_truth, image_dir, *, limit=None, **kwargs):
        ids = {image["id"] for image in dataset.dataset_images(ground_truth, limit)}
        found = [
            {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1}
            for a in ground_truth["annotations"]
            if a["image_id"] in ids
        ]
        return found, []

    monkeypatch.setattr(dataset, "predict_dataset", perfect_model)
    weights, _ = tiny_checkpoint
    out = tmp_path / "report"
    args = ["eval", "--weights", str(weights), "--ann", str(synthetic), "--images"]
    args += [str(synthetic.parent / "images"), "--out", str(out), "--limit", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"scoring the 2 images the model ran on, of 4 in {synthetic} (--limit 2)" in text
    report = json.loads((out / "report.json").read_text())["models"]["tiny"]
    people = sum(a["image_id"] in (1, 2) and a["num_keypoints"] > 0 for a in gt["annotations"])
    assert (report["num_images"], report["num_people"]) == (2, people)
    assert report["metrics"]["AP"] == pytest.approx(1.0)


def test_a_wrong_images_folder_is_an_error_and_writes_no_report(
    synthetic, tiny_checkpoint, tmp_path
):
    weights, _ = tiny_checkpoint
    out = tmp_path / "report"
    wrong = tmp_path / "photos"
    wrong.mkdir()
    args = ["eval", "--weights", str(weights), "--ann", str(synthetic), "--out", str(out)]
    result = runner.invoke(app, [*args, "--images", str(wrong)])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"error: --images {wrong}: none of the 4 images of {synthetic}")
    assert "000001.png: file does not exist" in last
    assert not (out / "report.json").exists()

    result = runner.invoke(app, [*args, "--images", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere does not exist" in result.output


def test_images_that_cannot_be_read_are_left_out_of_the_score(synthetic, tiny_checkpoint, tmp_path):
    weights, _ = tiny_checkpoint
    (synthetic.parent / "images" / "000003.png").write_bytes(b"broken")
    out = tmp_path / "report"
    args = ["eval", "--weights", str(weights), "--ann", str(synthetic), "--out", str(out)]
    result = runner.invoke(app, [*args, "--images", str(synthetic.parent / "images")])
    assert result.exit_code == 1  # an input failed; the others are scored
    text = " ".join(result.output.split())
    assert "000003.png: not a decodable image" in text
    assert "scoring the 3 images the model ran on, of 4" in text and "(1 could not be read)" in text
    assert json.loads((out / "report.json").read_text())["models"]["tiny"]["num_images"] == 3
