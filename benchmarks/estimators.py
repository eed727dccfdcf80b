"""Accuracy and wall time of the multiinformation estimators on ground-truth tasks; prints JSON.

Sections (select with --only):
  gaussian_copula  theory.tasks.gaussian_copula_tasks(): Gaussians d = 4..64 (random,
                   equicorrelated, AR(1), groups), some through monotone maps; N = 5000
  student_t        theory.tasks.student_t_tasks(): t, nu = 3 and 5, R = I or correlated,
                   d = 4, 10, 16; N = 5000
  ksg_speed        ksg at N = 10^4, d = 64 (median of --repeats calls) and npeet-plus `tc` on the
                   same data in the same run; their ratio
  monitor          theory.monitor at N = 512, d = 128, 8 groups of 16 (median of 20 calls)
  neural           d = 128 Gaussians with 5 and 20 nats, N = 20000 (gaussian, copula, neural;
                   minutes: not in the default run)
  embedding_speed  auto vs the estimator it picks on embedding-like matrices (low rank plus
                   diagonal, Gaussian or t_5, monotone maps): N = 10^4, d = 192 and
                   N = 5 x 10^4, d = 768 (--embedding-sizes), all columns and 8 groups (not in
                   the default run: about 2 GB of memory at d = 768)
Every requested method runs on every task; npeet_tc is npeet-plus `tc` (bits -> nats), skipped
when not installed. The summary checks the issue-9 targets: auto within 10% on every
Gaussian-copula task and within 15% on every Student-t task (worst seed), ksg under 2 s.

    python benchmarks/estimators.py                       # default sections, ~12 min on 2 cores
    python benchmarks/estimators.py --methods auto copula ksg   # fewer methods, faster
    python benchmarks/estimators.py --only student_t --seeds 5
    python benchmarks/estimators.py --only neural

Wall times are for one call each, in-process, on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import theory
from theory.closed_forms import student_t_multiinformation
from theory.tasks import (
    GaussianTask,
    StudentTTask,
    Task,
    gaussian_copula_tasks,
    random_correlation,
    student_t_tasks,
)

Estimator = Callable[[np.ndarray, list | None, int], theory.Estimate | float]
DEFAULT_METHODS = [
    "auto",
    "knn_corrected",
    "copula",
    "gaussian",
    "ksg",
    "kl_copula",
    "binned",
    "npeet_tc",
]
TARGETS = {"gaussian_copula": 0.10, "student_t": 0.15}  # auto's worst relative error allowed
KSG_TARGET_SECONDS = 2.0


def npeet_tc() -> Callable[[np.ndarray, int], float] | None:
    """npeet-plus `tc` (Kozachenko-Leonenko, max-norm, k = 3) in nats; it draws noise from
    np.random, seeded here. Scalar variables only (it has no groups)."""
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
                table[name] = lambda X, groups, seed, tc=tc: (
                    tc(X, seed) if groups is None else float("nan")
                )
        else:
            table[name] = lambda X, groups, seed, m=name: theory.multiinformation(
                X, method=m, groups=groups, seed=seed
            )
    return table


def run_one(section: str, task: Task, n: int, seed: int, name: str, estimate: Estimator) -> dict:
    X = task.sample(n, np.random.default_rng(seed))
    start = time.perf_counter()
    try:
        value, error = estimate(X, task.groups, seed), None
    except ValueError as exc:  # a refusal is a result: the method cannot handle this input
        value, error = float("nan"), str(exc)
    seconds = time.perf_counter() - start
    truth = task.true_value
    ok = math.isfinite(float(value))  # nan: refused, or npeet_tc on a grouped task
    record = {
        "section": section,
        "task": task.name,
        "N": n,
        "d": task.dim,
        "groups": None if task.groups is None else len(task.groups),
        "method": name,
        "seed": seed,
        "truth": round(truth, 4),
        "estimate": round(float(value), 4) if ok else None,
        "rel_error": round((float(value) - truth) / truth, 4) if ok else None,
        "seconds": round(seconds, 3),
    }
    if isinstance(value, theory.Estimate) and name == "auto":
        record.update(chose=value.method, reason=value.reason)
    if error:
        record["refused"] = error
    print(json.dumps(record), file=sys.stderr, flush=True)
    return record


def ksg_speed(repeats: int) -> dict:
    """ksg at N = 10^4, d = 64 (k = 3) against npeet-plus tc on the same data, same run."""
    task = GaussianTask(
        random_correlation(64, np.random.default_rng(64), nats=0.055 * 64), name="gaussian-64"
    )
    X = task.sample(10_000, np.random.default_rng(0))
    out: dict = {
        "task": task.name,
        "N": 10_000,
        "d": 64,
        "k": 3,
        "truth": round(task.true_value, 4),
    }
    times, cpu = [], []
    for r in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = theory.multiinformation(X, method="ksg", seed=r)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    out.update(
        ksg_seconds=[round(t, 3) for t in times],
        ksg_median=round(statistics.median(times), 3),
        ksg_cpu_seconds_median=round(statistics.median(cpu), 3),
        ksg_estimate=round(float(value), 4),
    )
    tc = npeet_tc()
    if tc is not None:
        start, start_cpu = time.perf_counter(), time.process_time()
        value = tc(X, 0)
        out.update(
            npeet_tc_seconds=round(time.perf_counter() - start, 3),
            npeet_tc_cpu_seconds=round(time.process_time() - start_cpu, 3),
            npeet_tc_estimate=round(value, 4),
        )
        out["npeet_tc_over_ksg"] = round(out["npeet_tc_seconds"] / out["ksg_median"], 2)
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def embedding_task(d: int, rank: int = 8, loading: float = 0.3) -> GaussianTask:
    """An embedding-like Gaussian: correlation of B B^T + I, B (d, rank) with N(0, loading^2)
    entries (low rank plus diagonal); the samples get exp() on every third column (monotone, so
    M is unchanged and `gaussian` is wrong)."""
    B = np.random.default_rng(d).standard_normal((d, rank)) * loading
    C = B @ B.T + np.eye(d)
    return GaussianTask(C / np.sqrt(np.outer(np.diag(C), np.diag(C))), name=f"embedding-{d}")


def embedding_speed(repeats: int, sizes: list[tuple[int, int]]) -> list[dict]:
    """auto against the estimator it picks on embedding-like matrices (embedding_task; exp() on
    every third column): Gaussian (auto picks copula) and t_5 (heavy tails: the screen rejects,
    auto runs knn_corrected's fit and kNN check); every column a variable and 8 equal groups.
    Per size (N, d): `repeats` alternating calls at N <= 10^4, else one; same data, same run, so
    the ratio holds under whatever load the machine has. CPU seconds (process time, all threads)
    are the figure to compare on a shared machine."""
    out = []
    for n, d in sizes:
        reps = repeats if n <= 10_000 else 1
        task = embedding_task(d)
        for family, nu in (("gaussian", math.inf), ("student-t-5", 5.0)):
            model = task if math.isinf(nu) else StudentTTask(task.R, nu)
            X = model.sample(n, np.random.default_rng(0))
            X[:, ::3] = np.exp(X[:, ::3])
            for groups in (None, [list(range(a, a + d // 8)) for a in range(0, d, d // 8)]):
                out.append(_embedding_record(X, family, nu, task.R, groups, reps))
    return out


def _embedding_record(
    X: np.ndarray, family: str, nu: float, R: np.ndarray, groups: list | None, reps: int
) -> dict:
    """Time `auto`, then the method it chose, `reps` times alternately (wall and CPU seconds)."""
    n, d = X.shape
    truth = student_t_multiinformation(R, nu, groups)
    times: dict[str, list[float]] = {"auto": [], "chosen": []}
    cpu: dict[str, list[float]] = {"auto": [], "chosen": []}
    chose = "auto"
    for _ in range(reps):
        for key in ("auto", "chosen"):
            method = "auto" if key == "auto" else chose
            start, start_cpu = time.perf_counter(), time.process_time()
            est = theory.multiinformation(X, method=method, groups=groups, seed=0)
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
            if key == "auto":
                chose, value, reason = est.method, float(est), est.reason
    median = {key: statistics.median(v) for key, v in times.items()}
    median_cpu = {key: statistics.median(v) for key, v in cpu.items()}
    record = {
        "section": "embedding_speed",
        "family": family,
        "N": n,
        "d": d,
        "groups": None if groups is None else len(groups),
        "truth": round(truth, 4),
        "auto": round(value, 4),
        "chose": chose,
        "rel_error": round((value - truth) / truth, 4),
        "auto_seconds_median": round(median["auto"], 3),
        "chosen_seconds_median": round(median["chosen"], 3),
        "auto_cpu_seconds_median": round(median_cpu["auto"], 3),
        "chosen_cpu_seconds_median": round(median_cpu["chosen"], 3),
        "auto_over_chosen_cpu": round(median_cpu["auto"] / median_cpu["chosen"], 2),
        "auto_over_chosen_wall": round(median["auto"] / median["chosen"], 2),
        "reason": reason,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(record), file=sys.stderr, flush=True)
    return record


def monitor_cost(calls: int = 20) -> dict:
    """theory.monitor on N = 512, d = 128, 8 groups of 16 (correlated features), median time."""
    rng = np.random.default_rng(0)
    F = rng.standard_normal((512, 128)) + 0.3 * rng.standard_normal((512, 8)).repeat(16, axis=1)
    groups = [list(range(16 * g, 16 * g + 16)) for g in range(8)]
    times, cpu = [], []
    for _ in range(calls):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = theory.monitor(F, groups)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    out = {
        "N": 512,
        "d": 128,
        "groups": 8,
        "calls": calls,
        "median_seconds": round(statistics.median(times), 4),
        "median_cpu_seconds": round(statistics.median(cpu), 4),
        "max_seconds": round(max(times), 4),
        "result": result,
    }
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def summarise(records: list[dict]) -> dict:
    """Per (section, task, method): mean estimate, worst |relative error|, mean seconds; and
    auto's worst error per section against TARGETS."""
    cells: dict[tuple, list[dict]] = {}
    for r in records:
        cells.setdefault((r["section"], r["task"], r["method"]), []).append(r)
    table = []
    for (section, task, method), rs in cells.items():
        done = [r for r in rs if r["estimate"] is not None]
        row = {
            "section": section,
            "task": task,
            "method": method,
            "truth": rs[0]["truth"],
            "mean": round(float(np.mean([r["estimate"] for r in done])), 4) if done else None,
            "worst_rel_error": round(max(abs(r["rel_error"]) for r in done), 4)
            if len(done) == len(rs)
            else None,
            "seconds": round(float(np.mean([r["seconds"] for r in rs])), 3),
        }
        if method == "auto":
            row["chose"] = sorted({r["chose"] for r in rs})
        table.append(row)
    targets = {}
    for section, limit in TARGETS.items():
        auto = [r for r in table if r["section"] == section and r["method"] == "auto"]
        if auto and all(r["worst_rel_error"] is not None for r in auto):
            worst = max(auto, key=lambda r: r["worst_rel_error"])
            targets[section] = {
                "limit": limit,
                "worst_rel_error": worst["worst_rel_error"],
                "worst_task": worst["task"],
                "met": worst["worst_rel_error"] <= limit,
            }
    return {"cells": table, "targets": targets}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        help="sections to run",
        choices=[
            "gaussian_copula",
            "student_t",
            "ksg_speed",
            "monitor",
            "neural",
            "embedding_speed",
        ],
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=DEFAULT_METHODS,
        help="methods for the task sections (npeet_tc: npeet-plus tc)",
    )
    parser.add_argument("--seeds", type=int, default=2, help="samples per task")
    parser.add_argument("--n", type=int, default=5000, help="N for the task sections")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timing repeats (ksg_speed, embedding_speed at d = 192)",
    )
    parser.add_argument(
        "--embedding-sizes",
        nargs="+",
        default=["10000x192", "50000x768"],
        help="N x d of the embedding_speed matrices",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = set(args.only or ["gaussian_copula", "student_t", "ksg_speed", "monitor"])

    started = time.perf_counter()
    table = estimators(args.methods)
    records: list[dict] = []
    suites = {"gaussian_copula": gaussian_copula_tasks, "student_t": student_t_tasks}
    for section, tasks in suites.items():
        if section in run:
            for task in tasks():
                for name, estimate in table.items():
                    for seed in range(args.seeds):
                        records.append(run_one(section, task, args.n, seed, name, estimate))
    if "neural" in run:
        neural = estimators(["gaussian", "copula", "neural"])
        for nats in (5.0, 20.0):
            task = GaussianTask(
                random_correlation(128, np.random.default_rng(128), nats=nats),
                name=f"gaussian-128-{nats:g}nats",
            )
            for name, estimate in neural.items():
                records.append(run_one("neural", task, 20_000, 0, name, estimate))

    summary = {
        "command": " ".join(["python", "benchmarks/estimators.py", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_at_end": os.getloadavg(),
            "note": "wall times on a shared machine; other jobs may have been running",
        },
        **summarise(records),
        "records": records,
    }
    if "ksg_speed" in run:
        summary["ksg_speed"] = ksg_speed(args.repeats)
        summary["targets"]["ksg_speed"] = {
            "limit_seconds": KSG_TARGET_SECONDS,
            "median_seconds": summary["ksg_speed"]["ksg_median"],
            "met": summary["ksg_speed"]["ksg_median"] < KSG_TARGET_SECONDS,
        }
    if "monitor" in run:
        summary["monitor"] = monitor_cost()
    if "embedding_speed" in run:
        sizes = [tuple(int(v) for v in size.split("x")) for size in args.embedding_sizes]
        summary["embedding_speed"] = embedding_speed(args.repeats, sizes)
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    summary["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
