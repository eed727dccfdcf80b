"""EC-IJEPA against I-JEPA: the three measurements of `experiments/ec_ijepa.py` as a table and a
figure (notebook 11). Rows are the JSON lines that script writes, one per probe point of a run:
{"run", "step", "total_steps", "images_seen", "probes": {"[full:]SET/TASK": {"best_by_val",
"knn", "probe"}}, "rankme", "train_s_so_far", ...}. Run names are METHOD_s0 / METHOD_s1 (default
context scale) and METHOD_ctx0.6 / METHOD_ctx0.4, METHOD in {ijepa, ec}."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..release import Release
from .probes import probe_values
from .runs import epochs_of, format_table, mean_sd_cell

RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results" / "ec_ijepa.jsonl"
SHORT_EPOCHS = 3  # the budget of RESULTS; other budgets have their own file (results_path)
METHODS = {"ijepa": "I-JEPA", "ec": "EC-IJEPA"}
CONTEXT_SCALES = {"_s0": (0.85, 1.0), "_ctx0.6": (0.6, 0.8), "_ctx0.4": (0.4, 0.6)}
PAPER_CLAIMS = {  # EC-IJEPA (arXiv 2410.10773), qualitative: its numbers were not recovered
    "classification": "paper: EC-IJEPA above I-JEPA",
    "efficiency": "paper: EC-IJEPA learns faster",
    "context": "paper: EC-IJEPA flatter in context size",
}


def results_path(epochs: int = SHORT_EPOCHS) -> Path:
    """The results file of `experiments/ec_ijepa.py --epochs E`: RESULTS at the short budget,
    ec_ijepa_{E}ep.jsonl beside it otherwise."""
    return RESULTS if epochs == SHORT_EPOCHS else RESULTS.with_name(f"ec_ijepa_{epochs}ep.jsonl")


def load_rows(path: str | Path = RESULTS) -> dict[tuple[str, int], dict]:
    """{(run, step): the latest row for it} of a results JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; run `python experiments/ec_ijepa.py [--epochs E]` first"
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["run"], r["step"]): r for r in rows}


def _final(rows: dict) -> dict[str, dict]:
    return {r["run"]: r for r in rows.values() if r["step"] == r["total_steps"]}


def classification(rows: dict) -> dict[str, dict[str, list[float]]]:
    """{method: {"fine": [...], "coarse": [...]}}: full-probe `best_by_val` of each seed."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, r in sorted(_final(rows).items()):
        fine = r["probes"].get("full:cifar100/fine")
        if fine is None:
            continue
        cells = out.setdefault(name.split("_")[0], {"fine": [], "coarse": []})
        cells["fine"].append(fine["best_by_val"])
        cells["coarse"].append(r["probes"]["full:cifar100/coarse"]["best_by_val"])
    return out


def efficiency(rows: dict) -> dict[str, list[tuple[int, float]]]:
    """{method: [(images seen, subset-probe fine top-1), ...]} along the seed-0 run."""
    out: dict[str, list[tuple[int, float]]] = {}
    for (name, _), r in sorted(rows.items()):
        if name.endswith("_s0") and "cifar100/fine" in r["probes"]:
            point = (r["images_seen"], r["probes"]["cifar100/fine"]["best_by_val"])
            out.setdefault(name.split("_")[0], []).append(point)
    return out


def context_curve(rows: dict) -> dict[str, list[tuple[float, float]]]:
    """{method: [(mean context scale, subset-probe fine top-1 at the end), ...]}."""
    final, out = _final(rows), {}
    for method in METHODS:
        for suffix, scale in CONTEXT_SCALES.items():
            r = final.get(method + suffix)
            if r and "cifar100/fine" in r["probes"]:
                point = (sum(scale) / 2, r["probes"]["cifar100/fine"]["best_by_val"])
                out.setdefault(method, []).append(point)
    return out


def equal_budget_releases(rs: list[Release]) -> list[Release]:
    """The EC-IJEPA releases and the JEPA releases of the same training length."""
    budgets = {epochs_of(r) for r in rs if r.method == "EC-IJEPA"}
    return [r for r in rs if r.method in ("JEPA", "EC-IJEPA") and epochs_of(r) in budgets]


def release_table(rs: list[Release]) -> str:
    """Top-1 % of `equal_budget_releases` (the `reproduce` probes: `best_by_val`, and kNN on
    CIFAR-100), mean +- sd over seeds, one row per method and budget."""
    chosen = equal_budget_releases(rs)
    values, knn = probe_values(chosen), probe_values(chosen, "knn")
    columns = sorted({c for cells in values.values() for c in cells})
    knn_columns = [c for c in columns if c[0] == "cifar100"]
    header = [
        "method",
        *("/".join(c) for c in columns),
        *(f"{'/'.join(c)} kNN" for c in knn_columns),
    ]
    rows = [
        [group, *(mean_sd_cell(values[group][c]) for c in columns),
         *(mean_sd_cell(knn[group][c]) for c in knn_columns)]
        for group in values
    ]  # fmt: skip
    return format_table(header, rows)


def table(rows: dict) -> str:
    """The three measurements as markdown."""
    final = _final(rows)
    epochs = next(iter(rows.values()))["epochs"] if rows else "?"
    out = [f"EC-IJEPA vs I-JEPA, `cifar100_cpu` at {epochs} epochs (converged probe)", ""]
    out += ["Classification (full probe, `best_by_val` / kNN; shapes: shape / count / dist)", ""]
    out += ["| run | fine | coarse | shapes | RankMe | train min |", "|---|---|---|---|---|---|"]
    for name, r in sorted(final.items()):
        p = r["probes"]
        if "full:cifar100/fine" not in p:
            continue
        fine, coarse = p["full:cifar100/fine"], p["full:cifar100/coarse"]
        shapes = " / ".join(str(v["best_by_val"]) for k, v in p.items() if "shapes/" in k)
        out.append(
            f"| {name} | {fine['best_by_val']} / {fine['knn']} | {coarse['best_by_val']} / "
            f"{coarse['knn']} | {shapes} | {r['rankme']:.1f} | {r['train_s_so_far'] / 60:.1f} |"
        )
    for method, cells in classification(rows).items():
        out.append(
            f"| **{METHODS[method]} mean** | {mean_sd_cell(cells['fine'], 2)} | "
            f"{mean_sd_cell(cells['coarse'], 2)} | | | |"
        )
    out += ["", "Sample efficiency (seed 0; fine, converged probe on a 10k / 10k subset)", ""]
    curves = efficiency(rows)
    seen = [n for n, _ in next(iter(curves.values()), [])]
    out += ["| method | " + " | ".join(f"{n:,} images" for n in seen) + " |"]
    out += ["|---" * (1 + len(seen)) + "|"]
    for method, points in curves.items():
        out.append(f"| {METHODS[method]} | " + " | ".join(str(a) for _, a in points) + " |")
    out += ["", "Context scale (seed 0, end of run; fine, 10k / 10k subset probe)", ""]
    out += ["| context scale | " + " | ".join(METHODS.values()) + " |", "|---|---|---|"]
    curves = context_curve(rows)
    for scale in CONTEXT_SCALES.values():
        cells = [dict(curves.get(m, [])).get(sum(scale) / 2, "-") for m in METHODS]
        out.append(f"| {scale} | " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out)


def plot(rows: dict) -> Figure:
    """Three panels: fine / coarse top-1 by method (mean and seeds), fine top-1 against images
    seen, fine top-1 against the context block's scale; the paper's claims in the titles."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    colors = {"ijepa": "tab:blue", "ec": "tab:orange"}
    for i, (method, cells) in enumerate(classification(rows).items()):
        for j, task in enumerate(("fine", "coarse")):
            x = j + (i - 0.5) * 0.35
            axes[0].bar(x, statistics.mean(cells[task]), 0.35, color=colors[method],
                        label=METHODS[method] if j == 0 else None)  # fmt: skip
            axes[0].plot([x] * len(cells[task]), cells[task], "k.", ms=6)
    axes[0].set_xticks([0, 1], ["fine", "coarse"])
    axes[0].set_ylabel("CIFAR-100 top-1 (%)")
    axes[0].set_title(f"classification\n({PAPER_CLAIMS['classification']})")
    for method, points in efficiency(rows).items():
        axes[1].plot(*zip(*points, strict=True), "o-", color=colors[method], label=METHODS[method])
    axes[1].set_xlabel("images seen")
    axes[1].set_ylabel("fine top-1, 10k subset probe (%)")
    axes[1].set_title(f"sample efficiency, seed 0\n({PAPER_CLAIMS['efficiency']})")
    for method, points in context_curve(rows).items():
        axes[2].plot(*zip(*points, strict=True), "o-", color=colors[method], label=METHODS[method])
    axes[2].set_xlabel("context block scale (mean of its range)")
    axes[2].set_ylabel("fine top-1, 10k subset probe (%)")
    axes[2].set_title(f"robustness to the context window\n({PAPER_CLAIMS['context']})")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig
