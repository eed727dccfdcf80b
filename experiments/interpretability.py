"""Are the sparsity head's channel groups about something? Per-group superclass probes of releases.

    python experiments/interpretability.py sparsejepa_s0 jepa_s0 [...] [--n-train 10000]
        [--groups 8] [--draws 5] [--seed 0] [--out experiments/results/interpretability]

For each release: the pooled last-layer features ("last", D = width) of CIFAR-100, split into the
head's `--groups` contiguous channel groups and into `--draws` random partitions of the same sizes
(numpy Generator, seed `--seed`); for each group a softmax probe of the 20 superclasses from its
channels alone (`sparsejepa.interpretability`): test top-1, the variational lower bound on
I(group; superclass) in nats, the same bound per superclass (one vs rest), and the specialisation
statistics (effective superclasses per group, diversity among groups); also the probe on all
channels. One JSON line per release is appended to OUT.jsonl; OUT.md is rewritten with the table of
the latest line of each release and the command. The probe trains on a class-stratified
`--n-train` subset of the train split (the full one with `--n-train 0`) and reads the whole test
split; features come from the user cache (the full-split file `sparsejepa probe` writes, else one
for the subset), so a second pass costs the probes only. `--reference` first checks the probe
against scikit-learn on one group.
"""

import argparse
import dataclasses
import functools
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sparsejepa import data, release
from sparsejepa.features import cached_features
from sparsejepa.figures import interpretability
from sparsejepa.figures.runs import epochs_of, lam_of
from sparsejepa.interpretability import (
    WEIGHT_DECAY,
    contiguous_groups,
    group_probes,
    random_groups,
    specialisation,
    summarise,
)


def features(r: release.Release, ds: data.ImageDataset, idx: np.ndarray | None) -> tuple:
    """(train "last" features of the rows idx, test "last" features)."""
    cache = data.default_cache_dir() / "features"
    full = cache / f"{r.name}_cifar100.npz"
    if idx is None or full.is_file():
        f, _ = cached_features(r.encoder, ds, device="cpu", cache_path=full)
        train = f["train_last"] if idx is None else f["train_last"][idx]
        return train, f["test_last"]
    sub = dataclasses.replace(  # same normalisation as the full split (the encoder's)
        ds, x_train=np.ascontiguousarray(ds.x_train[idx]),
        labels_train={k: v[idx] for k, v in ds.labels_train.items()},
    )  # fmt: skip
    f, _ = cached_features(r.encoder, sub, device="cpu",
                           cache_path=cache / f"{r.name}_cifar100_train{len(idx)}.npz")  # fmt: skip
    return f["train_last"], f["test_last"]


def partition(probes: list[dict]) -> dict:
    spec = specialisation(np.stack([p["class_information"] for p in probes]))
    groups = [
        {**{k: p[k] for k in ("channels", "top1", "mi_lower_bound")},
         "class_information": np.round(p["class_information"], 5).tolist(),
         "effective_classes": float(e)}
        for p, e in zip(probes, spec["effective_classes"], strict=True)
    ]  # fmt: skip
    return {"summary": summarise(probes), "groups": groups}


def reference(train_x, train_y, test_x, test_y, group) -> dict:
    """The first group's probe by scikit-learn's LogisticRegression (same objective) and ours."""
    from sklearn.linear_model import LogisticRegression

    x, t = train_x[:, group], test_x[:, group]
    centre, scale = x.mean(0), x.std(0)
    sk = LogisticRegression(C=1 / (WEIGHT_DECAY * len(x)), max_iter=5000, tol=1e-8)
    proba = sk.fit((x - centre) / scale, train_y).predict_proba((t - centre) / scale)
    ours = group_probes(train_x, train_y, test_x, test_y, [group])[0]
    h = ours["mi_lower_bound"] + ours["cross_entropy"]
    return {
        "sklearn_top1": 100 * float((proba.argmax(1) == test_y).mean()),
        "sklearn_mi_lower_bound": h + float(np.log(proba[np.arange(len(t)), test_y]).mean()),
        "ours_top1": ours["top1"], "ours_mi_lower_bound": ours["mi_lower_bound"],
    }  # fmt: skip


def write_table(out: Path) -> None:
    rows = interpretability.load_rows(out.with_suffix(".jsonl"))
    out.with_suffix(".md").write_text(interpretability.table(rows) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("releases", nargs="*", help="none: only rewrite OUT.md from OUT.jsonl")
    p.add_argument("--n-train", type=int, default=10000, help="0: the whole train split")
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="experiments/results/interpretability")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.releases:
        return write_table(out)
    command = shlex.join(["python", "experiments/interpretability.py", *sys.argv[1:]])
    ds = data.load_dataset("cifar100")
    idx = data.stratified_indices(ds.labels_train["fine"], args.n_train, args.seed) \
        if args.n_train else None  # fmt: skip
    train_y = ds.labels_train["coarse"] if idx is None else ds.labels_train["coarse"][idx]
    test_y = ds.labels_test["coarse"]
    for name in args.releases:
        tic = time.perf_counter()
        r = release.load(name)
        train_x, test_x = features(r, ds, idx)
        d = train_x.shape[1]
        rng = np.random.default_rng(args.seed)
        probe = functools.partial(group_probes, train_x, train_y, test_x, test_y)
        everything = probe([np.arange(d)])[0]
        row = {
            "release": name, "method": r.method, "epochs": epochs_of(r), "lambda": lam_of(r),
            "n_train": len(train_x), "n_test": len(test_x), "weight_decay": WEIGHT_DECAY,
            "seed": args.seed, "command": command,
            "all": {"channels": d, **{k: everything[k] for k in
                                      ("top1", "cross_entropy", "mi_lower_bound")}},
            "contiguous": [partition(probe(contiguous_groups(d, args.groups)))],
            "random": [partition(probe(random_groups(d, args.groups, rng)))
                       for _ in range(args.draws)],
        }  # fmt: skip
        if args.reference and name == args.releases[0]:
            g = contiguous_groups(d, args.groups)[0]
            row["reference"] = reference(train_x, train_y, test_x, test_y, g)
        row["seconds"] = round(time.perf_counter() - tic)
        row["machine"] = platform.processor() or platform.machine()
        with out.with_suffix(".jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        summary = {k: row[k][0]["summary"] for k in ("contiguous", "random")}
        print(name, f"{row['seconds']} s", json.dumps(summary), flush=True)
        write_table(out)


if __name__ == "__main__":
    main()
