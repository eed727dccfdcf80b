"""Notebook 02, group connectivity of the sparsity head: the column norms of W (groups x latents)
and the count of active connections per SparseJEPA release."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from ..release import Release
from .runs import epochs_of, format_table, lam_of, seed_of


def sparse_runs(rs: list[Release]) -> list[Release]:
    return [r for r in rs if r.group_matrix is not None]


def active(r: Release) -> tuple[int, int]:
    """(active, total) group connections: columns of W with nonzero norm after the prox step."""
    return int((r.group_matrix > 0).sum()), int(r.group_matrix.size)


def group_table(rs: list[Release]) -> str:
    rows = []
    for r in sparse_runs(rs):
        a, total = active(r)
        per_group = (r.group_matrix > 0).sum(axis=1)
        rows.append(
            [
                r.name,
                f"{lam_of(r):g}",
                f"{epochs_of(r):g}",
                seed_of(r),
                f"{a}/{total}",
                " ".join(map(str, per_group)),
                f"{r.group_matrix.max():.3f}",
            ]
        )
    header = [
        "release",
        "lambda",
        "epochs",
        "seed",
        "active",
        "active latents per group",
        "max norm",
    ]
    return format_table(header, rows)


def plot_group_matrices(rs: list[Release]) -> Figure:
    """Heat-maps of ||w_j^(g)||_2 (rows: channel groups, columns: latents), one per SparseJEPA
    release, ordered by lambda, on one logarithmic colour scale (the surviving norms of a strong
    penalty are 100x smaller than those of lambda = 0); pruned (exactly 0) entries: grey with x."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    runs = sparse_runs(rs)
    if not runs:
        raise ValueError("no SparseJEPA releases: nothing to draw")
    cols = min(4, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig = Figure(figsize=(3.0 * cols + 0.8, 2.7 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    positive = np.concatenate([r.group_matrix[r.group_matrix > 0] for r in runs])
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = min(float(positive.min()) if positive.size else vmax, vmax / 10)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = None
    for ax, r in zip(axes, runs, strict=False):
        image = ax.imshow(
            np.ma.masked_equal(r.group_matrix, 0), cmap=cmap, norm=norm, aspect="auto"
        )
        zeros = np.argwhere(r.group_matrix == 0)
        ax.plot(zeros[:, 1], zeros[:, 0], "x", color="0.45", ms=5)
        a, total = active(r)
        ax.set_title(
            f"$\\lambda$={lam_of(r):g}, {epochs_of(r):g} ep, seed {seed_of(r)}: {a}/{total} active",
            fontsize=9,
        )
        ax.set_xlabel("latent j")
        ax.set_ylabel("channel group g")
    for ax in axes[len(runs) :]:
        ax.axis("off")
    fig.colorbar(
        image, ax=axes.tolist(), label="$||w_j^{(g)}||_2$, log scale (grey x: pruned to 0)"
    )
    return fig
