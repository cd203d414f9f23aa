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
