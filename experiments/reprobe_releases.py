"""Re-probe shipped releases with the current probe and set the result beside the manifest's.

    python experiments/reprobe_releases.py jepa_s0 sparsejepa_s0 [--datasets cifar100 shapes]
        [--write-manifest] [--out experiments/results/reprobe_converged]

For each release and probe set: `sparsejepa probe` (features cached in the user cache folder, so a
second pass is minutes), one JSON line per release and set appended to OUT.jsonl (the new result,
the manifest's numbers it replaces, seconds, machine); OUT.md is rewritten with the table of
every release in OUT.jsonl (best_by_val / best / kNN, old against new). `--write-manifest` also
replaces the release's probe results in checkpoints/MANIFEST.json (`publish.update_probes`);
`--reuse` takes a (release, set) result already in OUT.jsonl, made on the same weights (the
release's sha256), instead of probing it again.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from sparsejepa import publish, release
from sparsejepa.probe import probe_checkpoint


def headline(result: dict, task: str) -> dict:
    res = result["tasks"][task]
    return {
        "best_by_val": round(res["best_by_val"]["top1"], 2),
        "best_by_val_probe": res["best_by_val"]["probe"],
        "best": round(res["best"]["top1"], 2),
        "knn": round(res["knn"]["top1"], 2),
    }


def latest_rows(out: Path) -> dict:
    """{(release, set): the latest row of OUT.jsonl}."""
    rows = {}
    path = out.with_suffix(".jsonl")
    for line in path.read_text().splitlines() if path.is_file() else []:
        row = json.loads(line)
        rows[row["release"], row.get("dataset", "cifar100")] = row
    return rows


def write_table(out: Path) -> None:
    rows = latest_rows(out)
    lines = [
        "| release | set / task | best_by_val old -> new | best old -> new | kNN old -> new "
        "| new probe |",
        "|---|---|---|---|---|---|",
    ]
    for (_, dataset), row in rows.items():
        for t in row["new"]:
            old, new = row["manifest"].get(t), row["new"][t]
            old = old or {"best_by_val": "-", "best": "-", "knn": "-"}
            lines.append(
                f"| {row['release']} | {dataset} / {t} | {old['best_by_val']} -> "
                f"{new['best_by_val']} | "
                f"{old['best']} -> {new['best']} | {old['knn']} -> {new['knn']} | "
                f"{new['best_by_val_probe']} |"
            )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("releases", nargs="+")
    p.add_argument("--datasets", nargs="+", default=["cifar100", "shapes"])
    p.add_argument("--write-manifest", action="store_true")
    p.add_argument("--reuse", action="store_true", help="results already in OUT.jsonl count")
    p.add_argument("--out", default="experiments/results/reprobe_converged")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    for name in args.releases:
        old = release.load(name).probes
        sha256 = release.read_manifest()["entries"][name]["sha256"]
        results = []
        for dataset in args.datasets:
            done = latest_rows(out).get((name, dataset)) if args.reuse else None
            if done is not None and done.get("sha256") == sha256:
                results.append(done["result"])
                continue
            tic = time.perf_counter()
            result = probe_checkpoint(name, dataset, device="cpu")
            results.append(result)
            row = {
                "release": name, "dataset": dataset, "sha256": sha256,
                "seconds": round(time.perf_counter() - tic),
                "machine": platform.processor() or platform.machine(), "threads": args.threads,
                "new": {t: headline(result, t) for t in result["tasks"]},
                "manifest": {t: headline(old[dataset], t) for t in result["tasks"]
                             if t in old.get(dataset, {}).get("tasks", {})},
                "result": result,
            }  # fmt: skip
            with out.with_suffix(".jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            summary = {k: row[k] for k in ("release", "dataset", "seconds", "new", "manifest")}
            print(json.dumps(summary), flush=True)
        if args.write_manifest:
            publish.update_probes(name, results)
    write_table(out)


if __name__ == "__main__":
    main()
