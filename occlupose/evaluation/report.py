"""The full evaluation report of one or several models: numbers, terminal tables, JSON.

:func:`evaluate_results` evaluates COCO keypoint results; :func:`evaluate_people` is the
entry point for inference code, which has :class:`~occlupose.structures.person.Person`
lists per image rather than a results file. Both return a JSON-ready dict::

    {
      "dataset": "coco", "ground_truth": "...", "results": "...",
      "num_images": 5000, "num_people": 6352, "num_results": 6100,
      "metrics": {"AP": ..., ...},                       # the dataset's published metrics
      "bins": {"occlusion_rate": [{"label": "0", "num_people": ..., "AP": ...}, ...],
               "overlap": [...]},                       # crowd_index instead of occlusion
                                                        # rate for CrowdPose
      "keypoints": {"visible": {...}, "hidden": {...}}  # see keypoint_localisation
    }
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from occlupose.evaluation.coco_eval import (
    EvaluationProtocol,
    compute_metrics,
    get_protocol,
    make_evaluator,
)
from occlupose.evaluation.inputs import GroundTruthSource, ResultsSource, load_json, source_name
from occlupose.evaluation.occlusion import (
    DEFAULT_CROWD_INDEX_BINS,
    DEFAULT_OCCLUSION_BINS,
    DEFAULT_OVERLAP_BINS,
    Bin,
    ap_per_bin,
    covered_keypoint_localisation,
    crowd_index_per_image,
    keypoint_localisation,
    occlusion_rate_per_person,
    overlap_per_person,
)
from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.person import Person
from occlupose.utils.io import atomic_write_json

__all__ = [
    "BINNING_TITLES",
    "evaluate_occlusion_curve",
    "evaluate_people",
    "evaluate_results",
    "occlusion_summary",
    "people_to_results",
    "print_curves",
    "print_report",
    "report_models",
    "write_report",
]

BINNING_TITLES = {
    "occlusion_rate": "annotated occlusion rate (v=1 / labelled)",
    "overlap": "largest box IoU with another person",
    "crowd_index": "image crowd index",
}


def evaluate_results(
    ground_truth: GroundTruthSource,
    results: ResultsSource,
    dataset: str | KeypointSet | EvaluationProtocol = "coco",
    *,
    occlusion_bins: Sequence[Bin] | None = DEFAULT_OCCLUSION_BINS,
    overlap_bins: Sequence[Bin] | None = DEFAULT_OVERLAP_BINS,
    crowd_index_bins: Sequence[Bin] | None = DEFAULT_CROWD_INDEX_BINS,
    match_oks: float = 0.5,
    ks_thresholds: Sequence[float] = (0.5, 0.75),
    gt_name: str | None = None,
) -> dict[str, Any]:
    """Evaluate keypoint results: published metrics, AP per bin, keypoint-level rates.

    Args:
        ground_truth: COCO-format ground truth (path or dict).
        results: COCO keypoint results (path or list of dicts).
        dataset: ``"coco"``, ``"crowdpose"``, a registered name or a :class:`KeypointSet`.
        occlusion_bins: bins of the annotated occlusion rate (skipped for CrowdPose,
            whose visibility flags do not mark occlusion); None to skip.
        overlap_bins: bins of the largest box IoU with another person; None to skip.
        crowd_index_bins: bins of the image crowd index (only datasets with a crowd
            index split, i.e. CrowdPose); None to skip.
        match_oks: OKS at which people are matched for the keypoint-level rates.
        ks_thresholds: per-keypoint similarity thresholds of the keypoint-level rates.
        gt_name: how messages and the report call the ground truth (default: its path).
    """
    protocol = get_protocol(dataset)
    gt_name = gt_name or source_name(ground_truth)
    evaluator = make_evaluator(ground_truth, results, protocol, gt_name=gt_name)
    coco_gt = evaluator.cocoGt
    report: dict[str, Any] = {
        "dataset": protocol.name,
        "ground_truth": gt_name,
        "results": source_name(results),
        "num_images": len(coco_gt.getImgIds()),
        "num_people": sum(
            1 for a in coco_gt.anns.values() if not a["iscrowd"] and a["num_keypoints"] > 0
        ),
        "num_results": len(evaluator.cocoDt.anns),
        "metrics": compute_metrics(evaluator, gt_name),
        "bins": {},
    }
    # Keypoint-level rates read the all-images evaluation, so they come before the
    # bins, which re-run the evaluator on parts of the data.
    report["keypoints"] = keypoint_localisation(
        evaluator, match_oks=match_oks, ks_thresholds=ks_thresholds
    )
    if protocol.crowd_index_splits is not None:
        report["keypoints"]["note"] = (
            "CrowdPose's v=1 does not mean occluded (head and neck are always v=1)"
        )
    binnings = []
    if protocol.crowd_index_splits is not None:
        if crowd_index_bins is not None:
            values = crowd_index_per_image(coco_gt, gt_name)
            binnings.append(("crowd_index", values, crowd_index_bins, True))
    elif occlusion_bins is not None:
        binnings.append(
            ("occlusion_rate", occlusion_rate_per_person(coco_gt), occlusion_bins, False)
        )
    if overlap_bins is not None:
        binnings.append(("overlap", overlap_per_person(coco_gt), overlap_bins, False))
    for name, values, bins, per_image in binnings:
        report["bins"][name] = ap_per_bin(
            evaluator, values, bins, per_image=per_image, restore=False
        )
    return report


def evaluate_occlusion_curve(
    ground_truth: GroundTruthSource,
    results_per_rate: Mapping[float, ResultsSource],
    dataset: str | KeypointSet | EvaluationProtocol = "coco",
    *,
    gt_name: str | None = None,
    covered: Mapping[float, Mapping[int, Sequence[int]]] | None = None,
) -> list[dict[str, Any]]:
    """Metrics at each controlled occlusion rate: ``[{"rate", "results", "metrics"}, ...]``.

    ``results_per_rate`` maps an occlusion rate (see
    :func:`~occlupose.evaluation.controlled_occlusion.occlude_image`) to the results of
    the model on the images occluded at that rate; the ground truth is the same for all.
    ``covered`` maps a rate to the keypoints occluded at it (annotation id -> keypoint
    indices, from the manifests of :mod:`~occlupose.evaluation.occluded_dataset`); the
    entries of those rates get ``"covered"``: how many of them the model still
    localised (:func:`~occlupose.evaluation.occlusion.covered_keypoint_localisation`).
    """
    protocol = get_protocol(dataset)
    gt_name = gt_name or source_name(ground_truth)
    if isinstance(ground_truth, str | os.PathLike):
        ground_truth = load_json(ground_truth)  # parse once for all rates
    covered = covered or {}
    curve = []
    for rate in sorted(results_per_rate):
        results = results_per_rate[rate]
        evaluator = make_evaluator(ground_truth, results, protocol, gt_name=gt_name)
        entry = {
            "rate": float(rate),
            "results": source_name(results),
            "metrics": compute_metrics(evaluator, gt_name),
        }
        if rate in covered:
            entry["covered"] = covered_keypoint_localisation(evaluator, covered[rate])
        curve.append(entry)
    return curve


def occlusion_summary(curve: Sequence[Mapping[str, Any]], metric: str = "AP") -> dict[str, Any]:
    """How fast a model loses ``metric`` as occlusion grows, from its curve.

    ``drop_per_10pct`` is minus the slope of the least-squares line through
    ``(rate, metric)``, times 0.1: the metric lost per 10 % more of every person's
    visible keypoints covered (positive = worse under occlusion; None with fewer than
    two rates). ``covered_localised`` maps each rate with covered-keypoint data to the
    share of covered keypoints localised.
    """
    points = [(c["rate"], c["metrics"].get(metric)) for c in curve]
    points = [(r, v) for r, v in points if v is not None and v >= 0]
    drop = None
    if len({r for r, _ in points}) >= 2:
        rates, values = np.array(points, dtype=np.float64).T
        drop = float(-np.polyfit(rates, values, 1)[0] * 0.1)
    return {
        "metric": metric,
        "drop_per_10pct": drop,
        "covered_localised": {
            f"{c['rate']:g}": c["covered"]["localised"] for c in curve if "covered" in c
        },
    }


def people_to_results(
    people_per_image: Mapping[int, Sequence[Person]], category_id: int = 1
) -> list[dict]:
    """COCO keypoint results from the people found in each image (image id -> people)."""
    return [
        person.to_coco(image_id, category_id)
        for image_id, people in people_per_image.items()
        for person in people
    ]


def evaluate_people(
    people_per_image: Mapping[int, Sequence[Person]],
    ground_truth: GroundTruthSource,
    dataset: str | KeypointSet | EvaluationProtocol = "coco",
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`evaluate_results` for inference output: image id -> list of :class:`Person`.

    Person keypoints must be in original-image pixels. Keyword arguments are passed on.
    """
    return evaluate_results(ground_truth, people_to_results(people_per_image), dataset, **kwargs)


def report_models(
    ground_truth: GroundTruthSource,
    results_per_model: Mapping[str, ResultsSource],
    dataset: str | KeypointSet | EvaluationProtocol = "coco",
    *,
    out_dir: str | Path | None = None,
    curves: Mapping[str, Mapping[float, ResultsSource]] | None = None,
    precomputed_curves: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    covered: Mapping[float, Mapping[int, Sequence[int]]] | None = None,
    covered_per_model: Mapping[str, Mapping[float, Mapping[int, Sequence[int]]]] | None = None,
    console: Console | None = None,
    gt_name: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Evaluate several models on one ground truth, print tables, write JSON and plots.

    Args:
        ground_truth: COCO-format ground truth (path or dict).
        results_per_model: model name -> results (path or list of result dicts).
        dataset: see :func:`evaluate_results`.
        out_dir: where ``report.json`` and the PNG plots go (nothing written if None).
        curves: model name -> {occlusion rate -> results on images occluded at it}.
        precomputed_curves: model name -> an already evaluated curve (the
            ``controlled_occlusion`` entry of an earlier report).
        covered: occlusion rate -> the keypoints covered at it (annotation id ->
            keypoint indices; the manifests of ``occlupose occlude``), for every
            model's curve: adds the share of covered keypoints still localised.
        covered_per_model: the same for one model only (overrides ``covered``).
        console: where tables go (default: stdout).
        gt_name: how messages and the report call the ground truth (default: its path).
        **kwargs: passed to :func:`evaluate_results` (bins, thresholds).

    Returns:
        ``{"dataset", "ground_truth", "models": {name: report}, "controlled_occlusion":
        {name: curve}, "occlusion_summary": {name: summary}, "files": [...]}``, the
        content of ``report.json`` (summaries: :func:`occlusion_summary`).
    """
    from occlupose.evaluation import plots  # matplotlib only when a report is written

    if not results_per_model:
        raise ValueError("no results to evaluate")
    console = console or Console()
    protocol = get_protocol(dataset)
    gt_name = gt_name or source_name(ground_truth)
    if isinstance(ground_truth, str | os.PathLike):
        ground_truth = load_json(ground_truth)  # parse once for all models
    curves = dict(curves or {})
    combined: dict[str, Any] = {
        "dataset": protocol.name,
        "ground_truth": gt_name,
        "models": {},
        "controlled_occlusion": {k: list(v) for k, v in (precomputed_curves or {}).items()},
    }
    jobs = len(results_per_model) + sum(len(c) for c in curves.values())
    # A transient bar shows nothing in a file or pipe, except a stray empty line.
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("evaluating", total=jobs)
        for name, results in results_per_model.items():
            progress.update(task, description=f"evaluating {name}")
            report = evaluate_results(ground_truth, results, protocol, gt_name=gt_name, **kwargs)
            combined["models"][name] = report
            progress.advance(task)
        for name, per_rate in curves.items():
            progress.update(task, description=f"occlusion curve of {name}")
            combined["controlled_occlusion"][name] = evaluate_occlusion_curve(
                ground_truth,
                per_rate,
                protocol,
                gt_name=gt_name,
                covered=(covered_per_model or {}).get(name, covered),
            )
            progress.advance(task, len(per_rate))

    combined["occlusion_summary"] = {
        name: occlusion_summary(curve) for name, curve in combined["controlled_occlusion"].items()
    }
    print_report(combined["models"], console)
    if combined["controlled_occlusion"]:
        print_curves(combined["controlled_occlusion"], console)
    if out_dir is not None:
        out_dir = Path(out_dir)
        files = []
        models = combined["models"]
        first = next(iter(models.values()))
        for binning in first["bins"]:
            files.append(
                plots.plot_ap_per_bin(
                    {n: r["bins"][binning] for n, r in models.items()},
                    out_dir / f"ap_by_{binning}.png",
                    title=BINNING_TITLES.get(binning, binning),
                )
            )
        files.append(
            plots.plot_keypoint_localisation(
                {n: r["keypoints"] for n, r in models.items()},
                out_dir / "keypoint_localisation.png",
            )
        )
        if combined["controlled_occlusion"]:
            files.append(
                plots.plot_ap_vs_occlusion(
                    combined["controlled_occlusion"], out_dir / "ap_vs_occlusion_rate.png"
                )
            )
        combined["files"] = [str(f) for f in files] + [str(out_dir / "report.json")]
        write_report(out_dir / "report.json", combined)
        console.print(f"wrote {out_dir / 'report.json'} and {len(files)} plots to {out_dir}")
    return combined


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Write a report (or a dict of reports) as JSON, atomically; NaN becomes null."""
    return atomic_write_json(path, _json_safe(report), indent=2)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or value < 0)):
        return "–"  # no ground truth in this setting (pycocotools' -1)
    return f"{value:.{digits}f}"


def print_report(reports: Mapping[str, Mapping[str, Any]], console: Console | None = None) -> None:
    """Print reports of several models (name -> report) side by side as rich tables."""
    console = console or Console()
    names = list(reports)
    first = reports[names[0]]

    table = Table(
        title=f"{first['dataset']} keypoint AP",
        caption=f"{first['num_images']} images, {first['num_people']} people",
        title_justify="left",
    )
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for metric in first["metrics"]:
        table.add_row(metric, *(_fmt(reports[n]["metrics"].get(metric)) for n in names))
    console.print(table)

    for binning, rows in first["bins"].items():
        table = Table(
            title=f"AP by {binning.replace('_', ' ')}",
            caption=BINNING_TITLES.get(binning, binning),
            title_justify="left",
        )
        table.add_column("bin", no_wrap=True)
        table.add_column("people", justify="right")
        for name in names:
            table.add_column(f"{name}\nAP", justify="right", no_wrap=True)
            table.add_column(f"{name}\nAR", justify="right", no_wrap=True)
        for i, row in enumerate(rows):
            cells = []
            for name in names:
                other = reports[name]["bins"][binning][i]
                cells += [_fmt(other["AP"]), _fmt(other["AR"])]
            table.add_row(row["label"], str(row["num_people"]), *cells)
        console.print(table)

    thresholds = list(first["keypoints"]["visible"]["rate"])
    table = Table(
        title="Keypoint localisation",
        caption=f"people matched at OKS {first['keypoints']['match_oks']:g}; fraction of "
        "keypoints with per-keypoint similarity ks ≥ t",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("matched", justify="right")
    table.add_column("keypoints")
    table.add_column("n", justify="right")
    for thr in thresholds:
        table.add_column(f"ks ≥ {thr}", justify="right")
    table.add_column("mean ks", justify="right")
    for name in names:
        k = reports[name]["keypoints"]
        for kind in ("visible", "hidden"):
            table.add_row(
                name if kind == "visible" else "",
                f"{k['matched_people']}/{k['people']}" if kind == "visible" else "",
                kind,
                str(k[kind]["count"]),
                *(_fmt(k[kind]["rate"][thr]) for thr in thresholds),
                _fmt(k[kind]["mean_ks"]),
                end_section=kind == "hidden",
            )
    console.print(table)


def print_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], console: Console) -> None:
    """Print AP (and covered keypoints localised) against controlled occlusion rate,
    models side by side, with each model's AP drop per 10 % occlusion."""
    rates = sorted({c["rate"] for curve in curves.values() for c in curve})
    with_covered = {n for n, curve in curves.items() if any("covered" in c for c in curve)}
    ks = next(
        (c["covered"]["ks_threshold"] for n in with_covered for c in curves[n] if "covered" in c),
        0.5,
    )
    caption = "rate: fraction of every person's visible keypoints covered"
    if with_covered:
        caption += (
            f"; covered found: share of the covered keypoints localised (ks ≥ {ks:g}, "
            "missed people count as not found)"
        )
    caption += "; AP drop: least-squares slope x 0.1"
    table = Table(title="AP under controlled occlusion", caption=caption, title_justify="left")
    table.add_column("rate", justify="right")
    for name in curves:
        table.add_column(f"{name}\nAP", justify="right", no_wrap=True)
        if name in with_covered:
            table.add_column(f"{name}\ncovered found", justify="right", no_wrap=True)
    for rate in rates:
        cells = []
        for name, curve in curves.items():
            match = [c for c in curve if c["rate"] == rate]
            cells.append(_fmt(match[0]["metrics"]["AP"]) if match else "–")
            if name in with_covered:
                found = match[0].get("covered", {}).get("localised") if match else None
                cells.append(_fmt(found))
        table.add_row(f"{rate:g}", *cells, end_section=rate == rates[-1])
    cells = []
    for name, curve in curves.items():
        drop = occlusion_summary(curve)["drop_per_10pct"]
        cells.append("–" if drop is None else f"{round(drop, 3) + 0.0:.3f}")
        if name in with_covered:
            cells.append("")
    table.add_row("AP drop / 10 %", *cells)
    console.print(table)
