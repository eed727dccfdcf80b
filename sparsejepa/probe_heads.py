"""The probe heads on frozen features: linear (plain and BatchNorm) and a weighted kNN.

Each feature set is probed with a linear head and with BatchNorm(affine=False) + linear head;
"best" is the best of the four on the test set (the I-JEPA convention), "best_by_val" the one
chosen on a held-out part of the train split. The linear heads are L2-regularised logistic
regressions solved to their optimum (preconditioned full-batch L-BFGS; within 0.1 point of
scikit-learn's solver: benchmarks/probe_reference.py). A weighted kNN probe (cosine, k=20, T=0.07,
weights exp(sim / T), as in DINO) runs on one feature set.
"""

from __future__ import annotations

import time
import warnings

import torch
import torch.nn.functional as F

HEADS = ("linear", "bn_linear")
WEIGHT_DECAYS = tuple(10.0**e for e in range(-1, -10, -1))  # 1e-1 ... 1e-9


def _probe_inputs(train_x, train_y, test_x, test_y, num_classes: int) -> tuple[torch.Tensor, ...]:
    """Check features (N, D) and integer labels (N,); return them as float32 / int64 tensors."""
    train_x, test_x = torch.as_tensor(train_x).float(), torch.as_tensor(test_x).float()
    train_y, test_y = torch.as_tensor(train_y), torch.as_tensor(test_y)
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if y.is_floating_point() or y.is_complex():
            raise ValueError(f"{name} labels must be integers, got {y.dtype}")
        if x.ndim != 2 or y.shape != (len(x),):
            raise ValueError(
                f"{name}: need features (N, D), labels (N,); got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} features contain NaN or Inf")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in 0..{num_classes - 1}")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"feature dims differ: train {train_x.shape[1]}, test {test_x.shape[1]}")
    return train_x, train_y.long(), test_x, test_y.long()


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    k = min(5, logits.shape[-1])
    topk = logits.topk(k, dim=-1).indices
    hits = topk == labels[:, None]
    top1, top5 = hits[:, 0].float().mean().item(), hits.any(dim=1).float().mean().item()
    return {"top1": 100 * top1, "top5": 100 * top5}


def _standardizer(x: torch.Tensor, per_feature: bool):
    """z -> (z - mean) / scale with x's statistics: one global scale ("linear": the relative
    feature scales are kept) or one per feature ("bn_linear": what BatchNorm1d(affine=False)
    computes from full-batch statistics)."""
    centre = x.mean(0)
    scale = x.std(0) if per_feature else (x - centre).pow(2).mean().sqrt()
    scale = scale.clamp_min(1e-12)
    return lambda z: (z - centre) / scale


def _spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors of the second-moment matrix x^T x / N (float64)."""
    return torch.linalg.eigh((x.double().T @ x.double()) / len(x))


def fit_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    weight_decay: float,
    init: torch.Tensor | None = None,
    *,
    spectrum: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_iter: int = 500,
    tol: float = 1e-5,
) -> tuple[torch.Tensor, int]:
    """argmin_{W, b} mean_i CE(x_i W + b, y_i) + weight_decay / 2 * ||W||_F^2 by full-batch L-BFGS
    (strong-Wolfe line search), from zero or from `init` (the (D+1, C) matrix [W; b]); stops when
    the objective changes by less than `tol` in an iteration. Returns ([W; b], iterations).

    The objective of scikit-learn's LogisticRegression(C = 1 / (weight_decay * N)), whose
    intercept is not penalised either. L-BFGS runs in the variables V = P^-1 W with
    P = (x^T x / (N C) + wd I)^(-1/2), the inverse root of the Hessian's approximation at W = 0
    (softmax curvature 1/C times the feature second moment, plus the penalty): the optimum is the
    same, and on CIFAR-100 features it is reached in 100-250 iterations instead of about 1000.
    `spectrum` (from `_spectrum(x)`) saves the eigendecomposition when fitting several wd.
    """
    eigenvalues, eigenvectors = _spectrum(x) if spectrum is None else spectrum
    root = (eigenvalues.clamp_min(0) / num_classes + weight_decay).clamp_min(1e-12).sqrt()
    p = ((eigenvectors / root) @ eigenvectors.T).float()
    z, p2 = x @ p, p @ p
    if init is None:
        v, bias = torch.zeros(x.shape[1], num_classes), torch.zeros(num_classes)
    else:
        v = ((eigenvectors * root) @ eigenvectors.T).float() @ init[:-1]
        bias = init[-1].clone()
    v.requires_grad_(True), bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [v, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=tol,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def objective() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(torch.addmm(bias, z, v), y)
        loss = loss + 0.5 * weight_decay * (v * (p2 @ v)).sum()  # ||P V||^2 = tr(V^T P^2 V)
        loss.backward()
        return loss

    with torch.enable_grad():  # callers may hold torch.no_grad() for the frozen encoder
        optimizer.step(objective)
    return torch.cat([p @ v.detach(), bias.detach()[None]]), int(optimizer.state[v]["n_iter"])


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    *,
    batchnorm: bool = False,
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS,
    val_fraction: float = 0.1,
    patience: int = 2,
    seed: int = 0,
) -> dict:
    """L2-regularised softmax regression on frozen features, solved to its optimum.

    Input: "linear" centres the features and divides by one global scale; "bn_linear"
    standardises each feature (BatchNorm1d(affine=False) with full-batch statistics); both with
    the train split's statistics. The weight decay wd (objective: mean cross-entropy +
    wd / 2 * ||W||^2, i.e. C = 1 / (wd * N) in scikit-learn's terms) is chosen on a held-out
    `val_fraction` of the train split along a path from strong to weak regularisation (each fit
    warm-started from the previous one; the path stops once `patience` values in a row score
    below the best); the chosen wd is refitted on the whole train split and scored on the test
    split. A warning says when the chosen wd lies at an end of the grid.
    """
    train_x, train_y, test_x, test_y = _probe_inputs(train_x, train_y, test_x, test_y, num_classes)
    start = time.perf_counter()
    prepare = _standardizer(train_x, per_feature=batchnorm)
    train_x, test_x = prepare(train_x), prepare(test_x)
    n_val = int(round(val_fraction * len(train_x)))
    if n_val == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no held-out samples to choose wd")
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))
    val_idx, fit_idx = order[:n_val], order[n_val:]
    fit_x, fit_y = train_x[fit_idx], train_y[fit_idx]
    spectrum = _spectrum(train_x)
    grid = sorted(weight_decays, reverse=True)
    solutions, val_top1, iterations = {}, {}, 0
    init = None
    for wd in grid:
        init, n_iter = fit_softmax(fit_x, fit_y, num_classes, wd, init, spectrum=spectrum)
        iterations += n_iter
        solutions[wd] = init
        val_top1[wd] = _accuracy(_logits(train_x[val_idx], init), train_y[val_idx])["top1"]
        best = max(val_top1, key=val_top1.get)
        if sum(v < val_top1[best] for v in list(val_top1.values())[-patience:]) == patience:
            break
    chosen = max(val_top1, key=val_top1.get)
    if chosen in (grid[0], grid[-1]):
        warnings.warn(
            f"the linear probe chose weight decay {chosen:g}, an end of its grid "
            f"{[f'{w:g}' for w in grid]}: widen `weight_decays`",
            stacklevel=2,
        )
    final, n_iter = fit_softmax(
        train_x, train_y, num_classes, chosen, solutions[chosen], spectrum=spectrum
    )
    return {
        **_accuracy(_logits(test_x, final), test_y),
        "weight_decay": chosen,
        "C": 1.0 / (chosen * len(train_x)),
        "val_top1": {f"{wd:g}": acc for wd, acc in val_top1.items()},
        "iterations": iterations + n_iter,
        "train_s": time.perf_counter() - start,
    }


def _logits(x: torch.Tensor, weight_and_bias: torch.Tensor) -> torch.Tensor:
    return torch.addmm(weight_and_bias[-1], x, weight_and_bias[:-1])


def knn_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 512,
) -> dict:
    """Weighted kNN: score_c = sum over the k most cosine-similar train items of class c of
    exp(sim / T); the prediction is the class with the highest score."""
    train_x, train_y, test_x, test_y = _probe_inputs(train_x, train_y, test_x, test_y, num_classes)
    k = min(k, len(train_x))
    train_n = F.normalize(train_x, dim=1)
    correct1 = correct5 = 0
    for start in range(0, len(test_x), chunk):
        query = F.normalize(test_x[start : start + chunk], dim=1)
        sims, idx = (query @ train_n.T).topk(k, dim=1)
        votes = torch.zeros(len(query), num_classes)
        votes.scatter_add_(1, train_y[idx], (sims / temperature).exp())
        acc = _accuracy(votes, test_y[start : start + chunk])
        correct1 += acc["top1"] * len(query) / 100
        correct5 += acc["top5"] * len(query) / 100
    n = len(test_x)
    return {"top1": 100 * correct1 / n, "top5": 100 * correct5 / n, "k": k, "T": temperature}


def probe_task(
    feature_sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    train_y: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    *,
    knn_features: str,
    seed: int = 0,
) -> dict:
    """The probes of one task: {"NAME/linear", "NAME/bn_linear" for each NAME of `feature_sets`
    (name -> (train features, test features)), "best" (on test), "best_by_val", "knn" (on the
    feature set `knn_features`)}."""
    results = {
        f"{name}/{head}": linear_probe(
            train_x, train_y, test_x, test_y, num_classes, batchnorm=head == "bn_linear", seed=seed
        )
        for name, (train_x, test_x) in feature_sets.items()
        for head in HEADS
    }
    probes = list(results)
    best = max(probes, key=lambda p: results[p]["top1"])
    best_val = max(probes, key=lambda p: max(results[p]["val_top1"].values()))
    results["best"] = {"probe": best, "top1": results[best]["top1"]}
    results["best_by_val"] = {"probe": best_val, "top1": results[best_val]["top1"]}
    train_x, test_x = feature_sets[knn_features]
    results["knn"] = knn_probe(train_x, train_y, test_x, test_y, num_classes)
    return results
