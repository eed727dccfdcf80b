"""Tables and figures of the notebooks (notebooks/01-07), computed from released encoders.

Every notebook is a few calls into this module: it reads the releases of `release.default_dir()`
(env SPARSEJEPA_CHECKPOINTS, default `checkpoints/`), prints a table and saves a figure as PNG and
PDF (and the table as .txt) into `figure_dir()` (env SPARSEJEPA_FIGURES, default `paper_figures/`).
`run_notebooks` executes the notebooks headless (`sparsejepa figures`, `make figures`, the tests).

Runs are grouped by method, lambda and epochs ("JEPA 9 ep", "SparseJEPA lam=1 2 ep"); the spread
over seeds is the sample standard deviation (n >= 2). The paper's numbers appear beside ours,
labelled as reported by a secondary source (REFERENCE.md section 1): they are targets, not
verified results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .config import SparsityConfig
from .release import Release, load, releases

REPORTED_LABEL = "reported by a secondary source"
# (dataset, task) -> method -> top-1 %; Clevr/Count is VTAB's 8-way object count.
REPORTED = {
    ("cifar100", "fine"): {"JEPA": 40.0, "SparseJEPA": 45.4},
    ("clevr", "count"): {"JEPA": 59.13, "SparseJEPA": 62.33},
}
STAND_INS = {"count": "Clevr/Count", "dist": "Clevr/Dist"}  # shapes tasks standing in for CLEVR
# metrics.jsonl keys drawn by notebook 03 (those a run logged; mi_* come from the training monitor)
CURVES = ("jepa", "recon", "kl", "rankme", "mi_total", "mi_between", "active_connections")
METHOD_COLOURS = {"JEPA": "tab:blue", "SparseJEPA": "tab:orange", "Var-JEPA": "tab:green"}
ENV_FIGURES = "SPARSEJEPA_FIGURES"


# ----------------------------------------------------------------------------- releases and output


def figure_dir() -> Path:
    """env SPARSEJEPA_FIGURES, else the `paper_figures/` folder of this repository."""
    env = os.environ.get(ENV_FIGURES)
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[1] / "paper_figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(fig: Figure, name: str, dpi: int = 150, folder: str | Path | None = None) -> Path:
    """Write `name`.png and `name`.pdf into `folder` (default figure_dir()); returns the PNG."""
    out = _folder(folder)
    fig.savefig(out / f"{name}.png", dpi=dpi)
    fig.savefig(out / f"{name}.pdf")
    return out / f"{name}.png"


def save_table(text: str, name: str, folder: str | Path | None = None) -> str:
    """Write a printed table to `folder`/`name`.txt (default figure_dir()) and return it (the
    notebook prints it)."""
    (_folder(folder) / f"{name}.txt").write_text(text + "\n")
    return text


def _folder(folder: str | Path | None) -> Path:
    if folder is None:
        return figure_dir()
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def load_releases(directory: str | Path | None = None) -> list[Release]:
    """Every released encoder of a folder's manifest, sorted by method, lambda, seed."""
    names = releases(directory)
    if not names:
        raise FileNotFoundError(
            "no released encoders found; run `sparsejepa reproduce` (or point env "
            "SPARSEJEPA_CHECKPOINTS at a folder with a MANIFEST.json)"
        )
    loaded = [load(name, directory=directory) for name in names]
    return sorted(loaded, key=lambda r: (r.method, lam_of(r) or 0.0, seed_of(r), r.name))


def lam_of(r: Release) -> float | None:
    """The group-lasso lambda of a SparseJEPA run; None for JEPA."""
    return r.config.sparsity.lam if r.config.sparsity.enabled else None


def seed_of(r: Release) -> int:
    return r.config.train.seed


def epochs_of(r: Release) -> float:
    return r.config.train.epochs


def group_of(r: Release) -> str:
    """The runs that differ only by seed: method, lambda and training epochs, e.g. 'JEPA 9 ep',
    'SparseJEPA lam=1 2 ep'."""
    method = r.method if lam_of(r) is None else f"SparseJEPA lam={lam_of(r):g}"
    return f"{method} {epochs_of(r):g} ep"


def ablation_runs(rs: list[Release]) -> list[Release]:
    """The lambda sweep of notebook 07: the SparseJEPA and JEPA runs of the training length at
    which the most lambda values were released (ties: the most runs, then the longest training),
    so that no point of the sweep compares runs of different budgets."""
    lams: dict[float, list] = {}
    for r in rs:
        if lam_of(r) is not None:
            lams.setdefault(epochs_of(r), []).append(lam_of(r))
    if not lams:
        return []
    budget = max(lams, key=lambda e: (len(set(lams[e])), len(lams[e]), e))
    return [r for r in rs if r.method != "Var-JEPA" and epochs_of(r) == budget]


def reference_lambda(rs: list[Release]) -> float | None:
    """The lambda of the main SparseJEPA runs: the one with the most seeds (ties: closest to
    the default lambda); None without SparseJEPA runs."""
    counts = Counter(lam_of(r) for r in rs if lam_of(r) is not None)
    if not counts:
        return None
    default = SparsityConfig().lam
    return max(counts, key=lambda lam: (counts[lam], -abs(lam - default)))


def main_runs(rs: list[Release]) -> list[Release]:
    """JEPA and Var-JEPA runs and the SparseJEPA runs at the reference lambda (notebooks 01, 03,
    04)."""
    lam = reference_lambda(rs)
    return [r for r in rs if lam_of(r) is None or lam_of(r) == lam]


def describe(rs: list[Release]) -> str:
    """One line per release: name, group, seed, training steps and data, code version, and the
    training / probing time `reproduce` recorded (minutes, with the torch threads it used)."""
    lines = [f"{len(rs)} released encoders:"]
    for r in rs:
        dirty = "+dirty" if r.code.get("dirty") else ""
        commit = (r.code.get("git_commit") or "unknown")[:10] + dirty
        t = r.timing
        took = (
            f"  train {t['train_s'] / 60:.1f} min, probes {sum(t['probe_s'].values()) / 60:.1f}"
            f" min ({t['threads']} threads)"
            if t
            else ""
        )
        lines.append(
            f"  {r.name:<22} {group_of(r):<20} seed {seed_of(r)}  {r.step} steps on "
            f"{r.config.data.dataset}  code {commit}{took}"
        )
    return "\n".join(lines)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), sd


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean, sd = _mean_sd(values)
    spread = f" +- {sd:.1f}" if len(values) > 1 else ""
    return f"{mean:.1f}{spread} (n={len(values)})"


def _format(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# ----------------------------------------------------------------------------- 01 probes


def probe_values(
    rs: list[Release], metric: str = "best_by_val"
) -> dict[str, dict[tuple, list[float]]]:
    """{group: {(dataset, task): [top-1 per seed]}} from the probe results in the manifest.
    metric: "best_by_val" (the head chosen on a validation split), "best" (I-JEPA: best of 4
    heads on test, optimistic) or "knn"."""
    out: dict[str, dict[tuple, list[float]]] = {}
    for r in rs:
        cells = out.setdefault(group_of(r), {})
        for dataset, result in r.probes.items():
            for task, res in result["tasks"].items():
                cells.setdefault((dataset, task), []).append(float(res[metric]["top1"]))
    return out


def _column_name(dataset: str, task: str) -> str:
    if dataset == "shapes" and task in STAND_INS:
        return f"{dataset}/{task} [stand-in for {STAND_INS[task]}]"
    return f"{dataset}/{task}"


def baseline_values(rs: list[Release], metric: str = "best_by_val", seed: int = 0) -> dict:
    """{(dataset, task): {"pixels": top-1 %, "majority": top-1 %}} for every dataset the releases
    were probed on and that is found here: the same probes on the raw pixels
    (`baselines.pixel_probes`) and the majority-class rate, on the probe set of the seed-`seed`
    releases (same sizes; the shapes images depend on the seed). Datasets not found are left out.
    The pixel probes (long on CIFAR-100) are cached per probe set and version of the probe code."""
    from . import baselines, data, probe, probe_heads

    sizes = {}
    for r in rs:
        for dataset, result in r.probes.items():
            if seed_of(r) == seed or dataset not in sizes:
                sizes[dataset] = (result["n_train"], result["n_test"])
    out = {}
    for dataset, (n_train, n_test) in sorted(sizes.items()):
        try:
            ds = data.load_dataset(dataset, seed=seed, n_train=n_train, n_test=n_test)
        except data.DatasetError:
            continue
        tasks = sorted({t for r in rs for t in r.probes.get(dataset, {}).get("tasks", {})})
        code = b"".join(Path(m.__file__).read_bytes() for m in (probe_heads, probe, baselines))
        key = hashlib.sha256(code + f"{tasks}".encode())
        cache = (
            data.default_cache_dir()
            / "pixel_probes"
            / f"{dataset}_{n_train}_{n_test}_s{seed}_{key.hexdigest()[:16]}.json"
        )
        if cache.is_file():
            pixels = json.loads(cache.read_text())
        else:
            pixels = baselines.pixel_probes(ds, tasks=tasks, seed=seed)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(pixels))
        for task in tasks:
            out[(dataset, task)] = {
                "pixels": pixels["tasks"][task][metric]["top1"],
                "majority": baselines.majority_rate(ds, task),
            }
    return out


BASELINE_LABELS = {"pixels": "raw pixels, same linear probe", "majority": "majority class"}


def probe_table(
    rs: list[Release], metric: str = "best_by_val", baselines: dict | None = None
) -> str:
    """Top-1 % per group and task, mean +- sd over seeds, with the reported numbers and the
    baselines (`baseline_values`) beside."""
    values = probe_values(rs, metric)
    baselines = baselines or {}
    columns = sorted({key for cells in values.values() for key in cells} | set(REPORTED))
    header = ["method", *(_column_name(*c) for c in columns)]
    rows = [[group, *(_cell(cells.get(c, [])) for c in columns)] for group, cells in values.items()]
    for kind, label in BASELINE_LABELS.items():
        if any(kind in baselines.get(c, {}) for c in columns):
            rows.append(
                [
                    label,
                    *(
                        f"{baselines[c][kind]:.1f}" if kind in baselines.get(c, {}) else "-"
                        for c in columns
                    ),
                ]
            )
    for method in ("JEPA", "SparseJEPA"):
        rows.append(
            [
                f"{method} ({REPORTED_LABEL})",
                *(f"{REPORTED[c][method]:.2f}" if c in REPORTED else "-" for c in columns),
            ]
        )
    notes = [f"test top-1 %, probe '{metric}'; mean +- sample sd over seeds (n runs)"]
    if baselines:
        notes.append(
            "raw pixels: the same linear heads on the normalised pixels of the seed-0 "
            "probe set; majority class: always the most frequent training class"
        )
    if not any(c[0] == "clevr" for cells in values.values() for c in cells):
        notes.append(
            "CLEVR was not available to these runs: count/dist are the offline shapes stand-ins, "
            "not comparable with the reported Clevr/Count numbers"
        )
    return _format(header, rows) + "\n" + "\n".join(f"note: {n}" for n in notes)


def group_colours(rs: list[Release]) -> dict[str, tuple]:
    """A colour per group: the method's colour for its first group, lighter shades for the
    others (e.g. JEPA 18 ep dark blue, JEPA 9 ep light blue)."""
    from matplotlib.colors import to_rgb

    by_method: dict[str, list[str]] = {}
    for r in rs:
        groups = by_method.setdefault(r.method, [])
        if group_of(r) not in groups:
            groups.append(group_of(r))
    colours = {}
    for method, groups in by_method.items():
        base = np.array(to_rgb(METHOD_COLOURS[method]))
        for i, group in enumerate(groups):
            mix = 0.5 * i / max(len(groups) - 1, 1)  # 0 for the first group, up to half-white
            colours[group] = tuple(base * (1 - mix) + mix)
    return colours


def plot_probes(
    rs: list[Release], metric: str = "best_by_val", baselines: dict | None = None
) -> Figure:
    """Bars of mean top-1 per task and group, seeds as dots; the raw-pixel probe (dashed) and the
    majority-class rate (dotted) across each task's bars; the reported numbers (hollow diamonds)
    only over the columns they were reported for (never over the shapes stand-ins)."""
    values = probe_values(rs, metric)
    baselines = baselines or {}
    columns = sorted({key for cells in values.values() for key in cells})
    groups = list(values)
    fig = Figure(figsize=(3.2 + 1.5 * len(columns), 4.0), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(groups), 1)
    method_of_group = {group_of(r): r.method for r in rs}
    first_of_method = {
        m: next(g for g in groups if method_of_group[g] == m) for m in method_of_group.values()
    }
    colours = group_colours(rs)
    for g, group in enumerate(groups):
        method = method_of_group[group]
        for c, column in enumerate(columns):
            seeds = values[group].get(column, [])
            if not seeds:
                continue
            x = c + (g - (len(groups) - 1) / 2) * width
            ax.bar(
                x,
                np.mean(seeds),
                width * 0.9,
                color=colours[group],
                label=group if c == 0 else None,
            )
            ax.plot([x] * len(seeds), seeds, "k.", ms=4)
            reported = REPORTED.get(column, {})
            if method in reported and group == first_of_method[method]:
                ax.plot(
                    x,
                    reported[method],
                    marker="D",
                    mfc="none",
                    mec=METHOD_COLOURS[method],
                    mew=1.5,
                    ms=8,
                    ls="none",
                    label=f"{method} ({REPORTED_LABEL})",
                )
    for c, column in enumerate(columns):
        for kind, style in (("pixels", "--"), ("majority", ":")):
            if kind in baselines.get(column, {}):
                ax.hlines(
                    baselines[column][kind],
                    c - 0.45,
                    c + 0.45,
                    colors="k",
                    linestyles=style,
                    lw=1.2,
                    label=BASELINE_LABELS[kind],
                )
    ax.set_xticks(range(len(columns)), [_tick_name(*c) for c in columns], fontsize=7)
    ax.set_ylabel(f"test top-1 % ({metric})")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(
        unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    ax.set_title("Linear-probe transfer of the frozen target encoder", fontsize=10)
    if any(d == "shapes" and t in STAND_INS for d, t in columns):
        ax.set_xlabel(
            "shapes/count and shapes/dist are offline stand-ins for Clevr/Count and "
            "Clevr/Dist: the reported Clevr numbers do not apply to them",
            fontsize=7,
        )
    return fig


def _tick_name(dataset: str, task: str) -> str:
    if dataset == "shapes" and task in STAND_INS:
        return f"{dataset}/{task}\n(stand-in for\n{STAND_INS[task]})"
    return f"{dataset}/{task}"


# ----------------------------------------------------------------------------- 02 group matrices


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
    return _format(header, rows)


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


# ----------------------------------------------------------------------------- 03 training curves


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
    return _format(header, rows)


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


# ----------------------------------------------------------------------------- 04, 07 multiinfo


@functools.lru_cache(maxsize=2)
def _dataset(name: str, path: str | None, seed: int, n_train: int | None, n_test: int | None):
    from . import data

    return data.load_dataset(name, path=path, seed=seed, n_train=n_train, n_test=n_test)


def pooled_features(r: Release, n: int = 2000) -> np.ndarray:
    """Mean-pooled last-layer features (n, D) of the release's target encoder on a class-stratified
    subset of n test images of the dataset it was trained on (same seed and sizes as training)."""
    from . import data, probe

    d = r.config.data
    ds = _dataset(d.dataset, d.path, r.config.train.seed, d.n_train, d.n_test)
    labels = ds.labels_test[ds.tasks[0]]
    idx = data.stratified_indices(labels, min(n, len(labels)), seed=0)
    feats = probe.extract_features(r.encoder, ds.x_test[idx], ds.mean, ds.std, device="cpu")
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
    return _format(header, body) + (
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


# ----------------------------------------------------------------------------- 07 lambda ablation


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
            _cell(
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
    return _format(header, body) + f"\nnote: top-1 % ({metric}), mean over seeds; M in nats"


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


# ----------------------------------------------------------------------------- 05 theory numerics


def _push_forward(joint: np.ndarray, channels: list[np.ndarray]) -> np.ndarray:
    """P_Y(y) = sum_x P_X(x) prod_i K_i[x_i, y_i] (a product channel on a joint pmf tensor)."""
    for axis, kernel in enumerate(channels):
        joint = np.moveaxis(np.tensordot(joint, kernel, axes=([axis], [0])), -1, axis)
    return joint


def _tensor_multiinformation(joint: np.ndarray) -> float:
    from theory.tasks import discrete_multiinformation

    outcomes = np.indices(joint.shape).reshape(joint.ndim, -1).T
    return discrete_multiinformation(outcomes, joint.ravel())


def dpi_experiment(n_channels: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """Lemma A on random component-wise channels, exact values (no estimator):
    "gaussian": X Gaussian with a random correlation, Y = X + independent noise per coordinate;
    "discrete": a random pmf on small alphabets through random stochastic / deterministic maps
    per coordinate. Each value is an (n_channels, 2) array of (M(X), M(Y)) in nats."""
    from theory.estimators import gaussian_multiinformation
    from theory.tasks import random_correlation

    rng = np.random.default_rng(seed)
    gaussian, discrete = [], []
    for i in range(n_channels):
        d = int(rng.integers(2, 10))
        corr = random_correlation(d, rng, nats=float(rng.uniform(0.05, 3.0)))
        noise = rng.exponential(1.0, size=d) * rng.choice([0.01, 0.1, 1.0, 10.0])
        gaussian.append(
            (gaussian_multiinformation(corr), gaussian_multiinformation(corr + np.diag(noise)))
        )
        sizes = tuple(int(s) for s in rng.integers(2, 5, size=int(rng.integers(2, 4))))
        joint = rng.dirichlet(np.full(math.prod(sizes), 0.3)).reshape(sizes)
        if i % 2:
            channels = [rng.dirichlet(np.ones(int(rng.integers(2, 5))), size=s) for s in sizes]
        else:
            channels = [np.eye(s)[rng.integers(0, s, size=s)] for s in sizes]
        discrete.append(
            (
                _tensor_multiinformation(joint),
                _tensor_multiinformation(_push_forward(joint, channels)),
            )
        )
    return {"gaussian": np.array(gaussian), "discrete": np.array(discrete)}


def mixing_counterexample(n: int = 20000, seed: int = 0) -> dict[str, float]:
    """X1, X2 iid fair bits (M = 0) mapped by the mixing map (x1, x2) -> (x1, x1) (M = log 2):
    exact values and the plug-in estimates from n samples."""
    import theory
    from theory.tasks import DiscreteTask, bits, duplicated_bit

    independent = DiscreteTask(bits(2), np.full(4, 0.25))
    rng = np.random.default_rng(seed)
    x = independent.sample(n, rng)
    y = x[:, [0, 0]]
    return {
        "exact_before": independent.true_value, "exact_after": duplicated_bit().true_value,
        "estimate_before": theory.multiinformation(x, method="binned", seed=seed),
        "estimate_after": theory.multiinformation(y, method="binned", seed=seed),
    }  # fmt: skip


def grouping_identity(n: int = 5000, seed: int = 0) -> list[dict]:
    """Lemma B (total = between + sum within) on block-correlated Gaussians: exact terms from the
    correlation matrix and `theory.decompose(method="gaussian")` estimates from n samples."""
    import theory
    from theory.estimators import gaussian_multiinformation
    from theory.tasks import block_correlation, blocks

    rng = np.random.default_rng(seed)
    rows = []
    cases = (
        ((2, 2, 2), 0.6, 0.1),
        ((3, 3), 0.5, 0.3),
        ((4, 2, 2), 0.5, 0.0),
        ((2, 2, 2, 2), 0.2, 0.15),
    )
    for sizes, within, between in cases:
        corr = block_correlation(sizes, within, between)
        groups = blocks(sizes)
        exact_within = sum(gaussian_multiinformation(corr[np.ix_(g, g)]) for g in groups)
        x = rng.multivariate_normal(np.zeros(len(corr)), corr, size=n)
        est = theory.decompose(x, groups, method="gaussian", seed=seed)
        rows.append({
            "blocks": sizes, "within_corr": within, "between_corr": between,
            "exact_total": gaussian_multiinformation(corr),
            "exact_between": gaussian_multiinformation(corr, groups),
            "exact_within": exact_within,
            "est_total": est.total, "est_between": est.between, "est_within": sum(est.within),
            "est_residual": est.residual,
        })  # fmt: skip
    return rows


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
    return "\n".join(lines) + "\ngrouping identity (exact, nats):\n" + _format(header, body)


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


# ----------------------------------------------------------------------------- 06 deep linear


def linear_jepa_figures() -> dict[str, Figure]:
    """The deep linear JEPA vs MAE figures of theory.linear_jepa (one source for the notebook
    and paper_figures/linear_jepa.py)."""
    from theory.linear_jepa.plots import plot_critical_time_ratio, plot_trajectories

    return {
        "06_linear_jepa_trajectories": plot_trajectories(),
        "06_linear_jepa_critical_time": plot_critical_time_ratio(),
    }


def linear_jepa_table(eps: float = 0.01, p: float = 0.5, depths=(1, 2, 3, 4)) -> str:
    """Half-times (GD time) of REFERENCE's pair A = (lambda 1, rho 0.5), B = (0.6, 2) per depth,
    and which feature each objective learns first."""
    from theory.linear_jepa import critical_time

    a, b = (1.0, 0.5), (0.6, 2.0)
    rows = []
    for depth in depths:
        row = [depth]
        for objective in ("jepa", "mae"):
            ta, tb = (critical_time(*f, depth, objective, eps, p) for f in (a, b))
            row += [f"{ta:.1f}", f"{tb:.1f}", "A" if ta < tb else "B"]
        rows.append(row)
    header = ["L", "JEPA t*_A", "JEPA t*_B", "JEPA first", "MAE t*_A", "MAE t*_B", "MAE first"]
    return _format(header, rows) + (
        f"\nnote: A = (lambda 1, rho 0.5), B = (lambda 0.6, rho 2), eps = {eps}, p = {p}; "
        "REFERENCE.md: JEPA learns B first from L = 3, MAE learns A first at every depth"
    )


# ----------------------------------------------------------------------------- running notebooks


def notebook_paths(folder: str | Path | None = None) -> list[Path]:
    """notebooks/NN_*.ipynb in order (every numbered notebook, not only 01-07)."""
    folder = Path(folder) if folder else Path(__file__).resolve().parents[1] / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


class NotebookError(RuntimeError):
    """One or more notebooks failed; the message names each with its error."""


def run_notebooks(
    paths: list[Path],
    checkpoints: str | Path | None = None,
    figures: str | Path | None = None,
    timeout: int = 1800,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Execute notebooks headless with nbclient, each in a fresh kernel (outputs are not written
    back, so the committed notebooks stay stripped); env SPARSEJEPA_CHECKPOINTS /
    SPARSEJEPA_FIGURES point them at the releases and the output folder. Every notebook runs even
    when one fails; then NotebookError names each failure with nbclient's cell and traceback.
    Returns {notebook: seconds}."""
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env = dict(extra_env or {})
    if checkpoints is not None:
        env["SPARSEJEPA_CHECKPOINTS"] = str(Path(checkpoints).resolve())
    if figures is not None:
        env[ENV_FIGURES] = str(Path(figures).resolve())
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    timings, failures = {}, {}
    try:
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            client = NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            tic = time.perf_counter()
            try:
                client.execute()
            except CellExecutionError as err:
                failures[path.name] = str(err)
            timings[path.name] = time.perf_counter() - tic
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if failures:
        details = "\n\n".join(f"=== {name} ===\n{text}" for name, text in failures.items())
        raise NotebookError(
            f"{len(failures)} of {len(paths)} notebooks failed: {sorted(failures)}\n\n{details}"
        )
    return timings
