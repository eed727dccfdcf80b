"""The releases as the notebooks group them: runs that differ only by seed form a group (method,
lambda, the head's reading, training epochs); the main runs, the lambda sweep, a colour per
group, and the plain-text tables every notebook prints (mean +- sample sd over seeds, n >= 2)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..config import SparsityConfig
from ..release import Release, load, releases

METHOD_COLOURS = {
    "JEPA": "tab:blue",
    "SparseJEPA": "tab:orange",
    "Var-JEPA": "tab:green",
    "EC-IJEPA": "tab:purple",
    "EC-SparseJEPA": "tab:brown",
}


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


def head_of(r: Release) -> str:
    """How a SparseJEPA run's head departs from the audit's `fixed` reading on its own tokens
    (docs/results.md "SparseJEPA: what the head does"): 'old head' for the head before 2026-12-05,
    else each departure ('pooled', 'K=64', 'EMA target': the presets' head, ...); '' for that
    head and for JEPA."""
    s, default = r.config.sparsity, SparsityConfig()
    if not s.enabled:
        return ""
    departures = [
        ("std target", s.standardize_target),
        ("W per element", s.lam_per == "element"),
        ("torch-init generators", not s.zero_init_generator),
    ]
    if all(on for _, on in departures):
        departures = [("old head", True)]
    departures += [
        ("pooled", s.pool),
        (f"K={s.latent_dim}", s.latent_dim != default.latent_dim),
        (f"encoder grad {s.encoder_grad:g}", s.encoder_grad != default.encoder_grad),
        ("ramped", tuple(s.encoder_grad_ramp) != tuple(default.encoder_grad_ramp)),
        ("EMA target", s.recon_target == "ema"),
    ]
    tags = [tag for tag, on in departures if on]
    return " ".join(tags)


def group_of(r: Release) -> str:
    """The runs that differ only by seed: method, lambda, the head's reading and training epochs,
    e.g. 'JEPA 9 ep', 'SparseJEPA lam=1 2 ep', 'SparseJEPA lam=1 old head 18 ep'."""
    method = r.method if lam_of(r) is None else f"SparseJEPA lam={lam_of(r):g}"
    return " ".join(filter(None, (method, head_of(r), f"{epochs_of(r):g} ep")))


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


def mean_sd_cell(values: list[float], digits: int = 1) -> str:
    """A table cell of values over seeds: "mean +- sd (n=...)" ("-" for none)."""
    if not values:
        return "-"
    mean, sd = _mean_sd(values)
    spread = f" +- {sd:.{digits}f}" if len(values) > 1 else ""
    return f"{mean:.{digits}f}{spread} (n={len(values)})"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text columns, left-aligned, with a dashed rule under the header."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


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
