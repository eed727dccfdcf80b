"""Figures and tables of notebook 10 from the `compare` runs' results.json files.

Results are read from `runs_dir()/<table>/results.json` (env SPARSEJEPA_TABULAR_RUNS, default
`runs/tabular` in this repository), written by `sparsejepa tabular compare --config <table>
--out runs/tabular/<table>`. Figures go to env SPARSEJEPA_FIGURES, default `paper_figures/`, as
PNG and PDF. Without any results (a fresh checkout, a headless notebook test), `load_or_quick`
runs a smoke comparison of tiny models instead, tagged "_quick".
"""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from ..output import save as save_figure
from .config import load_config
from .experiment import label, markdown, run_comparison, summarise

REPO = Path(__file__).resolve().parents[2]
QUICK = [
    "model.width=16",
    "model.depth=1",
    "model.heads=2",
    "model.pred_width=16",
    "model.pred_depth=1",
    "model.pred_heads=2",
    "model.latent_dim=16",
    "model.z_dim=4",
    "train.epochs=2",
    "eval.heads=[logreg]",
    "eval.mask_draws=2",
    "eval.seeds=[0,1]",
    "data.mixture_rows=600",
]
READOUTS = {"posterior_mean": "posterior means", "backbone": "backbone"}
SOURCE_SPEARMAN = 0.64  # Var-JEPA's reported value on its own simulated table (REFERENCE 7, [S])
KIND_STYLE = {
    "confidence": ("k", "--"),
    "target_posterior": ("tab:orange", "-"),
    "target_posterior_x": ("tab:red", "-"),
    "predictor": ("tab:green", "-"),
    "predictor_x": ("tab:olive", "-"),
    "predictor_loo": ("tab:cyan", "-"),
    "z": ("tab:purple", "-"),
    "predictive": ("tab:blue", "-"),
    "oracle": ("0.4", ":"),
}


def runs_dir() -> Path:
    env = os.environ.get("SPARSEJEPA_TABULAR_RUNS")
    return Path(env).expanduser() if env else REPO / "runs" / "tabular"


def available(names: list[str]) -> dict[str, dict]:
    """{table: results} for the tables of `names` that have a results.json (maybe none)."""
    return {
        n: json.loads((runs_dir() / n / "results.json").read_text())
        for n in names
        if (runs_dir() / n / "results.json").is_file()
    }


def load_results(names: list[str]) -> dict[str, dict]:
    """{table: results} for the tables that have results; an error naming the command if none."""
    found = available(names)
    if not found:
        raise FileNotFoundError(
            f"no results.json under {runs_dir()} for {names}; run e.g. `sparsejepa tabular "
            f"compare --config {names[0]} --out {runs_dir() / names[0]}` (or set "
            "SPARSEJEPA_TABULAR_RUNS)"
        )
    return found


def load_or_quick(names: list[str], log=print) -> tuple[dict[str, dict], str]:
    """(results, tag): the measured results of `names` when any exist (tag ""), else a smoke run
    of tiny models (QUICK overrides) on wine and the mixture in a temporary folder, announced as
    such and tagged "_quick" so that its figures never overwrite the measured ones."""
    try:
        return load_results(names), ""
    except FileNotFoundError as err:
        log(
            f"{err}\n-> running the QUICK smoke comparison instead (tiny models, seconds; these "
            "are not the measured tables)"
        )
    out = Path(tempfile.mkdtemp(prefix="tabular-quick-"))
    results = {
        name: run_comparison(load_config(name, QUICK), out / name, log=None)
        for name in ("wine", "simulation")
    }
    return results, "_quick"


# The simulation study's settings (Var-JEPA's Table 1: the full ELBO and its ablations, then two
# predictor settings), the run folders of experiments/tabular_var_jepa.sh
SIMULATION_RUNS = {
    "full ELBO": "simulation",
    "no KL on s_x": "simulation_no_kl_sx",
    "no reconstruction / generation": "simulation_no_recon_gen",
    "no KL at all": "simulation_no_kl",
    # not ablations: the full ELBO with a predictor that learns the conditional (tabular README)
    "full ELBO, predictor 2 x 64, 100 epochs": "simulation_pred64_e100",
    "full ELBO, predictor 2 x 64, decoder -4, s_x KL 0.1, 100 epochs": (
        "simulation_pred64_dec4_klsx0.1_e100"
    ),
}


def simulation_table(results: dict[str, dict]) -> str:
    """Markdown: one row per simulation setting present in `results` ({run folder name:
    results}), the simulation-study metrics and two Spearman correlations with the exact
    ambiguity, mean +- std over seeds."""
    cols = [
        ("simulation", "probe_sx"),
        ("simulation", "probe_sy"),
        ("simulation", "kl_aggregate"),
        ("simulation", "cov_minus_i"),
        ("spearman", "predictive"),
        ("spearman", "target_posterior"),
        ("predictor_r2", None),
    ]
    lines = [
        "| ELBO | probe acc. from s_x | from s_y | KL(aggregate q(s_x) ‖ N(0,I)) (nats) | "
        "‖Cov − I‖_F | Spearman: predictive std | target posterior std | predictor R² (leave "
        "one out) |",
        "|---|" + "---|" * len(cols),
    ]
    for variant, name in SIMULATION_RUNS.items():
        if name in results:
            s = summarise(results[name])
            cells = " | ".join(
                "{:.3f} ± {:.3f}".format(*(s[key] if metric is None else s[key][metric]))
                for key, metric in cols
            )
            lines.append(f"| {variant} | {cells} |")
    if len(lines) == 2:
        names = list(SIMULATION_RUNS.values())
        return f"(no simulation-study runs: none of {names} in the results)"
    return "\n".join(lines)


def tables(results: dict[str, dict]) -> str:
    return "\n\n".join(markdown(r) for r in results.values())


def _accuracies(results: dict, method: str, pool: str) -> dict[str, list[float]]:
    runs = [r for r in results["runs"] if label(r) == f"{method}[{pool}]"]
    return {head: [r["acc"][head] for r in runs] for head in (runs[0]["acc"] if runs else ())}


def var_minus_t(pairs: dict[str, tuple[dict, dict]], pool: str = "mean") -> str:
    """Markdown: Var-T-JEPA minus T-JEPA test accuracy (points) per head on `pool` embeddings,
    one row per table, each given as (results holding T-JEPA, results holding Var-T-JEPA: the
    same run, or a re-evaluation of its checkpoints with another `eval.var_embedding`). Each cell
    is the gap of the seed means ± its standard error sqrt(s_V^2 / n_V + s_T^2 / n_T) (unpaired,
    0 for one seed), starred when gap >= -SE as printed (one decimal), issue 21's "at least T-JEPA
    (within one standard error or above)". Heads are those of the first table with both methods."""
    lines, heads = [], None
    for name, (with_t, with_var) in pairs.items():
        t, v = _accuracies(with_t, "t_jepa", pool), _accuracies(with_var, "var_t_jepa", pool)
        if not (t and v):
            continue
        heads = heads or [h for h in t if h in v]
        cells = []
        for h in heads:
            if h not in t or h not in v:
                cells.append("n/a")
                continue
            gap = 100 * (np.mean(v[h]) - np.mean(t[h]))
            se = 100 * math.sqrt(
                sum(np.var(a, ddof=1) / len(a) if len(a) > 1 else 0.0 for a in (v[h], t[h]))
            )
            gap, se = round(gap, 1) + 0.0, round(se, 1)  # + 0.0: no "-0.0"
            cells.append(f"{gap:+.1f} ± {se:.1f}{' *' if gap >= -se else ''}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if not lines:
        return "(no table with both T-JEPA and Var-T-JEPA runs)"
    header = f"| table ([{pool}]) | " + " | ".join(heads) + " |"
    return "\n".join([header, "|---" * (len(heads) + 1) + "|", *lines])


def readout_pairs(results: dict[str, dict]) -> dict[str, tuple[dict, dict]]:
    """`var_minus_t`'s pairs for `results` ({table: results}): each table as it was evaluated, and
    again where `runs_dir()/<table>_backbone` holds a re-evaluation of the same checkpoints with
    `eval.var_embedding=backbone` (tabular README); rows are named by the readout they used."""
    backbone = available([f"{name}_backbone" for name in results])
    pairs = {}
    for name, res in results.items():
        for with_var in (res, backbone.get(f"{name}_backbone")):
            if with_var is not None:
                readout = with_var["config"]["eval"].get("var_embedding", "posterior_mean")
                pairs.setdefault(f"{name}, {READOUTS[readout]}", (res, with_var))
    return pairs


def plot_selective(results: dict[str, dict], head: str = "logreg") -> Figure:
    """Test accuracy of `head` on Var-T-JEPA embeddings vs the fraction of most uncertain rows
    dropped, one panel per table that has Var-T-JEPA's uncertainties; mean over seeds."""
    results = {k: r for k, r in results.items() if _var_selective(r) is not None}
    if not results:
        raise ValueError("no table with Var-T-JEPA uncertainties (run compare with var_t_jepa)")
    fig = Figure(figsize=(3.2 * len(results), 3.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(results), squeeze=False)[0])
    for ax, (name, res) in zip(axes, results.items(), strict=True):
        fractions = np.array(res["config"]["eval"]["drop_fractions"]) * 100
        for kind, acc in _var_selective(res)[head].items():
            colour, style = KIND_STYLE[kind]
            label = "head confidence" if kind == "confidence" else f"latent: {kind}"
            ax.plot(fractions, acc, style, color=colour, marker="o", ms=3, label=label)
        ax.set(title=name, xlabel="most uncertain test rows dropped (%)")
    axes[0].set_ylabel(f"accuracy ({head})")
    axes[0].legend(fontsize=7)
    return fig


def _var_selective(res: dict) -> dict | None:
    """The selective-prediction curves of the Var-T-JEPA pool that carries the uncertainties
    (None when the table has no Var-T-JEPA run yet)."""
    sel = summarise(res)["selective"]
    return next(
        (
            v
            for k, v in sel.items()
            if k.startswith("var_t_jepa") and len(next(iter(v.values()))) > 1
        ),
        None,
    )


def plot_ambiguity(res: dict, seed: int = 0) -> Figure:
    """Latent uncertainty of each kind (and the mixture's exact predictive std, "oracle") vs the
    exact ambiguity H(component | row), test rows of one seed, Spearman in the titles (mean +- std
    over seeds in the suptitle)."""
    run = next(
        r
        for r in res["runs"]
        if r["method"] == "var_t_jepa" and r["seed"] == seed and "uncertainty_test" in r
    )
    amb = np.array(res["ambiguity_test"])
    values = {**run["uncertainty_test"], "oracle": res["oracle_std_test"]}
    cols = math.ceil(len(values) / 2)
    fig = Figure(figsize=(3.2 * cols, 5.6), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False).ravel()
    for ax in axes[len(values) :]:
        ax.set_axis_off()
    for ax, (kind, unc) in zip(axes, values.items(), strict=False):
        ax.scatter(amb, unc, s=4, alpha=0.5, color=KIND_STYLE[kind][0])
        rho = spearmanr(unc, amb).statistic
        ax.set(
            title=f"{kind}: Spearman {rho:.2f}",
            xlabel="exact ambiguity H (nats)",
            ylabel="exact predictive std" if kind == "oracle" else "latent std (mean)",
        )
    spread = summarise(res)["spearman"]
    text = "; ".join(f"{k} {m:.2f} ± {d:.2f}" for k, (m, d) in spread.items())
    fig.suptitle(
        f"Spearman over seeds: {text}\n(source, its own simulated table: {SOURCE_SPEARMAN})",
        fontsize=8,
    )
    return fig


def save(fig: Figure, name: str) -> Path:
    """`name`.png (110 dpi) and `name`.pdf into the figure folder; the PNG path."""
    return save_figure(fig, name, dpi=110)
