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
    spread: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Path:
    """``metric`` against controlled occlusion rate, one line per model.

    When curve entries carry ``"covered"`` (the keypoints the occluders covered, see
    :func:`~occlupose.evaluation.report.evaluate_occlusion_curve`), a second panel
    shows the share of them each model still localised. Legend entries give each
    model's drop per 10 % occlusion (:func:`~occlupose.evaluation.report.occlusion_summary`).

    Args:
        curves: model name -> ``[{"rate": r, "metrics": {...}, "covered": {...}}, ...]``
            as returned by :func:`~occlupose.evaluation.report.evaluate_occlusion_curve`.
        path: PNG to write.
        metric: which metric to plot.
        spread: model name -> entries of the same form holding half-ranges (or other
            error bars) of the plotted values, drawn as error bars (e.g. over seeds).
    """
    from occlupose.evaluation.report import occlusion_summary

    covered = any("covered" in c for curve in curves.values() for c in curve)
    fig = Figure(figsize=(10.5 if covered else 5.5, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if covered else 1, squeeze=False)[0]
    spread = spread or {}
    for name, curve in curves.items():
        drop = occlusion_summary(curve, metric)["drop_per_10pct"]
        label = name if drop is None else f"{name} ({metric} drop {drop:.3f} / 10 %)"
        points = sorted((c["rate"], c["metrics"][metric]) for c in curve)
        rates, values = zip(*points, strict=True)
        errors = _errors(spread.get(name), rates, lambda c: c["metrics"][metric])
        axes[0].errorbar(rates, values, yerr=errors, marker="o", capsize=3, label=label)
        if covered:
            found = sorted(
                (c["rate"], c["covered"]["localised"])
                for c in curve
                if c.get("covered", {}).get("localised") is not None
            )
            if found:
                rates, values = zip(*found, strict=True)
                errors = _errors(spread.get(name), rates, lambda c: c["covered"]["localised"])
                axes[1].errorbar(rates, values, yerr=errors, marker="o", capsize=3, label=name)
    axes[0].set_ylabel(metric)
    if covered:
        axes[1].set_ylabel("covered keypoints localised (ks ≥ 0.5)")
        axes[1].set_title("the keypoints under the occluders", fontsize=10)
    for ax in axes:
        ax.set_xlabel("fraction of visible keypoints occluded")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    if covered:
        axes[1].set_xlim(axes[0].get_xlim())
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _errors(spread_curve, rates, value) -> list[float] | None:
    if not spread_curve:
        return None
    by_rate = {c["rate"]: c for c in spread_curve}
    errors = []
    for rate in rates:
        try:
            errors.append(float(value(by_rate[rate])))
        except (KeyError, TypeError):
            errors.append(0.0)
    return errors


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
