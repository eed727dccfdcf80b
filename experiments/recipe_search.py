"""Rank training recipes by what they learn per CPU-minute: train each variant of a spec, probe it,
and keep the evidence (one JSON line per run, a markdown table generated from them).

A spec is a YAML file: `base` (a preset), `common` (overrides for every variant), `probe`
(n_train / n_test of the converged probe; {} = the full split) and `variants` (name -> list of
`key=value` overrides). Variants run one after another in this process; run several processes
with `--only` to use several cores.

Usage:
    python experiments/recipe_search.py experiments/recipe_wave1.yaml [--only A B] [--threads 1]
    python experiments/recipe_search.py experiments/cpu_1hour.yaml --collect  # runs made by hand
    python experiments/recipe_search.py experiments/recipe_wave1.yaml --table
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from sparsejepa import checkpoint
from sparsejepa.config import load_config, to_dict
from sparsejepa.probe import probe_checkpoint
from sparsejepa.reproduce import string_list
from sparsejepa.train import train

RESULTS = Path(__file__).parent / "results"


def load_spec(path: str | Path) -> dict:
    """The spec with `common` and each variant's overrides flattened to key=value strings (a
    variant may start with a YAML alias `*name` of another's list)."""
    spec = yaml.safe_load(Path(path).read_text())
    spec["common"] = string_list(spec.get("common"), f"{path}: common")
    spec["variants"] = {
        name: string_list(sets, f"{path}: variants.{name}")
        for name, sets in spec["variants"].items()
    }
    return spec


def variant_config(spec: dict, name: str):
    return load_config(spec["base"], [*spec["common"], *spec["variants"][name], f"name={name}"])


def run_variant(spec: dict, name: str, out_root: Path) -> dict:
    """Train the variant from scratch into OUT_ROOT/NAME, probe it, return its row."""
    cfg = variant_config(spec, name)
    run_dir = out_root / name
    tic = time.perf_counter()
    train(cfg, run_dir, resume=False, progress=False)
    train_s = time.perf_counter() - tic
    p = spec.get("probe", {})
    tic = time.perf_counter()
    probe = probe_checkpoint(
        run_dir / "ckpt.pt",
        n_train=p.get("n_train"),
        n_test=p.get("n_test"),
        out=run_dir / "probe_cifar100.json",  # what `sparsejepa export` records
    )
    return make_row(
        spec,
        name,
        cfg,
        _logs(run_dir),
        probe=probe,
        train_min=train_s / 60,
        probe_min=(time.perf_counter() - tic) / 60,
        threads=torch.get_num_threads(),
    )


def collect_variant(spec: dict, name: str, out_root: Path, threads: int | None = None) -> dict:
    """The row of a variant trained and probed elsewhere (`sparsejepa train --out OUT_ROOT/NAME`,
    `sparsejepa probe --dataset cifar100 --out OUT_ROOT/NAME/probe_cifar100.json` with the spec's
    probe settings): its config must be the variant's and its run finished. Training minutes are
    the sum of the logged intervals (setup time, which `run_variant` counts, is left out)."""
    run_dir = out_root / name
    cfg = variant_config(spec, name)
    saved = checkpoint.config_of(checkpoint.load(run_dir / "ckpt.pt"))
    changes = checkpoint.config_changes(to_dict(saved), to_dict(cfg))
    if changes:
        raise SystemExit(f"{run_dir} is not variant {name}: {'; '.join(changes)}")
    logs = _logs(run_dir)
    steps_per_epoch = logs[-1]["step"] / logs[-1]["epoch"]
    if logs[-1]["step"] < max(1, round(cfg.train.epochs * steps_per_epoch)):
        raise SystemExit(f"{run_dir} stopped at epoch {logs[-1]['epoch']:.2f}; finish it first")
    probe_file = run_dir / "probe_cifar100.json"
    if not probe_file.is_file():
        raise SystemExit(
            f"{probe_file} missing: run `sparsejepa probe --ckpt {run_dir}/ckpt.pt "
            f"--dataset cifar100 --out {probe_file}`"
        )
    train_min = (
        sum(cfg.train.log_every * cfg.train.batch_size / r["images_per_s"] for r in logs) / 60
    )
    return make_row(
        spec,
        name,
        cfg,
        logs,
        probe=json.loads(probe_file.read_text()),
        train_min=train_min,
        probe_min=None,
        threads=threads,
    )


def _logs(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def make_row(
    spec: dict,
    name: str,
    cfg,
    logs: list[dict],
    *,
    probe: dict,
    train_min: float,
    probe_min: float | None,
    threads: int | None,
) -> dict:
    row = {
        "name": name,
        "overrides": spec["variants"][name],
        "steps": logs[-1]["step"],
        "images": logs[-1]["step"] * cfg.train.batch_size,
        "train_min": round(train_min, 2),
        "images_per_s": round(statistics.median(r["images_per_s"] for r in logs[1:] or logs), 1),
        "threads": threads,
        # the JEPA loss; Var-JEPA logs no such term, so its weighted negative ELBO per pixel value
        "final_loss": logs[-1].get("jepa", logs[-1]["loss"]),
        "rankme": [r["rankme"] for r in logs if "rankme" in r][-1],
        "rankme_curve": [(r["step"], round(r["rankme"], 2)) for r in logs if "rankme" in r],
        "probe_min": None if probe_min is None else round(probe_min, 2),
        "probe": {
            task: {k: r[k]["top1"] for k in ("best_by_val", "best", "knn")}
            for task, r in probe["tasks"].items()
        },
    }
    for key in ("mi_total", "mi_between", "active_connections", "total_connections"):
        if key in logs[-1]:
            row[key] = logs[-1][key]
    return row


def _rows(jsonl: Path) -> list[dict]:
    return [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []


def _append(jsonl: Path, rows: list[dict]) -> None:
    with open(jsonl, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def table(rows: list[dict]) -> str:
    tasks = list(rows[0]["probe"]) if rows else []
    head = ["variant", "overrides", "train min", "img/s", "RankMe", "M total / between", "active"]
    head += [f"{t} val / kNN" for t in tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["name"],
            " ".join(r["overrides"]) or "(base)",
            f"{r['train_min']:.1f}",
            f"{r['images_per_s']:.0f}",
            f"{r['rankme']:.1f}",
            f"{r['mi_total']:.2f} / {r['mi_between']:.2f}" if "mi_total" in r else "",
            f"{r['active_connections']}/{r['total_connections']}"
            if "active_connections" in r
            else "",
        ]
        cells += [f"{r['probe'][t]['best_by_val']:.1f} / {r['probe'][t]['knn']:.1f}" for t in tasks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--only", nargs="+", default=None, help="variant names to run")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (with --collect: the threads the runs used, recorded)",
    )
    ap.add_argument("--out", default="runs/recipe")
    ap.add_argument("--table", action="store_true", help="only (re)write the markdown table")
    ap.add_argument(
        "--collect",
        action="store_true",
        help="add rows of variants trained and probed elsewhere (OUT/SPEC/NAME)",
    )
    args = ap.parse_args()
    spec = load_spec(args.spec)
    stem = Path(args.spec).stem
    jsonl, md = RESULTS / f"{stem}.jsonl", RESULTS / f"{stem}.md"
    if not args.table:
        if args.threads:
            torch.set_num_threads(args.threads)
        unknown = set(args.only or []) - set(spec["variants"])
        if unknown:
            raise SystemExit(
                f"unknown variants {sorted(unknown)}; the spec has {list(spec['variants'])}"
            )
        out_root, names = Path(args.out) / stem, args.only or list(spec["variants"])
        if args.collect:  # every run checked before a row is written; rows already there kept
            done = {row["name"] for row in _rows(jsonl)}
            _append(
                jsonl,
                [
                    collect_variant(spec, name, out_root, args.threads)
                    for name in names
                    if name not in done
                ],
            )
        else:
            for name in names:
                _append(jsonl, [run_variant(spec, name, out_root)])
    rows = _rows(jsonl)
    header = (
        f"# {stem}\n\nGenerated by `python experiments/recipe_search.py {args.spec} --table` "
        f"from `{jsonl.name}`. Base `{spec['base']}` with {spec['common']}; converged "
        f"probe {spec.get('probe', {}) or 'on the full split'} (test top-1 %, `best_by_val` / "
        "weighted kNN). M total / between: multiinformation (nats) of the pooled target features "
        "of the fixed batch over the 8 channel groups (`theory.monitor`).\n\n"
    )
    md.write_text(header + table(rows))
    print(md.read_text())


if __name__ == "__main__":
    main()
