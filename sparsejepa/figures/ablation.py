"""Notebook 07, the lambda ablation: probe accuracy, active connections and multiinformation
against the group-lasso lambda, JEPA as the reference."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..release import Release
from .groups import active
from .runs import format_table, group_of, lam_of, mean_sd_cell


def lambda_table(rs: list[Release], mi_rows: list[dict], metric: str = "best_by_val") -> str:
    """Per lambda (JEPA first): probe top-1 per task, active connections, total and between M."""
    mi = {row["release"]: row for row in mi_rows}
    keys = sorted({(d, t) for r in rs for d, res in r.probes.items() for t in res["tasks"]})
    by_group: dict[str, list[Release]] = {}
    for r in rs:
        by_group.setdefault(group_of(r), []).append(r)
    header = ["group", *(f"{d}/{t}" for d, t in keys), "active", "M total", "M between"]
    body = []
    for group, runs in by_group.items():
        cells = [
            mean_sd_cell(
                [
                    r.probes[d]["tasks"][t][metric]["top1"]
                    for r in runs
                    if d in r.probes and t in r.probes[d]["tasks"]
                ]
            )
            for d, t in keys
        ]
        act = [active(r)[0] for r in runs if r.group_matrix is not None]
        body.append(
            [
                group,
                *cells,
                f"{np.mean(act):.1f}" if act else "-",
                *(
                    f"{np.mean([mi[r.name][k] for r in runs if r.name in mi]):.3f}"
                    if any(r.name in mi for r in runs)
                    else "-"
                    for k in ("total", "between")
                ),
            ]
        )
    return format_table(header, body) + f"\nnote: top-1 % ({metric}), mean over seeds; M in nats"


def plot_lambda_ablation(
    rs: list[Release], mi_rows: list[dict], metric: str = "best_by_val"
) -> Figure:
    """Probe top-1 per task and multiinformation against lambda (symlog axis, 0 = VAE head only);
    JEPA as dashed horizontal lines."""
    sparse = [r for r in rs if lam_of(r) is not None]
    jepa = [r for r in rs if r.method == "JEPA"]
    keys = sorted({(d, t) for r in rs for d, res in r.probes.items() for t in res["tasks"]})
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    cmap = [f"C{i}" for i in range(10)]
    for i, (d, t) in enumerate(keys):
        pts = [
            (lam_of(r), r.probes[d]["tasks"][t][metric]["top1"])
            for r in sparse
            if d in r.probes and t in r.probes[d]["tasks"]
        ]
        if pts:
            lams = sorted({p[0] for p in pts})
            means = [np.mean([v for lam, v in pts if lam == x]) for x in lams]
            left.plot(lams, means, "o-", color=cmap[i % 10], label=f"{d}/{t}")
            left.plot(*zip(*pts, strict=True), ".", color=cmap[i % 10], alpha=0.5)
        base = [
            r.probes[d]["tasks"][t][metric]["top1"]
            for r in jepa
            if d in r.probes and t in r.probes[d]["tasks"]
        ]
        if base:
            left.axhline(np.mean(base), color=cmap[i % 10], ls="--", lw=0.8)
    left.set_ylabel(f"test top-1 % ({metric}); dashed: JEPA")
    mi = {row["release"]: row for row in mi_rows}
    for key, marker, colour in (("total", "o", "C0"), ("between", "s", "C1")):
        pts = sorted(
            (lam_of(r), mi[r.name][key], mi[r.name][f"{key}_ci"]) for r in sparse if r.name in mi
        )
        if pts:
            lams, vals, cis = (np.array(v) for v in zip(*pts, strict=True))
            right.errorbar(
                lams,
                vals,
                yerr=np.abs(np.stack([vals - cis[:, 0], cis[:, 1] - vals])),
                marker=marker,
                ls="none",
                capsize=2,
                color=colour,
                alpha=0.6,
            )
            grid = np.unique(lams)
            right.plot(
                grid,
                [vals[lams == x].mean() for x in grid],
                "-",
                marker=marker,
                color=colour,
                label=f"M {key} (runs with 95% CI; line: seed mean)",
            )
        base = [mi[r.name][key] for r in jepa if r.name in mi]
        if base:
            right.axhline(np.mean(base), color=colour, ls="--", lw=0.8, label=f"JEPA M {key}")
    right.set_ylabel("multiinformation (nats)")
    lams = [lam_of(r) for r in sparse]
    for ax in (left, right):
        ax.set_xscale("symlog", linthresh=0.1)
        if lams:
            ax.set_xlim(-0.02, max(max(lams), 0.1) * 1.5)
        ax.set_xlabel("group-lasso $\\lambda$ (0 = VAE head only)")
        ax.legend(fontsize=7)
    return fig
