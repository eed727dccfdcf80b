"""The project's linear probe against scikit-learn's L-BFGS logistic regression, same features.

    python benchmarks/probe_reference.py --release jepa_s0 [--task fine] [--features last4]
        [--head bn_linear] [--C 1.0] [--threads 2]

For one shipped release (features of the CIFAR-100 train/test split, cached in runs/features/):
1. the probe as `sparsejepa probe` runs it (`linear_probe`: wd grid chosen on held-out train data,
   refit on the whole train split): top-1, chosen wd and C, seconds;
2. at each fixed --C, the same objective solved by `fit_softmax` and by scikit-learn
   (LogisticRegression, lbfgs, tol 1e-6) on the same preprocessed features: top-1 of both, the
   objective values, seconds of both. Prints one JSON object. scikit-learn needs about 1500
   iterations at C = 1 on the 512-d last-4 features (minutes to an hour on 2 cores).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from sparsejepa import data, probe, probe_heads, release


def objective(x, y, weight, bias, weight_decay) -> float:
    """mean cross-entropy + wd / 2 ||W||^2, what both solvers minimise."""
    return float(F.cross_entropy(x @ weight + bias, y) + 0.5 * weight_decay * weight.pow(2).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", default="jepa_s0")
    p.add_argument("--task", default="fine")
    p.add_argument("--features", default="last4", choices=probe.FEATURE_SETS)
    p.add_argument("--head", default="bn_linear", choices=probe.HEADS)
    p.add_argument("--C", type=float, nargs="*", default=[1.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="runs/features")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    encoder = release.load(args.release).encoder
    dataset = data.load_dataset("cifar100")
    feats, _ = probe.cached_features(
        encoder, dataset, device="cpu", cache_path=Path(args.cache) / f"{args.release}.npz"
    )
    x_train = torch.from_numpy(feats[f"train_{args.features}"])
    x_test = torch.from_numpy(feats[f"test_{args.features}"])
    y_train = torch.from_numpy(dataset.labels_train[args.task]).long()
    y_test = torch.from_numpy(dataset.labels_test[args.task]).long()
    classes = dataset.num_classes[args.task]
    batchnorm = args.head == "bn_linear"
    out = {
        "release": args.release, "task": args.task, "features": args.features, "head": args.head,
        "machine": platform.processor() or platform.machine(), "threads": args.threads,
        "n_train": len(x_train), "dim": x_train.shape[1],
    }  # fmt: skip
    result = probe.linear_probe(x_train, y_train, x_test, y_test, classes, batchnorm=batchnorm)
    out["probe"] = {k: result[k] for k in ("top1", "weight_decay", "C", "iterations", "train_s")}
    prepare = probe_heads._standardizer(x_train, per_feature=batchnorm)
    x_train, x_test = prepare(x_train), prepare(x_test)
    spectrum = probe_heads._spectrum(x_train)
    out["fixed_C"] = []
    for c in args.C:
        wd = 1.0 / (c * len(x_train))
        tic = time.perf_counter()
        wb, iterations = probe.fit_softmax(x_train, y_train, classes, wd, spectrum=spectrum)
        ours_s = time.perf_counter() - tic
        tic = time.perf_counter()
        reference = LogisticRegression(C=c, tol=1e-6, max_iter=5000)
        reference.fit(x_train.numpy(), y_train.numpy())
        ref_s = time.perf_counter() - tic
        w_ref = torch.from_numpy(reference.coef_.T).float()
        b_ref = torch.from_numpy(reference.intercept_).float()
        out["fixed_C"].append({
            "C": c, "weight_decay": wd,
            "ours": {"top1": probe_heads._accuracy(probe_heads._logits(x_test, wb), y_test)["top1"],
                     "objective": objective(x_train, y_train, wb[:-1], wb[-1], wd),
                     "iterations": iterations, "s": round(ours_s, 1)},
            "scikit_learn": {"top1": 100 * reference.score(x_test.numpy(), y_test.numpy()),
                             "objective": objective(x_train, y_train, w_ref, b_ref, wd),
                             "iterations": int(reference.n_iter_[0]), "s": round(ref_s, 1)},
        })  # fmt: skip
        print(json.dumps(out), flush=True)  # partial results survive a long reference fit
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
