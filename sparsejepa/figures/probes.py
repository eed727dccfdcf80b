"""Notebook 01, linear-probe transfer: top-1 per group and task beside the paper's reported numbers
(labelled as reported by a secondary source, REFERENCE.md section 1: targets, not verified
results), the raw-pixel probe and the majority-class rate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..release import Release
from .runs import METHOD_COLOURS, format_table, group_colours, group_of, mean_sd_cell, seed_of

REPORTED_LABEL = "reported by a secondary source"
# (dataset, task) -> method -> top-1 %; Clevr/Count is VTAB's 8-way object count.
REPORTED = {
    ("cifar100", "fine"): {"JEPA": 40.0, "SparseJEPA": 45.4},
    ("clevr", "count"): {"JEPA": 59.13, "SparseJEPA": 62.33},
}
STAND_INS = {"count": "Clevr/Count", "dist": "Clevr/Dist"}  # shapes tasks standing in for CLEVR


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
    from .. import baselines, data, probe, probe_heads

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
    rows = [
        [group, *(mean_sd_cell(cells.get(c, [])) for c in columns)]
        for group, cells in values.items()
    ]
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
    return format_table(header, rows) + "\n" + "\n".join(f"note: {n}" for n in notes)


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
