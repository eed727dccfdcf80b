"""The comparison behind the README tables: raw features vs T-JEPA vs Var-T-JEPA over seeds.

`run_comparison(cfg, out_dir)` trains each method once per seed (runs resume from their
checkpoints), evaluates it with `evaluate.evaluate`, and writes `results.json`; `summarise` turns
that into mean and sample standard deviation over seeds; `markdown` formats the tables.
"""

import time
from pathlib import Path

import numpy as np

from ..release import write_json_atomic
from .config import TabularConfig, from_dict, to_dict
from .data import load_table
from .evaluate import evaluate
from .train import train

METHODS = ("raw", "t_jepa", "var_t_jepa")


def with_method(cfg: TabularConfig, method: str, seed: int) -> TabularConfig:
    values = to_dict(cfg)
    values["model"]["method"] = method
    values["train"]["seed"] = seed
    values["name"] = f"{cfg.name}-{method}-s{seed}"
    return from_dict(values)


def run_comparison(
    cfg: TabularConfig,
    out_dir: str | Path,
    methods=METHODS,
    seeds: list[int] | None = None,
    log=print,
) -> dict:
    """Train + evaluate every method for every seed; results.json in out_dir; returns it.
    Finished runs are loaded from their checkpoints, so a second call only re-evaluates;
    train_seconds is the training time recorded in the checkpoint. results.json is rewritten
    after every evaluation, so an interrupted call keeps the runs it finished."""
    out = Path(out_dir)
    table = load_table(cfg.data)
    seeds = cfg.eval.seeds if seeds is None else seeds
    runs = []
    results = {
        "config": to_dict(cfg),
        "table": {
            "name": table.name,
            "n_train": len(table.y_train),
            "n_test": len(table.y_test),
            "n_features": table.n_features,
            "num_classes": table.num_classes,
        },
        "ambiguity_test": _list(table.ambiguity_test),
        "oracle_std_test": _list(table.oracle_std_test),
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for method in methods:
            state = None
            if method != "raw":
                state = train(
                    with_method(cfg, method, seed),
                    out / method / f"seed{seed}",
                    table=table,
                    log=None,
                )
            train_s = 0.0 if state is None else state.seconds  # summed over resumed runs
            for i, pool in enumerate(cfg.eval.pools if state is not None else [None]):
                tic = time.perf_counter()
                result = evaluate(state, table, cfg.eval, seed, pool or "mean", uncertainty=i == 0)
                result.update(
                    method=method,
                    pool=pool,
                    seed=seed,
                    train_seconds=train_s,
                    eval_seconds=time.perf_counter() - tic,
                )
                runs.append(result)
                write_json_atomic(out / "results.json", results)
                if log:
                    accs = " ".join(f"{h} {a:.3f}" for h, a in result["acc"].items())
                    log(
                        f"{cfg.data.name} seed {seed} {label(result):<16} {accs} "
                        f"(train {train_s:.0f} s, eval {result['eval_seconds']:.0f} s)"
                    )
    write_json_atomic(out / "results.json", results)
    return results


def label(run: dict) -> str:
    """'raw', or the method and its embedding pool: 't_jepa[mean]', 'var_t_jepa[reg]'."""
    return run["method"] if run.get("pool") is None else f"{run['method']}[{run['pool']}]"


def _list(values):
    return None if values is None else values.tolist()


def summarise(results: dict) -> dict:
    """{'acc': {label: {head: [mean, std]}}, 'selective': {label: {head: {kind: [mean accuracy
    per drop fraction]}}} with kind 'confidence' or an uncertainty kind, 'spearman': {kind:
    [mean, std]}, 'simulation': {metric: [mean, std]}, 'predictor_r2': [mean, std] (Var-T-JEPA's
    leave-one-out R^2, `evaluate.predictive`), 'train_seconds': {label: mean}}; labels
    are `label(run)`; std is the sample std over seeds (0 for one seed)."""
    by_method: dict[str, list] = {}
    for run in results["runs"]:
        by_method.setdefault(label(run), []).append(run)
    summary = {
        "acc": {},
        "selective": {},
        "spearman": {},
        "simulation": {},
        "predictor_r2": None,
        "train_seconds": {},
    }
    for method, runs in by_method.items():
        heads = list(runs[0]["acc"])
        summary["acc"][method] = {
            h: [
                float(np.mean(a := [r["acc"][h] for r in runs])),
                float(np.std(a, ddof=1)) if len(a) > 1 else 0.0,
            ]
            for h in heads
        }
        summary["train_seconds"][method] = float(np.mean([r["train_seconds"] for r in runs]))
        summary["selective"][method] = _selective(runs, heads)
        if "simulation" in runs[0]:
            summary["simulation"] = _mean_std(runs, "simulation")
        if "spearman" in runs[0]:
            summary["spearman"] = _mean_std(runs, "spearman")
        if "predictor_r2" in runs[0]:
            r2 = [r["predictor_r2"] for r in runs]
            summary["predictor_r2"] = [
                float(np.mean(r2)),
                float(np.std(r2, ddof=1)) if len(r2) > 1 else 0.0,
            ]
    return summary


def _mean_std(runs: list[dict], key: str) -> dict[str, list[float]]:
    """{name: [mean, sample std]} over the runs' `key` dicts."""
    return {
        k: [
            float(np.mean(v := [r[key][k] for r in runs])),
            float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
        ]
        for k in runs[0][key]
    }


def _selective(runs: list[dict], heads: list[str]) -> dict:
    out = {}
    for h in heads:
        curves = [
            {
                "confidence": r["selective_confidence"][h],
                **r.get("selective_uncertainty", {}).get(h, {}),
            }
            for r in runs
        ]
        out[h] = {kind: np.mean([c[kind] for c in curves], axis=0).tolist() for kind in curves[0]}
    return out


def markdown(results: dict) -> str:
    """Accuracy table (mean +- std over seeds), selective-prediction rows, Spearman line."""
    s, t = summarise(results), results["table"]
    seeds = sorted({r["seed"] for r in results["runs"]})
    fractions = results["config"]["eval"]["drop_fractions"]
    heads = list(next(iter(s["acc"].values())))
    lines = [
        f"**{t['name']}** ({t['n_train']} train / {t['n_test']} test rows, "
        f"{t['n_features']} features, {t['num_classes']} classes; seeds {seeds})",
        "",
        "| method | " + " | ".join(heads) + " | train s |",
        "|---|" + "---|" * (len(heads) + 1),
    ]
    for method, accs in s["acc"].items():
        cells = " | ".join(f"{m:.3f} ± {d:.3f}" for m, d in accs.values())
        lines.append(f"| {method} | {cells} | {s['train_seconds'][method]:.0f} |")
    var = next(
        (
            m
            for m, sel in s["selective"].items()
            if m.startswith("var_t_jepa") and len(next(iter(sel.values()))) > 1
        ),
        None,
    )
    if var:
        lines += [
            "",
            f"Selective prediction on {var} embeddings: test accuracy after dropping "
            "the most uncertain rows, ranked by a latent uncertainty or by the head's "
            "confidence",
            "",
            "| head | ranked by | " + " | ".join(f"{q:.0%}" for q in fractions) + " |",
            "|---|---|" + "---|" * len(fractions),
        ]
        for head, kinds in s["selective"][var].items():
            for kind, accs in kinds.items():
                lines.append(f"| {head} | {kind} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
    if s["spearman"]:
        cells = ", ".join(f"{k} {m:.3f} ± {d:.3f}" for k, (m, d) in s["spearman"].items())
        lines += ["", f"Spearman(latent uncertainty, exact ambiguity) on test rows: {cells}"]
    if s["predictor_r2"] is not None:
        lines += [
            "",
            "Var-T-JEPA predictor, leave-one-out R^2 of the numeric features' predictive mean: "
            "{:.3f} ± {:.3f}".format(*s["predictor_r2"]),
        ]
    if s["simulation"]:
        cells = ", ".join(f"{k} {m:.3f} ± {d:.3f}" for k, (m, d) in s["simulation"].items())
        lines += ["", f"Simulation study (Var-T-JEPA, posterior means): {cells}"]
    return "\n".join(lines)
