"""Accuracy and wall time of the multiinformation estimators on ground-truth tasks; prints JSON.

Sections (select with --only):
  grid       random-correlation Gaussians, N in {1000, 10000} x d in {4, 16, 64}, M = 0.055 d nats
  copula     the same Gaussians through monotone maps (exp, cube, arcsinh, uniform), d up to 64
  student_t  multivariate t, nu = 3, d = 6, R = I, N = 5000 (truth 0.3996 nats)
  neural     d = 128 Gaussians with 5 and 20 nats, N = 20000 (neural and gaussian only)
Every method of `theory.multiinformation` runs, plus npeet-plus `tc` when installed (bits -> nats).

    python benchmarks/estimators.py                 # everything, ~10-15 min on 2 cores
    python benchmarks/estimators.py --quick         # N = 1000 only, d <= 16, no neural section
    python benchmarks/estimators.py --only student_t --seeds 5

Wall times are for one call each, in-process, on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import theory
from theory.tasks import GaussianTask, StudentTTask, Task, TransformedTask, random_correlation

Estimator = Callable[[np.ndarray, int], float]
# Plain KSG: the per-column rank (normal-score) transform switched off.
VARIANTS = {"ksg_plain": ("ksg", False)}
# Cost grows fast with N and d: subject to --budget.
SLOW_METHODS = ("ksg", "ksg_plain", "kl", "kl_copula", "npeet_tc", "neural")


def npeet_tc() -> Estimator | None:
    """npeet-plus `tc` (Kozachenko-Leonenko, max-norm) in nats; it draws noise from np.random."""
    try:
        from npeet_plus.estimators import tc
    except ImportError:
        return None

    def estimate(X: np.ndarray, seed: int) -> float:
        np.random.seed(seed)
        return float(tc(X, k=3, base=2)) * math.log(2)

    return estimate


def estimators(names: list[str]) -> dict[str, Estimator]:
    table: dict[str, Estimator] = {}
    for name in names:
        if name == "npeet_tc":
            tc = npeet_tc()
            if tc is not None:
                table[name] = tc
        elif name in VARIANTS:
            method, rank = VARIANTS[name]
            table[name] = lambda X, seed, m=method, r=rank: theory.multiinformation(
                X, method=m, rank=r, seed=seed
            )
        else:
            table[name] = lambda X, seed, m=name: theory.multiinformation(X, method=m, seed=seed)
    return table


def run_one(task: Task, n: int, seed: int, name: str, estimate: Estimator) -> dict:
    X = task.sample(n, np.random.default_rng(seed))
    start = time.perf_counter()
    try:
        value, error = estimate(X, seed), None
    except Exception as exc:  # report and go on: one failing combination must not stop the sweep
        value, error = float("nan"), f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    truth = task.true_value
    record = {
        "task": task.name,
        "N": n,
        "d": task.dim,
        "method": name,
        "seed": seed,
        "truth": round(truth, 4),
        "estimate": round(value, 4),
        "abs_error": round(abs(value - truth), 4),
        "rel_error": round(abs(value - truth) / truth, 4),
        "seconds": round(seconds, 3),
    }
    if error:
        record["error"] = error
    print(json.dumps(record), file=sys.stderr, flush=True)
    return record


def sections(quick: bool) -> dict[str, list[tuple[Task, int, list[str] | None]]]:
    """Section -> [(task, N, methods or None for all)]."""
    sizes = [1000] if quick else [1000, 10000]
    dims = [4, 16] if quick else [4, 16, 64]
    gauss = {
        d: GaussianTask(
            random_correlation(d, np.random.default_rng(d), nats=0.055 * d), name=f"gaussian-{d}"
        )
        for d in dims
    }
    out: dict[str, list[tuple[Task, int, list[str] | None]]] = {
        "grid": [(gauss[d], n, None) for n in sizes for d in dims],
        "copula": [
            (TransformedTask(gauss[d], maps=("exp", "cube", "arcsinh", "uniform")), sizes[-1], None)
            for d in dims
        ],
        "student_t": [(StudentTTask(np.eye(6), nu=3.0, name="student-t-3-6"), 5000, None)],
    }
    if not quick:
        out["neural"] = [
            (
                GaussianTask(
                    random_correlation(128, np.random.default_rng(128), nats=nats),
                    name=f"gaussian-128-{nats:g}nats",
                ),
                20000,
                ["gaussian", "neural"],
            )
            for nats in (5.0, 20.0)
        ]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1000, d <= 16, no neural")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["grid", "copula", "student_t", "neural"],
        help="run only these sections",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=[
            "gaussian",
            "copula",
            "ksg",
            "ksg_plain",
            "kl",
            "kl_copula",
            "binned",
            "neural",
            "auto",
            "npeet_tc",
        ],
        help="methods to run (npeet_tc: npeet-plus tc, skipped if absent; ksg_plain: ksg "
        "without the rank transform)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="repeats per combination")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds; once a slow method (kNN, neural) exceeds it at some N, d it is skipped "
        "at larger N or d within the same section (60 s keeps every kNN grid cell)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    table = estimators(args.methods)
    chosen = sections(args.quick)
    records, over_budget = [], {}
    for section, combos in chosen.items():
        if args.only and section not in args.only:
            continue
        for task, n, methods in combos:
            for name, estimate in table.items():
                if methods is not None and name not in methods:
                    continue
                limit = over_budget.get((section, name))
                larger = limit is not None and n >= limit[0] and task.dim >= limit[1]
                if larger and (n, task.dim) != limit:  # the same size again still runs
                    records.append(
                        {
                            "section": section,
                            "task": task.name,
                            "N": n,
                            "d": task.dim,
                            "method": name,
                            "skipped": f"over --budget at N={limit[0]}, d={limit[1]}",
                        }
                    )
                    continue
                for seed in range(args.seeds):
                    record = {"section": section, **run_one(task, n, seed, name, estimate)}
                    records.append(record)
                    if name in SLOW_METHODS and record["seconds"] > args.budget:
                        over_budget[section, name] = (n, task.dim)

    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "note": "wall times on a shared machine; other jobs may have been running",
        },
        "records": records,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
