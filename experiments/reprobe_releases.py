"""Re-probe shipped releases with the current probe and set the result beside the manifest's.

    python experiments/reprobe_releases.py jepa_s0 sparsejepa_s0 [--tasks fine coarse]
        [--out experiments/results/reprobe_converged]

For each release: `run_probes` on CIFAR-100 (full official split; features cached in
runs/features/NAME.npz), one JSON line per release appended to OUT.jsonl (the new result, the
manifest's numbers it replaces, seconds, machine); OUT.md is rewritten with the table of every
release in OUT.jsonl (best_by_val / best / kNN, old against new). The manifest is not changed.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from sparsejepa import data, probe, release


def headline(result: dict, task: str) -> dict:
    res = result["tasks"][task]
    return {
        "best_by_val": round(res["best_by_val"]["top1"], 2),
        "best_by_val_probe": res["best_by_val"]["probe"],
        "best": round(res["best"]["top1"], 2),
        "knn": round(res["knn"]["top1"], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("releases", nargs="+")
    p.add_argument("--tasks", nargs="+", default=["fine", "coarse"])
    p.add_argument("--out", default="experiments/results/reprobe_converged")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dataset = data.load_dataset("cifar100")
    out = Path(args.out)
    for name in args.releases:
        rel = release.load(name)
        tic = time.perf_counter()
        result = probe.run_probes(
            rel.encoder, dataset, tasks=args.tasks, cache_path=f"runs/features/{name}.npz",
            seed=rel.config.train.seed,
        )  # fmt: skip
        row = {
            "release": name, "method": rel.method, "seconds": round(time.perf_counter() - tic),
            "machine": platform.processor() or platform.machine(), "threads": args.threads,
            "new": {t: headline(result, t) for t in args.tasks},
            "manifest": {t: headline(rel.probes["cifar100"], t) for t in args.tasks},
            "result": result,
        }  # fmt: skip
        with out.with_suffix(".jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        summary = {k: row[k] for k in ("release", "seconds", "new", "manifest")}
        print(json.dumps(summary), flush=True)
    rows = {}  # every release re-probed so far, the latest row of each
    for line in out.with_suffix(".jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["release"]] = row
    lines = [
        "| release | task | best_by_val old -> new | best old -> new | kNN old -> new "
        "| new probe |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        for t in row["new"]:
            old, new = row["manifest"][t], row["new"][t]
            lines.append(
                f"| {row['release']} | {t} | {old['best_by_val']} -> {new['best_by_val']} | "
                f"{old['best']} -> {new['best']} | {old['knn']} -> {new['knn']} | "
                f"{new['best_by_val_probe']} |"
            )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
