"""``occlupose occlude``: occluded copies of the six real COCO test photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.data.image_io import read_image
from occlupose.evaluation import occlude_image
from occlupose.evaluation.occluded_dataset import write_occluded_copies
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

SUBSET = Path(__file__).resolve().parents[1] / "data" / "coco_subset"
ANN = SUBSET / "person_keypoints_subset.json"

runner = CliRunner(env={"COLUMNS": "240"})


def _occlude(*args: str):
    return runner.invoke(app, ["occlude", *args])


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def subset(tmp_path) -> Path:
    """A writable copy of the test photos and their annotations."""
    return Path(shutil.copytree(SUBSET, tmp_path / "subset"))


def test_copies_per_rate_with_the_ground_truth_and_a_manifest(tmp_path):
    out = tmp_path / "occluded"
    ann = tmp_path / "gt.json"  # formatted otherwise than json.dumps would write it
    ann.write_text(json.dumps(json.loads(ANN.read_text()), indent=2))
    result = _occlude("--ann", str(ann), "--images", str(SUBSET / "images"), "--out", str(out),
                      "--rates", "0.3,0", "--seed", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 6 images at 2 rates" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["rate0.00", "rate0.30"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json", "occluded"]  # no staging
    names = sorted(p.name for p in (SUBSET / "images").iterdir())
    gt = json.loads(ANN.read_text())
    by_image = {
        im["id"]: [a for a in gt["annotations"] if a["image_id"] == im["id"]] for im in gt["images"]
    }
    for rate in ("0.00", "0.30"):
        folder = out / f"rate{rate}"
        assert sorted(p.name for p in (folder / "images").iterdir()) == names
        assert (folder / "annotations.json").read_bytes() == ann.read_bytes()  # unchanged
    # Rate 0: the photos themselves, byte for byte.
    for name in names:
        assert (out / "rate0.00/images" / name).read_bytes() == (
            SUBSET / "images" / name
        ).read_bytes()

    manifest = json.loads((out / "rate0.30/manifest.json").read_text())
    assert (manifest["rate"], manifest["seed"], manifest["kind"]) == (0.3, 1, "textured")
    assert manifest["image_ids"] == sorted(by_image) and manifest["skipped"] == []
    assert len(manifest["people"]) == 9  # the 9 people with visible keypoints
    covered = {p["annotation_id"]: p["covered"] for p in manifest["people"]}
    total = 0
    for entry in gt["images"]:
        anns = by_image[entry["id"]]
        original = read_image(SUBSET / "images" / entry["file_name"])
        expected, hidden = occlude_image(
            original, anns, 0.3, 1, COCO_KEYPOINTS, image_id=entry["id"]
        )
        written = read_image(out / "rate0.30/images" / entry["file_name"])
        # The occluders eval --occlude pastes, through a JPEG at quality 95.
        painted = np.any(expected != original, axis=2)
        error = np.abs(written.astype(int) - expected).mean(axis=2)
        change = np.abs(written.astype(int) - original).mean(axis=2)
        if anns and any(a["num_keypoints"] for a in anns):
            assert painted.sum() > 100
            assert error[painted].mean() < 6 and change[painted].mean() > 25
        assert error[~painted].mean() < 1.5
        for n, ann in enumerate(anns):
            v = np.asarray(ann["keypoints"]).reshape(17, 3)[:, 2]
            if ann["iscrowd"] or not (v == 2).any():
                assert ann["id"] not in covered
                continue
            assert covered[ann["id"]] == np.flatnonzero(hidden[n] & (v == 2)).tolist()
            total += len(covered[ann["id"]])
    assert manifest["covered_keypoints"] == total
    assert manifest["covered_share"] == pytest.approx(total / manifest["visible_keypoints"])
    assert 0.2 < manifest["covered_share"] < 0.4
    assert all(
        p["covered"] == []
        for p in json.loads((out / "rate0.00/manifest.json").read_text())["people"]
    )


def test_deterministic_per_seed_and_kinds_cover_the_same_keypoints(tmp_path):
    args = ["--ann", str(ANN), "--images", str(SUBSET / "images"), "--rates", "0.5"]
    for name, extra in (("a", ["--seed", "3"]), ("b", ["--seed", "3"]), ("c", ["--seed", "4"]),
                        ("p", ["--seed", "3", "--kind", "patches"])):  # fmt: skip
        assert _occlude(*args, *extra, "--out", str(tmp_path / name)).exit_code == 0
    a, b, c, p = (_files(tmp_path / name) for name in "abcp")
    assert a == b
    images = [k for k in a if "/images/" in k]
    assert all(a[k] != c[k] for k in images)
    assert all(a[k] != p[k] for k in images)

    def people(files):
        return json.loads(files["rate0.50/manifest.json"])["people"]

    assert people(a) == people(p) != people(c)


def test_bad_rates_and_output_folders_leave_nothing(subset, tmp_path):
    base = [
        "--ann",
        str(subset / "person_keypoints_subset.json"),
        "--images",
        str(subset / "images"),
    ]
    out = tmp_path / "out"
    result = _occlude(*base, "--out", str(out), "--rates", "0.2,1.5")
    assert result.exit_code == 2
    assert "--rates" in result.output and "1.5 is outside [0, 1]" in result.output
    result = _occlude(*base, "--out", str(out), "--rates", "0.2,a")
    assert result.exit_code == 2 and "comma-separated numbers" in result.output
    assert not out.exists()

    for inside in (subset / "images", subset / "images" / "occluded"):
        before = sorted(p.name for p in (subset / "images").iterdir())
        result = _occlude(*base, "--out", str(inside), "--rates", "0.2")
        assert result.exit_code == 1
        assert f"error: {inside}: the output folder is inside the image folder" in result.output
        assert sorted(p.name for p in (subset / "images").iterdir()) == before
    result = _occlude(*base, "--out", str(tmp_path), "--rates", "0.2", "--overwrite")
    assert result.exit_code == 1 and "contains the image folder" in result.output
    assert (subset / "images").is_dir()

    out.mkdir()
    (out / "old.txt").write_text("keep me")
    result = _occlude(*base, "--out", str(out), "--rates", "0.2")
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    assert (out / "old.txt").read_text() == "keep me"
    result = _occlude(*base, "--out", str(out), "--rates", "0.2", "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["rate0.20"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "subset"]  # nothing else


def test_missing_image_is_named_and_the_rest_is_written(subset, tmp_path):
    (subset / "images" / "000000040083.jpg").unlink()
    (subset / "images" / "000000099293.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = _occlude("--ann", str(subset / "person_keypoints_subset.json"), "--images",
                      str(subset / "images"), "--out", str(out), "--rates", "0.2")  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"error: {subset / 'images' / '000000040083.jpg'}: file does not exist" in lines
    assert any(
        line.startswith(f"error: {subset / 'images' / '000000099293.jpg'}: not a decodable image")
        for line in lines
    )
    assert "2 of 6 images could not be read" in result.output
    folder = out / "rate0.20"
    assert sorted(p.name for p in (folder / "images").iterdir()) == [
        "000000000785.jpg", "000000085329.jpg", "000000122469.jpg", "000000204805.jpg"
    ]  # fmt: skip
    gt = json.loads((folder / "annotations.json").read_text())
    assert sorted(im["id"] for im in gt["images"]) == [785, 85329, 122469, 204805]
    assert {a["image_id"] for a in gt["annotations"]} <= {785, 85329, 122469, 204805}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["image_ids"] == [785, 85329, 122469, 204805]
    assert [s["file_name"] for s in manifest["skipped"]] == ["000000040083.jpg", "000000099293.jpg"]
    assert {p["image_id"] for p in manifest["people"]} == {785, 85329, 122469, 204805}


def test_images_without_people_are_copied_unchanged(subset, tmp_path):
    gt = json.loads((subset / "person_keypoints_subset.json").read_text())
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != 785]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    out = tmp_path / "out"
    result = _occlude("--ann", str(tmp_path / "gt.json"), "--images", str(subset / "images"),
                      "--out", str(out), "--rates", "0.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 image has no person with a visible keypoint: copied unchanged" in result.output
    name = "000000000785.jpg"
    assert (out / "rate0.50/images" / name).read_bytes() == (subset / "images" / name).read_bytes()
    other = "000000040083.jpg"
    assert (out / "rate0.50/images" / other).read_bytes() != (
        subset / "images" / other
    ).read_bytes()


def test_ground_truth_without_people_or_bad_is_refused(subset, tmp_path):
    gt = json.loads((subset / "person_keypoints_subset.json").read_text())
    for ann in gt["annotations"]:
        ann["keypoints"] = [0.0 if i % 3 == 2 else k for i, k in enumerate(ann["keypoints"])]
    (tmp_path / "nobody.json").write_text(json.dumps(gt))
    out = tmp_path / "out"
    result = _occlude("--ann", str(tmp_path / "nobody.json"), "--images", str(subset / "images"),
                      "--out", str(out))  # fmt: skip
    assert result.exit_code == 1
    assert (
        f"error: {tmp_path / 'nobody.json'}: no person has a visible (v=2) keypoint"
        in result.output
    )
    gt["annotations"][0]["keypoints"] = [1, 2, 2]
    (tmp_path / "bad.json").write_text(json.dumps(gt))
    result = _occlude("--ann", str(tmp_path / "bad.json"), "--images", str(subset / "images"),
                      "--out", str(out))  # fmt: skip
    assert result.exit_code == 1 and "'keypoints' must hold 51 numbers" in result.output
    result = _occlude("--ann", str(tmp_path / "none.json"), "--images", str(subset / "images"),
                      "--out", str(out))  # fmt: skip
    assert result.exit_code == 1 and "none.json: file not found" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "nobody.json", "subset"]


def test_an_interrupted_run_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    seen = []

    def stop_after_two():
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_occluded_copies(ANN, SUBSET / "images", out, [0.1, 0.2], on_image=stop_after_two)
    assert list(tmp_path.iterdir()) == []
