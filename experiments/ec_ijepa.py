"""EC-IJEPA against I-JEPA at a short equal budget (issue 22): classification, sample efficiency,
robustness to the context window's size.

    python experiments/ec_ijepa.py [--epochs 3] [--only NAME ...] [--threads 2] [--table]

Every run is `cifar100_cpu` shortened to --epochs epochs (the whole schedule: warm-up, cosine, EMA),
JEPA (`ijepa_*`) or `model.conditioning=ec` (`ec_*`), nothing else changed:
- `*_s0`, `*_s1`: the default context scale (0.85, 1.0), seeds 0 and 1. Seed 0 is probed at its
  initialisation (the floor: the weights `state.build` gives the run, saved to NAME/init) and
  stopped at 1/4, 1/2 and 3/4 of its steps (exact resume: the same run as an uninterrupted one)
  and probed there with the converged probe on a fixed 10k / 10k subset, fine labels (sample
  efficiency). Both seeds end with the full probe (50k / 10k, fine and coarse, kNN) and the
  shapes transfer probe.
- `*_ctx0.6`, `*_ctx0.4`: context scale (0.6, 0.8) and (0.4, 0.6), seed 0, probed at the end on
  the 10k / 10k subset (fine); with the `*_s0` runs' last subset probe they give accuracy against
  context scale.
One JSON line per probe point goes to experiments/results/ec_ijepa.jsonl at 3 epochs, or
ec_ijepa_{E}ep.jsonl at E (a stage already there is not run again: a stopped call resumes after
its last probed stage); `--table` writes the .md beside it (`sparsejepa.figures.ec`, which
notebook 11 plots). Runs live in runs/ec_ijepa/NAME, or runs/ec_ijepa_{E}ep/NAME
(SPARSEJEPA_CIFAR100 must point at the data).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from sparsejepa import checkpoint, data
from sparsejepa.config import load_config
from sparsejepa.figures import ec
from sparsejepa.probe import run_probes
from sparsejepa.state import build, load_training_set
from sparsejepa.train import train

SUBSET = 10_000


def variants() -> dict[str, list[str]]:
    out = {}
    for method, extra in (("ijepa", []), ("ec", ["model.conditioning=ec"])):
        for seed in (0, 1):
            out[f"{method}_s{seed}"] = [*extra, f"train.seed={seed}"]
        for suffix, scale in ec.CONTEXT_SCALES.items():
            if suffix != "_s0":
                out[f"{method}{suffix}"] = [*extra, f"mask.context_scale=[{scale[0]}, {scale[1]}]"]
    return out


def probe(run_dir: Path, *, full: bool) -> dict:
    """Converged probe of the run's target encoder: fine labels on the 10k / 10k subset, or
    (full) fine and coarse on 50k / 10k plus the shapes transfer set."""
    encoder, cfg = checkpoint.load_target_encoder(run_dir / "ckpt.pt")
    sets = [("cifar100", None if full else SUBSET, ["fine", "coarse"] if full else ["fine"])]
    if full:
        sets.append(("shapes", None, None))
    out = {}
    for name, n, tasks in sets:
        ds = data.load_dataset(
            name, path=cfg.data.path if name == "cifar100" else None, seed=cfg.train.seed,
            n_train=n, n_test=n, image_size=cfg.model.img_size,
        )  # fmt: skip
        res = run_probes(encoder, ds, tasks=tasks, seed=cfg.train.seed)
        for task, r in res["tasks"].items():
            out[f"{name}/{task}"] = {
                "best_by_val": round(r["best_by_val"]["top1"], 2),
                "probe": r["best_by_val"]["probe"],
                "knn": round(r["knn"]["top1"], 2),
            }
    return out


def run(name: str, overrides: list[str], epochs: int) -> None:
    cfg = load_config("cifar100_cpu", [*overrides, f"train.epochs={epochs}", f"name={name}"])
    results = ec.results_path(epochs)
    run_dir = Path("runs") / results.stem / name
    total = round(epochs * (50_000 // cfg.train.batch_size))
    stops = [total * k // 4 for k in (0, 1, 2, 3)] if name.endswith("_s0") else []
    measured = ec.load_rows(results) if results.is_file() else {}
    done = {step: r for (run, step), r in measured.items() if run == name}
    train_s = max((r["train_s_so_far"] for r in done.values()), default=0.0)
    for i, stop in enumerate([*stops, total]):
        if stop in done:  # this stage was trained and probed by an earlier call: resume after it
            continue
        if stop == 0:  # the curve starts at the initialisation: probed from its own folder
            probed = run_dir / "init"
            probed.mkdir(parents=True, exist_ok=True)
            checkpoint.save(probed / "ckpt.pt", build(cfg, load_training_set(cfg)))
        else:
            probed, tic = run_dir, time.perf_counter()
            train(cfg, run_dir, resume=bool(done) or i > 0, stop_at=stop, progress=False)
            train_s += time.perf_counter() - tic
        tic = time.perf_counter()
        points = {} if name.endswith("_s1") else probe(probed, full=False)
        if stop == total and name[-3:] in ("_s0", "_s1"):
            points |= {f"full:{k}": v for k, v in probe(run_dir, full=True).items()}
        log = run_dir / "metrics.jsonl"
        logs = [json.loads(line) for line in log.read_text().splitlines()] if stop else []
        rankme = [r["rankme"] for r in logs if "rankme" in r]
        row = {
            "run": name,
            "overrides": overrides,
            "epochs": epochs,
            "step": stop,
            "total_steps": total,
            "images_seen": stop * cfg.train.batch_size,
            "probes": points,
            "rankme": rankme[-1] if rankme else None,
            "train_s_so_far": round(train_s) if stop else 0,
            "probe_s": round(time.perf_counter() - tic),
            "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=ec.SHORT_EPOCHS, help="training budget")
    p.add_argument("--only", nargs="+", help="run these variants (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table", action="store_true", help="only write the table from the JSONL")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not args.table:
        todo = variants()
        unknown = sorted(set(args.only or []) - set(todo))
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {sorted(todo)}")
        for name in args.only or todo:
            run(name, todo[name], args.epochs)
    results = ec.results_path(args.epochs)
    results.with_suffix(".md").write_text(ec.table(ec.load_rows(results)) + "\n")


if __name__ == "__main__":
    main()
