"""Notebook 12, the interpretability claim measured: what each channel group of a release knows
about the CIFAR-100 superclasses, for the head's contiguous groups against random groups of the
same channels. Rows are the JSON lines of `experiments/interpretability.py`, one per release:
{"release", "method", "epochs", "lambda", "n_train", "n_test", "command", "all": {"top1",
"mi_lower_bound"}, "contiguous": [partition], "random": [partition, ...]} with partition =
{"summary": {"top1", "mi_lower_bound", "effective_classes", "diversity"}, "groups": [{"channels",
"top1", "mi_lower_bound", "class_information", "effective_classes"}, ...]}; the statistics are
defined in `sparsejepa.interpretability`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..interpretability import detector_reference
from .runs import METHOD_COLOURS

RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results" / "interpretability.jsonl"
SUPERCLASSES = (  # CIFAR-100 coarse labels in index order (coarse_label_names of the data)
    "aquatic mammals", "fish", "flowers", "food containers", "fruit, vegetables",
    "electrical devices", "furniture", "insects", "large carnivores", "large man-made outdoor",
    "large natural outdoor", "large omnivores, herbivores", "medium mammals",
    "non-insect invertebrates", "people", "reptiles", "small mammals", "trees", "vehicles 1",
    "vehicles 2",
)  # fmt: skip
STATISTICS = {  # summary key: (column label, digits)
    "top1": ("top-1", 1),
    "mi_lower_bound": ("MI", 3),
    "effective_classes": ("eff.", 2),
    "diversity": ("div.", 4),
}


def load_rows(path: str | Path = RESULTS) -> dict[str, dict]:
    """{release: its latest row} of a results JSONL file, in the order first written."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; run `python experiments/interpretability.py RELEASE ...` first"
        )
    rows: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["release"]] = row
    return rows


def _values(row: dict, partition: str, key: str) -> list[float]:
    return [p["summary"][key] for p in row[partition]]


def _cell(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} +- {np.std(values, ddof=1):.{digits}f}"


def table(rows: dict[str, dict]) -> str:
    """Markdown: per release the probe on all channels and the four statistics of the contiguous
    groups and of the random groups (mean +- sd over draws), under the commands that made them."""
    commands = dict.fromkeys(r["command"] for r in rows.values())
    n = ", ".join(sorted({f"{r['n_train']} / {r['n_test']}" for r in rows.values()}))
    draws = ", ".join(sorted({str(len(r["random"])) for r in rows.values()}))
    stats = " / ".join(label for label, _ in STATISTICS.values())
    out = [*(f"`{c}`  " for c in commands), ""]
    first = next(iter(rows.values()))["contiguous"][0]["groups"]
    ideal = detector_reference(len(first[0]["class_information"]), len(first))
    out += [
        f"CIFAR-100 superclasses (20; H(Y) = log 20 = 3.00 nats), train / test images {n}, "
        f"random partitions per release {draws}. Per group of channels: a softmax probe from its "
        "channels alone; top-1 (%), MI = variational lower bound on I(group; superclass) "
        "(nats); eff. = effective superclasses the group is about (exp entropy of its profile "
        "of per-superclass information; 20 = all alike); div. = diversity among the groups "
        "(Jensen-Shannon divergence of the profiles, nats; 0 = all alike). Scale: if each group "
        "were a perfect detector of its own superclass, eff. = "
        f"{ideal['effective_classes']:.2f} and div. = {ideal['diversity']:.3f}. Means over the "
        "groups. Budgets differ: compare within equal epochs.",
        "",
        f"| release | epochs | lambda | all channels: top-1 / MI | contiguous: {stats} "
        f"| random: {stats} |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        cells = [
            " / ".join(_cell(_values(r, part, k), d) for k, (_, d) in STATISTICS.items())
            for part in ("contiguous", "random")
        ]
        lam = "-" if r["lambda"] is None else f"{r['lambda']:g}"
        out.append(
            f"| {name} | {r['epochs']:g} | {lam} | {r['all']['top1']:.1f} / "
            f"{r['all']['mi_lower_bound']:.3f} | {cells[0]} | {cells[1]} |"
        )
    refs = [r["reference"] for r in rows.values() if r.get("reference")]
    for ref in refs:
        out += [
            "",
            "Probe check on one group (scikit-learn's LogisticRegression / ours, same objective): "
            f"top-1 {ref['sklearn_top1']:.2f} / {ref['ours_top1']:.2f}, MI bound "
            f"{ref['sklearn_mi_lower_bound']:.4f} / {ref['ours_mi_lower_bound']:.4f} nats.",
        ]
    return "\n".join(out)


def _profile_release(rows: dict[str, dict], method: str) -> dict | None:
    """The seed-0 row of `method` with the longest training (the first such row otherwise)."""
    mine = [r for r in rows.values() if r["method"] == method and r["lambda"] in (None, 1.0)]
    return max(mine, key=lambda r: (r["release"].endswith("_s0"), r["epochs"]), default=None)


def plot(rows: dict[str, dict]) -> Figure:
    """Top: per release, the mean MI bound per group, the effective superclasses per group and the
    groups' diversity, for the head's contiguous groups (coloured by method) against random groups
    of the same channels (grey: mean and sd over draws), with the scale: all superclasses alike
    and the ideal of one perfect detector of a distinct superclass per group
    (`detector_reference`). Bottom: the per-superclass information of
    the contiguous groups of a SparseJEPA and a JEPA release (rows: groups)."""
    if not rows:
        raise ValueError("no rows: nothing to draw")
    fig = Figure(figsize=(15, 9), layout="constrained")
    axes = fig.subplot_mosaic("mmeedd;aaabbb", height_ratios=[1, 1.1])
    names = list(rows)
    x = np.arange(len(names))
    for key, ax, title in (
        ("mi_lower_bound", axes["m"], "MI bound per group (nats)"),
        ("effective_classes", axes["e"], "effective superclasses per group"),
        ("diversity", axes["d"], "diversity among groups (nats)"),
    ):
        rand = [_values(rows[n], "random", key) for n in names]
        mean, sd = (
            [np.mean(v) for v in rand],
            [np.std(v, ddof=1) if len(v) > 1 else 0 for v in rand],
        )
        ax.errorbar(x + 0.15, mean, sd, fmt="s", color="0.55", capsize=3, label="random groups")
        for i, n in enumerate(names):
            colour = METHOD_COLOURS.get(rows[n]["method"], "k")
            ax.plot(i - 0.15, _values(rows[n], "contiguous", key)[0], "o", color=colour, ms=7)
        ax.set_xticks(x, [f"{n}\n({rows[n]['epochs']:g} ep)" for n in names], rotation=60,
                      ha="right", fontsize=7)  # fmt: skip
        ax.set_title(title)
    classes = len(rows[names[0]]["contiguous"][0]["groups"][0]["class_information"])
    ideal = detector_reference(classes, len(rows[names[0]]["contiguous"][0]["groups"]))
    axes["e"].set_ylim(1, classes + 0.5)
    axes["e"].axhline(classes, color="0.3", ls=":", lw=1, label="all superclasses alike")
    axes["d"].set_yscale("log")
    for ax, key in ((axes["e"], "effective_classes"), (axes["d"], "diversity")):
        ax.axhline(ideal[key], color="tab:red", ls="--", lw=1,
                   label="each group a perfect detector\nof its own superclass")  # fmt: skip
        ax.legend(fontsize=7, loc="center right")
    for method, colour in METHOD_COLOURS.items():
        if any(r["method"] == method for r in rows.values()):
            axes["m"].plot([], [], "o", color=colour, label=f"{method}: the head's groups")
    axes["m"].legend(fontsize=7)
    vmax = max(
        max(g["class_information"]) for r in rows.values() for g in r["contiguous"][0]["groups"]
    )
    image = None
    for key, method in (("a", "SparseJEPA"), ("b", "JEPA")):
        ax, r = axes[key], _profile_release(rows, method)
        if r is None:
            ax.set_visible(False)
            continue
        info = np.array([g["class_information"] for g in r["contiguous"][0]["groups"]])
        image = ax.imshow(info, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(info.shape[1]), SUPERCLASSES[: info.shape[1]], rotation=60,
                      ha="right", fontsize=7)  # fmt: skip
        ax.set_yticks(range(len(info)), [f"group {g}" for g in range(len(info))], fontsize=7)
        ax.set_title(f"{r['release']}: information about each superclass (nats), head's groups")
    if image is not None:
        fig.colorbar(image, ax=[axes["a"], axes["b"]], shrink=0.8, label="nats")
    return fig
