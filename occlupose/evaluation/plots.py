"""PNG plots of evaluation reports, several models side by side.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so plotting neither
needs a display nor changes the backend of the calling process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from occlupose.utils.io import atomic_write

__all__ = ["plot_ap_per_bin", "plot_ap_vs_occlusion", "plot_keypoint_localisation"]


def _figure(width: float, height: float):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def plot_ap_per_bin(
    rows_per_model: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    title: str,
    metric: str = "AP",
) -> Path:
    """Grouped bars of ``metric`` per bin, one colour per model.

    Args:
        rows_per_model: model name -> bins as returned by
            :func:`~occlupose.evaluation.occlusion.ap_per_bin` (same bins for all models).
        path: PNG to write.
        title: what the bins are of (the x-axis label).
        metric: which per-bin number to plot.
    """
    names = list(rows_per_model)
    rows = rows_per_model[names[0]]
    labels = [f"{r['label']}\n(n={r['num_people']})" for r in rows]
    x = np.arange(len(rows))
    width = 0.8 / len(names)
    fig, ax = _figure(max(5.0, 1.3 * len(rows) * max(1, len(names) / 2)), 3.8)
    for i, name in enumerate(names):
        values = [r[metric] if r[metric] is not None else np.nan for r in rows_per_model[name]]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, labels)
    ax.set_xlabel(title)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    if len(names) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_ap_vs_occlusion(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    metric: str = "AP",
) -> Path:
    """``metric`` against controlled occlusion rate, one line per model.

    Args:
        curves: model name -> ``[{"rate": r, "metrics": {...}}, ...]`` as returned by
            :func:`~occlupose.evaluation.report.evaluate_occlusion_curve`.
        path: PNG to write.
        metric: which metric to plot.
    """
    fig, ax = _figure(5.5, 3.8)
    for name, curve in curves.items():
        points = sorted((c["rate"], c["metrics"][metric]) for c in curve)
        rates, values = zip(*points, strict=True)
        ax.plot(rates, values, marker="o", label=name)
    ax.set_xlabel("fraction of visible keypoints occluded")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_keypoint_localisation(
    keypoints_per_model: Mapping[str, Mapping[str, Any]], path: str | Path
) -> Path:
    """Fraction of visible vs hidden keypoints localised, per threshold and model.

    Args:
        keypoints_per_model: model name -> the ``"keypoints"`` part of a report
            (:func:`~occlupose.evaluation.occlusion.keypoint_localisation`).
        path: PNG to write.
    """
    names = list(keypoints_per_model)
    thresholds = list(keypoints_per_model[names[0]]["visible"]["rate"])
    groups = [(kind, thr) for thr in thresholds for kind in ("visible", "hidden")]
    x = np.arange(len(groups))
    width = 0.8 / len(names)
    fig, ax = _figure(max(5.0, 1.2 * len(groups)), 3.8)
    for i, name in enumerate(names):
        k = keypoints_per_model[name]
        values = [k[kind]["rate"][thr] for kind, thr in groups]
        values = [v if v is not None else np.nan for v in values]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [f"{kind}\nks ≥ {thr}" for kind, thr in groups])
    ax.set_ylabel("fraction of keypoints")
    ax.set_title("keypoints of matched people", fontsize=10)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    if len(names) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
