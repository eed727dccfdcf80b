"""Notebook 05, the lemmas numerically: the table and figure of `theory.lemmas` (Lemma A on random
component-wise channels, the mixing-map counterexample, the grouping identity of Lemma B)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .runs import format_table


def theory_table(dpi: dict, mixing: dict, grouping: list[dict]) -> str:
    lines = []
    for name, pairs in dpi.items():
        worst = float((pairs[:, 1] - pairs[:, 0]).max())
        lines.append(
            f"DPI {name}: {len(pairs)} random component-wise channels, max M(Y) - M(X) = "
            f"{worst:.2e} nats (<= 0 up to rounding: Lemma A holds)"
        )
    lines.append(
        f"mixing map (x1, x2) -> (x1, x1): exact M {mixing['exact_before']:.4f} -> "
        f"{mixing['exact_after']:.4f} nats (log 2 = {math.log(2):.4f}); plug-in estimate "
        f"{mixing['estimate_before']:.4f} -> {mixing['estimate_after']:.4f}"
    )
    header = [
        "blocks",
        "rho in/out",
        "total",
        "between",
        "sum within",
        "between+within",
        "est. residual",
    ]
    body = [
        [
            str(r["blocks"]),
            f"{r['within_corr']}/{r['between_corr']}",
            f"{r['exact_total']:.4f}",
            f"{r['exact_between']:.4f}",
            f"{r['exact_within']:.4f}",
            f"{r['exact_between'] + r['exact_within']:.4f}",
            f"{r['est_residual']:+.1e}",
        ]
        for r in grouping
    ]
    return "\n".join(lines) + "\ngrouping identity (exact, nats):\n" + format_table(header, body)


def plot_theory(dpi: dict, mixing: dict, grouping: list[dict]) -> Figure:
    fig = Figure(figsize=(13.0, 3.5), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, (name, pairs) in zip(axes[:2], dpi.items(), strict=True):
        ax.plot(pairs[:, 0], pairs[:, 1], ".", ms=4, alpha=0.7)
        top = float(pairs.max()) * 1.05
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set_xlabel("M(X) (nats)")
        ax.set_ylabel("M(Y) after the channel")
        ax.set_title(f"DPI, {name} channels (exact)", fontsize=9)
    ax = axes[2]
    ax.bar([0, 1], [mixing["exact_before"], mixing["exact_after"]], color="0.7", label="exact")
    ax.plot([0, 1], [mixing["estimate_before"], mixing["estimate_after"]], "rD", label="estimate")
    ax.axhline(math.log(2), color="k", ls=":", lw=0.8)
    ax.set_xticks([0, 1], ["(X1, X2) iid bits", "(X1, X1)"])
    ax.set_title("mixing map raises M (scope of Lemma A)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[3]
    x = np.arange(len(grouping))
    between = [r["exact_between"] for r in grouping]
    within = [r["exact_within"] for r in grouping]
    ax.bar(x, between, label="between groups")
    ax.bar(x, within, bottom=between, label="sum within groups")
    ax.plot(x, [r["exact_total"] for r in grouping], "k_", ms=20, mew=2, label="total")
    ax.set_xticks(x, [str(r["blocks"]) for r in grouping], fontsize=7)
    ax.set_title("grouping identity (Lemma B)", fontsize=9)
    ax.legend(fontsize=7)
    return fig
