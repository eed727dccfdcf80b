"""theory's estimators against an outside benchmark: the 40 Beyond-Normal tasks of Czyz et al.
(NeurIPS 2023, PyPI `benchmark-mi`), with bmi's own KSG and CCA estimators on the same samples.

bmi needs jax and pins numpy below 2, so it lives in its own virtual environment, never in the
project's (theory itself needs only numpy and scipy, which that environment also has):

    python3 -m venv /tmp/venv-bmi
    /tmp/venv-bmi/bin/pip install "numpy<2" scipy benchmark-mi "jax==0.4.31" "jaxlib==0.4.31"
    JAX_PLATFORMS=cpu /tmp/venv-bmi/bin/python benchmarks/beyond_normal.py --write-readme

(jax 0.4.31: equinox 0.10, which benchmark-mi 0.1.3 pulls in, fails to import under jax >= 0.4.34.)
Every task is sampled with bmi's sampler at N = --n for each seed; theory sees X and Y side by side
as two groups, groups=[[x columns], [y columns]]. bmi's results do not depend on this repository,
so they are cached (--cache) and a rerun recomputes only theory's. --write-readme replaces the
section between the BEGIN/END markers in theory/README.md with the per-task and aggregate tables,
the date, the machine and this command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import theory  # noqa: E402

README = ROOT / "theory" / "README.md"
BEGIN, END = "<!-- beyond-normal: BEGIN -->", "<!-- beyond-normal: END -->"
THEORY_METHODS = ("auto", "ksg", "copula", "knn_corrected")
OUTSIDE = ("bmi_ksg", "bmi_cca")


def outside_estimators() -> dict:
    from bmi.estimators import CCAMutualInformationEstimator, KSGEnsembleFirstEstimator

    return {
        "bmi_ksg": KSGEnsembleFirstEstimator(neighborhoods=(10,)),
        "bmi_cca": CCAMutualInformationEstimator(),
    }


def run(args: argparse.Namespace) -> dict:
    from bmi.benchmark.task_list import BENCHMARK_TASKS_LIST

    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    outside = outside_estimators()
    rows = []
    for task in BENCHMARK_TASKS_LIST:
        if args.tasks and not any(t in task.id for t in args.tasks):
            continue
        row = {
            "task": task.id,
            "truth": float(task.mutual_information),
            "d": task.dim_x + task.dim_y,
            "values": {},
            "seconds": {},
            "chosen": [],
        }
        for seed in args.seeds:
            x, y = (np.asarray(a, dtype=np.float64) for a in task.sample(args.n, seed))
            XY = np.hstack([x, y])
            groups = [list(range(x.shape[1])), list(range(x.shape[1], XY.shape[1]))]
            for name in args.methods:
                t0 = time.perf_counter()
                try:
                    est = theory.multiinformation(XY, method=name, groups=groups, seed=seed)
                    value = float(est)
                    if name == "auto":
                        row["chosen"].append(est.method)
                except ValueError as err:
                    value = float("nan")
                    print(f"{task.id} {name}: {err}", file=sys.stderr)
                row["values"].setdefault(name, []).append(value)
                row["seconds"].setdefault(name, []).append(time.perf_counter() - t0)
            for name, estimator in outside.items():
                key = f"{task.id}|{args.n}|{seed}|{name}"
                if key not in cache:
                    t0 = time.perf_counter()
                    cache[key] = [float(estimator.estimate(x, y)), time.perf_counter() - t0]
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    cache_path.write_text(json.dumps(cache))
                row["values"].setdefault(name, []).append(cache[key][0])
                row["seconds"].setdefault(name, []).append(cache[key][1])
        rows.append(row)
        print(
            json.dumps(
                {
                    "task": row["task"],
                    "truth": round(row["truth"], 4),
                    **{k: [round(v, 4) for v in vs] for k, vs in row["values"].items()},
                    "auto_chose": row["chosen"],
                }
            ),
            flush=True,
        )
    return {"rows": rows, "methods": [*args.methods, *outside], "n": args.n, "seeds": args.seeds}


def relative_error(row: dict, name: str) -> float:
    return abs(statistics.fmean(row["values"][name]) - row["truth"]) / row["truth"]


def table(result: dict, command: str, commit: str | None = None) -> str:
    rows, methods = result["rows"], result["methods"]
    short = {
        "knn_corrected": "kc",
        "copula": "cop",
        "ksg": "ksg",
        "ksg_extrapolated": "kx",
        "binned": "bin",
    }
    measured = result.get("measured") or measurement()
    lines = [
        f"Measured {measured['start']} to {measured['end']} on {measured['node']} "
        f"({measured['cpus']} CPUs shared with other jobs, load average "
        f"{measured['load']:.1f} at the end; seconds are wall time under that load), commit "
        f"{commit or measured.get('commit') or _commit()}, with",
        "",
        f"    {command}",
        "",
        f"N = {result['n']}, seeds {', '.join(map(str, result['seeds']))}; entry = mean estimate "
        "over the seeds in nats (relative error of the mean); auto also names its choices "
        "(cop = copula, kc = knn_corrected, kx = ksg_extrapolated, ksg). bmi_ksg: bmi's "
        "KSGEnsembleFirstEstimator (k = 10); bmi_cca: its CCA estimator (Gaussian).",
        "",
        "| task | d | truth | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for row in rows:
        cells = []
        for name in methods:
            mean = statistics.fmean(row["values"][name])
            cell = f"{mean:.3f} ({100 * (mean - row['truth']) / row['truth']:+.0f}%)"
            if name == "auto":
                chosen = sorted(set(row["chosen"]))
                cell += " " + "/".join(short.get(c, c) for c in chosen)
            cells.append(cell)
        lines.append(
            f"| {row['task']} | {row['d']} | {row['truth']:.3f} | " + " | ".join(cells) + " |"
        )
    lines += ["", "| aggregate | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    errors = {m: [relative_error(r, m) for r in rows] for m in methods}
    lines.append(
        "| median relative error | "
        + " | ".join(f"{100 * statistics.median(errors[m]):.1f}%" for m in methods)
        + " |"
    )
    lines.append(
        f"| tasks within 10% (of {len(rows)}) | "
        + " | ".join(str(sum(e <= 0.10 for e in errors[m])) for m in methods)
        + " |"
    )
    worst_gap = (
        [
            100 * (relative_error(r, "auto") - min(relative_error(r, m) for m in OUTSIDE))
            for r in rows
        ]
        if "auto" in methods
        else []
    )
    seconds = {m: [s for r in rows for s in r["seconds"][m]] for m in methods}
    lines.append(
        "| mean seconds per call | "
        + " | ".join(f"{statistics.fmean(seconds[m]):.2f}" for m in methods)
        + " |"
    )
    lowest = min((v for r in rows for v in r["values"].get("auto", [])), default=float("nan"))
    if worst_gap:
        lines += [
            "",
            f"auto: lowest single estimate {lowest:+.3f} nats; largest excess over the "
            f"best outside estimator's relative error {max(worst_gap):+.1f} points "
            f"({rows[int(np.argmax(worst_gap))]['task']}).",
        ]
    return "\n".join(lines)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def measurement(start: str | None = None) -> dict:
    """When, where and at which commit a run was measured (stored with --json)."""
    now = _utc_now()
    return {
        "start": start or now,
        "end": now,
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{README} has no {BEGIN} ... {END} section to replace")
    head, rest = readme.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(THEORY_METHODS))
    parser.add_argument("--tasks", nargs="*", help="substrings of task ids (default: all 40)")
    parser.add_argument(
        "--cache",
        default=str(ROOT / "runs" / "beyond_normal_outside.json"),
        help="JSON cache of bmi's estimates (they do not depend on this repo)",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--from-json", help="do not run: tabulate results saved with --json")
    parser.add_argument(
        "--commit", help="the commit the results were computed at (with --from-json; default: HEAD)"
    )
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    command = "JAX_PLATFORMS=cpu python benchmarks/beyond_normal.py " + " ".join(sys.argv[1:])
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        command = result.get("command", command)
    else:
        start = _utc_now()
        result = run(args)
        result["command"] = command.strip()
        result["measured"] = measurement(start)
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(result))
    text = table(result, command.strip(), args.commit)
    print(text)
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
