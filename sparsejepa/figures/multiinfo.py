"""Notebooks 04 and 07, multiinformation of the pooled target features: total, between the head's
channel groups and within them (`theory.decompose`), with half-sampling intervals."""

from __future__ import annotations

import functools

import numpy as np
from matplotlib.figure import Figure

from ..release import Release
from .runs import METHOD_COLOURS, format_table, group_of, lam_of, seed_of


@functools.lru_cache(maxsize=2)
def _dataset(name: str, path: str | None, seed: int, n_train: int | None, n_test: int | None):
    from .. import data

    return data.load_dataset(name, path=path, seed=seed, n_train=n_train, n_test=n_test)


def pooled_features(r: Release, n: int = 2000) -> np.ndarray:
    """Mean-pooled last-layer features (n, D) of the release's target encoder on a class-stratified
    subset of n test images of the dataset it was trained on (same seed and sizes as training)."""
    from .. import data
    from ..features import extract_features

    d = r.config.data
    ds = _dataset(d.dataset, d.path, r.config.train.seed, d.n_train, d.n_test)
    labels = ds.labels_test[ds.tasks[0]]
    idx = data.stratified_indices(labels, min(n, len(labels)), seed=0)
    feats = extract_features(r.encoder, ds.x_test[idx], ds.mean, ds.std, device="cpu")
    return feats["last"].astype(np.float64)


def multiinformation_rows(
    rs: list[Release], n: int = 2000, method: str = "copula", ci: float = 0.95, n_boot: int = 50
) -> list[dict]:
    """Per release: total, between-group and summed within-group multiinformation (nats) of the
    pooled features, the channels grouped as the sparsity head groups them (G contiguous groups of
    D/G), by `theory.decompose`; total and between with half-sampling intervals (sampling
    variability only, not estimator bias). "model" is the release's method (JEPA, SparseJEPA,
    Var-JEPA), "method" the estimator's."""
    import theory

    rows = []
    for r in rs:
        x = pooled_features(r, n)
        groups = np.arange(x.shape[1]) // (x.shape[1] // r.config.sparsity.groups)  # labels
        parts = theory.decompose(x, groups, method=method, seed=0)
        total = theory.multiinformation(x, method=method, ci=ci, n_boot=n_boot, seed=1)
        between = theory.multiinformation(
            x, method=method, groups=groups, ci=ci, n_boot=n_boot, seed=2
        )
        rows.append({
            "release": r.name, "group": group_of(r), "model": r.method, "lam": lam_of(r),
            "seed": seed_of(r),
            "n": len(x), "dim": x.shape[1], "groups": r.config.sparsity.groups,
            "total": parts.total, "total_ci": (total.low, total.high),
            "between": parts.between, "between_ci": (between.low, between.high),
            "within": float(sum(parts.within)), "residual": parts.residual, "method": method,
        })  # fmt: skip
    return rows


def multiinformation_table(rows: list[dict]) -> str:
    header = [
        "release",
        "group",
        "seed",
        "N x D",
        "total [95% CI]",
        "between [95% CI]",
        "sum within",
        "residual",
    ]
    body = [
        [
            r["release"],
            r["group"],
            r["seed"],
            f"{r['n']} x {r['dim']}",
            f"{r['total']:.3f} [{r['total_ci'][0]:.3f}, {r['total_ci'][1]:.3f}]",
            f"{r['between']:.3f} [{r['between_ci'][0]:.3f}, {r['between_ci'][1]:.3f}]",
            f"{r['within']:.3f}",
            f"{r['residual']:+.3f}",
        ]
        for r in rows
    ]
    method = rows[0]["method"] if rows else "-"
    return format_table(header, body) + (
        f"\nnote: nats, method '{method}' on mean-pooled last-layer test features; groups = the "
        "head's G contiguous channel groups; total = between + sum within + residual"
    )


def run_label(group: str, seed: int) -> str:
    """A multi-line tick label: ('SparseJEPA lam=1 18 ep', 0) -> 'SparseJEPA / λ=1, 18 ep / seed 0'
    on three lines."""
    method, _, rest = group.partition(" ")
    if method.startswith("SparseJEPA") and rest.startswith("lam="):
        lam, _, rest = rest.partition(" ")
        rest = f"λ={lam[4:]}, {rest}"
    return f"{method}\n{rest}\nseed {seed}"


def plot_multiinformation(rows: list[dict]) -> Figure:
    """Total and between-group M per release (with intervals), and the sum of within-group M;
    colour: the model, hatch: the part."""
    from matplotlib.patches import Patch

    fig = Figure(figsize=(2.0 + 1.15 * len(rows), 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    parts = {
        "total": ("", "total"),
        "between": ("//", "between groups"),
        "within": ("..", "sum within groups"),
    }
    for offset, (key, (hatch, _)) in zip((-0.27, 0.0, 0.27), parts.items(), strict=True):
        values = np.array([r[key] for r in rows])
        colours = [METHOD_COLOURS[r["model"]] for r in rows]
        err = None
        if key != "within":
            ci = np.array([r[f"{key}_ci"] for r in rows])
            err = np.abs(np.stack([values - ci[:, 0], ci[:, 1] - values]))
        ax.bar(
            x + offset,
            values,
            0.26,
            yerr=err,
            color=colours,
            hatch=hatch,
            edgecolor="k",
            lw=0.5,
            capsize=2,
        )
    ax.set_xticks(x, [run_label(r["group"], r["seed"]) for r in rows], fontsize=7)
    ax.set_ylabel(f"multiinformation (nats, {rows[0]['method'] if rows else ''})")
    models = dict.fromkeys(r["model"] for r in rows)
    handles = [
        Patch(facecolor="white", edgecolor="k", hatch=h, label=label) for h, label in parts.values()
    ]
    handles += [Patch(color=METHOD_COLOURS[m], label=m) for m in models]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Multiinformation of pooled target features (95% intervals)", fontsize=10)
    return fig
