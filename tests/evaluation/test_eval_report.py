import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from occlupose.evaluation import (
    evaluate_keypoints,
    evaluate_occlusion_curve,
    evaluate_people,
    evaluate_results,
    report_models,
)
from occlupose.structures.keypoint_set import COCO_KEYPOINTS
from occlupose.structures.person import Person

DATA = Path(__file__).resolve().parents[1] / "data"

COCO4 = DATA / "coco_keypoints_4images"
COCO4_GT = COCO4 / "person_keypoints_4images.json"
COCO4_RESULTS = COCO4 / "keypoint_results_xtcocoapi_example.json"


def _strict_json(path):
    def reject(constant):
        raise AssertionError(f"{path} contains {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_coco_report_contents():
    report = evaluate_results(COCO4_GT, COCO4_RESULTS, "coco")
    assert report["metrics"] == evaluate_keypoints(COCO4_GT, COCO4_RESULTS, "coco")
    assert (report["num_images"], report["num_people"], report["num_results"]) == (4, 12, 73)
    assert list(report["bins"]) == ["occlusion_rate", "overlap"]
    for rows in report["bins"].values():
        # The bins partition the people that AP counts.
        assert sum(r["num_people"] for r in rows) == 12
    k = report["keypoints"]
    assert k["people"] == 12 and 0 < k["matched_people"] <= 12
    assert k["visible"]["count"] + k["hidden"]["count"] > 0


def test_crowdpose_report_bins_by_crowd_index_and_overlap():
    report = evaluate_results(
        DATA / "crowdpose_val" / "crowdpose_val.json.gz",
        DATA / "crowdpose_val" / "keypoint_predictions_perturbed.json.gz",
        "crowdpose",
    )
    assert list(report["bins"]) == ["crowd_index", "overlap"]
    crowd = report["bins"]["crowd_index"]
    assert [r["label"] for r in crowd] == ["[0, 0.2)", "[0.2, 0.8)", "≥ 0.8"]
    assert sum(r["num_images"] for r in crowd) == 2000
    # The default crowd-index bins are crowdposetools' easy / medium / hard split.
    for row, name in zip(crowd, ("AP_easy", "AP_medium", "AP_hard"), strict=True):
        assert row["AP"] == pytest.approx(report["metrics"][name], abs=5e-5)


def test_evaluate_people_is_the_inference_entry_point(scenes):
    anns = [
        scenes.annotation(1, 3, (40, 40, 100, 300)),
        scenes.annotation(2, 4, (400, 60, 90, 250)),
    ]
    gt = scenes.ground_truth(anns, [3, 4])
    people = {
        a["image_id"]: [Person(np.asarray(scenes.as_result(a)["keypoints"]).reshape(17, 3), 0.9)]
        for a in anns
    }
    report = evaluate_people(people, gt, "coco")
    assert report["metrics"]["AP"] == pytest.approx(1.0)
    assert report["num_results"] == 2


def test_occlusion_curve_and_full_report_files(scenes, tmp_path):
    anns = [scenes.annotation(i + 1, 1 + i % 3, (50 + 200 * i, 60, 100, 300)) for i in range(4)]
    gt = scenes.ground_truth(anns, [1, 2, 3])
    sigmas = COCO_KEYPOINTS.sigmas

    def results_at(oks):
        return [scenes.displaced(a, oks, sigmas, a["area"]) for a in anns]

    curve = evaluate_occlusion_curve(gt, {0.0: results_at(0.975), 0.3: results_at(0.725)})
    assert [c["rate"] for c in curve] == [0.0, 0.3]
    assert [c["metrics"]["AP"] for c in curve] == pytest.approx([1.0, 0.5])

    console = Console(record=True, width=200)
    combined = report_models(
        gt,
        {"ours": results_at(0.975), "baseline": results_at(0.825)},
        "coco",
        out_dir=tmp_path / "out",
        curves={"ours": {0.0: results_at(0.975), 0.3: results_at(0.725)}},
        precomputed_curves={"baseline": [{"rate": 0.0, "metrics": {"AP": 0.7}}]},
        console=console,
    )
    assert combined["models"]["baseline"]["metrics"]["AP"] == pytest.approx(0.7)
    written = _strict_json(tmp_path / "out" / "report.json")
    assert written["models"]["ours"]["metrics"]["AP"] == pytest.approx(1.0)
    assert written["controlled_occlusion"]["ours"][1]["metrics"]["AP"] == pytest.approx(0.5)
    assert written["models"]["ours"]["bins"]["occlusion_rate"][-1]["high"] is None  # inf
    for name in (
        "ap_by_occlusion_rate.png",
        "ap_by_overlap.png",
        "keypoint_localisation.png",
        "ap_vs_occlusion_rate.png",
    ):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = console.export_text()
    assert "ours" in text and "baseline" in text and "AP by occlusion rate" in text


def test_occlusion_summary_is_the_least_squares_drop_per_ten_percent():
    from occlupose.evaluation.report import occlusion_summary

    def curve(points, covered=None):
        return [
            {"rate": r, "metrics": {"AP": ap}, **({"covered": {"localised": c}} if c else {})}
            for (r, ap), c in zip(points, covered or [None] * len(points), strict=True)
        ]

    # AP = 0.8 - 0.6 rate exactly: 0.06 lost per 10 %.
    line = curve([(0.0, 0.8), (0.1, 0.74), (0.3, 0.62), (0.5, 0.5)], [None, 0.7, 0.6, 0.4])
    summary = occlusion_summary(line)
    assert summary["drop_per_10pct"] == pytest.approx(0.06)
    assert summary["covered_localised"] == {"0.1": 0.7, "0.3": 0.6, "0.5": 0.4}
    # Noise around a flat line: a least-squares fit, not the end points.
    flat = occlusion_summary(curve([(0.0, 0.5), (0.1, 0.6), (0.2, 0.4), (0.3, 0.5)]))
    assert flat["drop_per_10pct"] == pytest.approx(0.02)
    # AP that rises reads as a negative drop; one rate (or pycocotools' -1) gives none.
    assert occlusion_summary(curve([(0.0, 0.1), (0.5, 0.2)]))["drop_per_10pct"] < 0
    assert occlusion_summary(curve([(0.0, 0.5), (0.2, -1.0)]))["drop_per_10pct"] is None
