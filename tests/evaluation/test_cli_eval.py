"""``occlupose eval`` on tiny cases (typer's CliRunner)."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.structures.keypoint_set import COCO_KEYPOINTS

DATA = Path(__file__).resolve().parents[1] / "data"

runner = CliRunner()


@pytest.fixture
def files(scenes, tmp_path):
    anns = [scenes.annotation(i + 1, 1 + i % 2, (50 + 220 * i, 60, 100, 300)) for i in range(4)]
    gt = scenes.ground_truth(anns, [1, 2])
    paths = {"gt": tmp_path / "gt.json"}
    paths["gt"].write_text(json.dumps(gt))
    for name, oks in (("good", 0.975), ("fair", 0.825), ("poor", 0.725)):
        results = [scenes.displaced(a, oks, COCO_KEYPOINTS.sigmas, a["area"]) for a in anns]
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(results))
    return paths


def test_eval_writes_report_and_plots(files, tmp_path):
    out = tmp_path / "report"
    args = ["eval", "--results", str(files["good"]), "--ann", str(files["gt"])]
    args += ["--out", str(out), "--name", "ours", "--compare", f"other={files['fair']}"]
    args += ["--curve", f"0.0={files['good']}", "--curve", f"0.2={files['poor']}"]
    args += ["--curve", f"other:0.0={files['fair']}", "--curve", f"other:0.2={files['poor']}"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "coco keypoint AP" in result.output and "other" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "coco"  # recognised from the annotation file
    assert report["models"]["ours"]["metrics"]["AP"] == pytest.approx(1.0)
    assert report["models"]["other"]["metrics"]["AP"] == pytest.approx(0.7)
    curves = report["controlled_occlusion"]
    assert [c["metrics"]["AP"] for c in curves["ours"]] == pytest.approx([1.0, 0.5])
    assert [c["metrics"]["AP"] for c in curves["other"]] == pytest.approx([0.7, 0.5])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "ap_by_occlusion_rate.png",
        "ap_by_overlap.png",
        "ap_vs_occlusion_rate.png",
        "keypoint_localisation.png",
    ]
    assert all((out / p).stat().st_size > 1000 for p in pngs)

    # An earlier report's curve can be re-plotted next to a new model (--sweep).
    again = tmp_path / "again"
    args = ["eval", "--results", str(files["fair"]), "--ann", str(files["gt"]), "--out", str(again)]
    args += ["--sweep", f"ours={out / 'report.json'}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((again / "report.json").read_text())
    assert [c["rate"] for c in report["controlled_occlusion"]["ours"]] == [0.0, 0.2]


def test_eval_crowdpose_is_recognised(tmp_path):
    shutil.copy(DATA / "crowdpose_sample" / "crowdpose_sample.json", tmp_path / "gt.json")
    gt = json.loads((tmp_path / "gt.json").read_text())
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if a["num_keypoints"] > 0  # one person has no labelled keypoint
    ]
    (tmp_path / "r.json").write_text(json.dumps(results))
    args = ["eval", "-r", str(tmp_path / "r.json"), "-a", str(tmp_path / "gt.json")]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r_eval" / "report.json").read_text())
    assert report["dataset"] == "crowdpose"
    assert report["models"]["r"]["metrics"]["AP"] == pytest.approx(1.0)
    assert list(report["models"]["r"]["bins"]) == ["crowd_index", "overlap"]


def test_eval_bad_input_exits_with_a_message(files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1, "keypoints": [1, 2]')
    result = runner.invoke(app, ["eval", "-r", str(bad), "-a", str(files["gt"])])
    assert result.exit_code == 1
    assert "bad.json: malformed JSON" in result.output
    result = runner.invoke(
        app, ["eval", "-r", str(files["good"]), "-a", str(files["gt"]), "--compare", "nopath"]
    )
    assert result.exit_code == 2 and "NAME=PATH" in result.output


@pytest.fixture
def occluded(files, tmp_path):
    """The ``files`` ground truth's two (blank) images occluded at 0.2 and 0.4."""
    import cv2
    import numpy as np

    from occlupose.evaluation.occluded_dataset import write_occluded_copies

    images = tmp_path / "images"
    images.mkdir()
    for image_id in (1, 2):
        cv2.imwrite(str(images / f"{image_id:012d}.jpg"), np.full((800, 1000, 3), 90, np.uint8))
    write_occluded_copies(files["gt"], images, tmp_path / "occluded", [0.2, 0.4], seed=0)
    manifest = json.loads((tmp_path / "occluded" / "rate0.20" / "manifest.json").read_text())
    return tmp_path / "occluded", {p["annotation_id"]: p["covered"] for p in manifest["people"]}


def test_eval_reports_covered_keypoints_found_and_the_ap_drop(files, occluded, scenes, tmp_path):
    import numpy as np

    folder, covered = occluded
    assert all(len(c) in (3, 4) for c in covered.values())  # 0.2 x 17 visible keypoints
    gt = json.loads(files["gt"].read_text())
    anns = {a["id"]: a for a in gt["annotations"]}
    # At 0.2: person 1's covered keypoints badly placed (ks 0.3), person 2's well (ks 0.9),
    # their other keypoints exact; persons 3 and 4 missed.
    results = []
    for ann_id, ks_covered in ((1, 0.3), (2, 0.9)):
        ks = np.ones(17)
        ks[covered[ann_id]] = ks_covered
        results.append(scenes.displaced(anns[ann_id], ks, COCO_KEYPOINTS.sigmas, 30000.0))
    (tmp_path / "r20.json").write_text(json.dumps(results))
    out = tmp_path / "report"
    args = ["eval", "-r", str(files["good"]), "-a", str(files["gt"]), "--name", "ours"]
    args += ["--curve", f"0.2={tmp_path / 'r20.json'}", "--curve", f"0.4={files['poor']}"]
    args += ["--compare", f"other={files['fair']}", "--curve", f"other:0.2={files['poor']}"]
    args += ["--occluded", str(folder), "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    curve = report["controlled_occlusion"]["ours"]
    assert [c["rate"] for c in curve] == [0.0, 0.2, 0.4]  # rate 0: the --results file
    ap = [c["metrics"]["AP"] for c in curve]
    assert ap[0] == pytest.approx(1.0) and ap[2] == pytest.approx(0.5) and 0.3 < ap[1] < 0.5
    assert "covered" not in curve[0]
    found = curve[1]["covered"]
    total = sum(len(c) for c in covered.values())
    assert found["count"] == total
    assert found["matched_count"] == len(covered[1]) + len(covered[2])
    assert found["localised"] == pytest.approx(len(covered[2]) / total)
    assert found["localised_of_matched"] == pytest.approx(len(covered[2]) / found["matched_count"])
    assert curve[2]["covered"]["localised"] == 1.0  # every keypoint at ks 0.725 >= 0.5
    # Evenly spaced rates: the least-squares slope is (last - first) / span.
    summary = report["occlusion_summary"]
    assert summary["ours"]["drop_per_10pct"] == pytest.approx((1.0 - 0.5) / 4, abs=0.003)
    assert summary["other"]["drop_per_10pct"] == pytest.approx((0.7 - 0.5) / 2, abs=0.003)
    assert summary["ours"]["covered_localised"]["0.2"] == pytest.approx(found["localised"])
    assert "covered found" in result.output and "AP drop / 10 %" in result.output
    drop_row = next(line for line in result.output.splitlines() if "AP drop / 10 %" in line)
    assert "0.125" in drop_row and "0.100" in drop_row
    assert (out / "ap_vs_occlusion_rate.png").stat().st_size > 1000


def test_eval_occluded_bad_input(files, occluded, tmp_path):
    folder, _ = occluded
    base = ["eval", "-r", str(files["good"]), "-a", str(files["gt"])]
    out = tmp_path / "report"
    # A results file with image ids that are not in the occluded set.
    stranger = json.loads(files["poor"].read_text())
    stranger[0]["image_id"] = 77
    (tmp_path / "stranger.json").write_text(json.dumps(stranger))
    args = [*base, "--curve", f"0.2={tmp_path / 'stranger.json'}", "--occluded", str(folder)]
    result = runner.invoke(app, [*args, "--out", str(out)], terminal_width=400)
    assert result.exit_code == 1
    assert f"{tmp_path / 'stranger.json'}: results refer to 1 image ids" in result.output
    assert "77" in result.output
    result = runner.invoke(app, [*base, "--curve", f"1.5={files['poor']}", "--out", str(out)])
    assert result.exit_code == 2 and "occlusion rate 1.5" in result.output
    assert "outside [0, 1]" in result.output
    args = [*base, "--curve", f"0.3={files['poor']}", "--occluded", str(folder)]
    result = runner.invoke(app, [*args, "--out", str(out)], terminal_width=400)
    assert result.exit_code == 1
    assert "no manifest for occlusion rate 0.3 (it has 0.2, 0.4)" in result.output
    result = runner.invoke(app, [*base, "--occluded", str(folder), "--out", str(out)])
    assert result.exit_code == 2 and "--occluded needs --curve" in result.output
    # Manifests written from other annotations: the ground truth lost image 2.
    gt = json.loads(files["gt"].read_text())
    gt["images"] = gt["images"][:1]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] == 1]
    (tmp_path / "gt1.json").write_text(json.dumps(gt))
    good1 = [r for r in json.loads(files["good"].read_text()) if r["image_id"] == 1]
    (tmp_path / "good1.json").write_text(json.dumps(good1))
    args = ["eval", "-r", str(tmp_path / "good1.json"), "-a", str(tmp_path / "gt1.json")]
    args += ["--curve", f"0.2={tmp_path / 'good1.json'}", "--occluded", str(folder)]
    result = runner.invoke(app, [*args, "--out", str(out)], terminal_width=400)
    assert result.exit_code == 1
    assert "the occluded set does not match the ground truth" in result.output
    args = [*base, "--curve", f"0.2={files['poor']}", "--occluded", str(tmp_path / "nowhere")]
    result = runner.invoke(app, [*args, "--out", str(out)], terminal_width=400)
    assert result.exit_code == 1 and f"{tmp_path / 'nowhere'}: not found" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing written by any of them


def test_a_second_run_into_the_same_folder_waits_for_the_first(files, tmp_path):
    import subprocess
    import sys
    import time

    from occlupose.utils.io import exclusive_output

    out = tmp_path / "report"
    command = [sys.executable, "-m", "occlupose.cli", "eval", "--results", str(files["good"])]
    command += ["--ann", str(files["gt"]), "--out", str(out)]
    with exclusive_output(out):  # the first run, still writing
        second = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        first_line = second.stderr.readline()
        assert first_line.startswith(f"waiting for another run writing to {out}")
        time.sleep(1.0)
        assert second.poll() is None and not out.exists()  # it waits, having written nothing
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["good"]["metrics"]["AP"] == pytest.approx(1.0)
