"""Notebook 03, training curves: the metrics.jsonl records of each release against steps."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from ..release import Release
from .runs import format_table, group_colours, group_of, seed_of

# metrics.jsonl keys drawn by notebook 03 (those a run logged; mi_* come from the training monitor)
CURVES = ("jepa", "recon", "kl", "rankme", "mi_total", "mi_between", "active_connections")


def logged_curves(rs: list[Release]) -> list[str]:
    """The CURVES keys that at least one release logged."""
    return [k for k in CURVES if any(rec.get(k) is not None for r in rs for rec in r.history)]


def curves_table(rs: list[Release]) -> str:
    """The last logged value of each curve per release."""
    curves = logged_curves(rs)
    header = ["release", "group", "seed", "steps", *curves]
    rows = []
    for r in rs:
        last = {}
        for record in r.history:
            last.update({k: v for k, v in record.items() if v is not None})
        rows.append(
            [
                r.name,
                group_of(r),
                seed_of(r),
                last.get("step", "-"),
                *(f"{last[k]:.4g}" if k in last else "-" for k in curves),
            ]
        )
    return format_table(header, rows)


CURVE_TITLES = {
    "jepa": "JEPA loss (smooth-L1, log)",
    "recon": "head reconstruction loss (log)",
    "kl": "head KL (log)",
    "rankme": "RankMe of pooled target features",
    "mi_total": "multiinformation, total (nats)",
    "mi_between": "multiinformation between groups (nats)",
    "active_connections": "active group connections",
}
SEED_STYLES = ("-", "--", ":", "-.")


def plot_training_curves(rs: list[Release], cols: int = 4) -> Figure:
    """JEPA loss, reconstruction, KL, RankMe, multiinformation and active connections (those
    logged) against steps, on a grid `cols` panels wide; colour: group (method, lambda, epochs),
    line style: seed; one legend naming every run."""
    curves = logged_curves(rs)
    if not curves:
        raise ValueError("the releases have no training history (metrics.jsonl) to draw")
    cols = min(cols, len(curves) + 1)  # + 1: the legend's panel
    rows = math.ceil((len(curves) + 1) / cols)
    fig = Figure(figsize=(2.6 * cols, 2.3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    colours = group_colours(rs)
    seeds = sorted({seed_of(r) for r in rs})
    handles = {}
    for r in rs:
        style = SEED_STYLES[seeds.index(seed_of(r)) % len(SEED_STYLES)]
        label = f"{group_of(r)}, seed {seed_of(r)}"
        for ax, key in zip(axes, curves, strict=False):
            points = [(rec["step"], rec[key]) for rec in r.history if rec.get(key) is not None]
            if points:
                steps, values = zip(*points, strict=True)
                (line,) = ax.plot(steps, values, style, color=colours[group_of(r)], lw=1.1)
                handles.setdefault(label, line)
    for ax, key in zip(axes, curves, strict=False):
        ax.set_title(CURVE_TITLES.get(key, key), fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        if key in ("jepa", "recon", "kl"):
            ax.set_yscale("log")
    legend_ax = axes[len(curves)]
    legend_ax.axis("off")
    legend_ax.legend(handles.values(), handles.keys(), fontsize=7, loc="center", frameon=False)
    for ax in axes[len(curves) + 1 :]:
        ax.axis("off")
    return fig
