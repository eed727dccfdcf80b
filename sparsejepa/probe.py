"""Frozen-encoder evaluation: pooled features, linear probes (plain and BatchNorm) and a kNN probe.

As in I-JEPA: features are the average-pooled tokens of the last layer ("last", D) or the
concatenation of the pooled last 4 layers ("last4", 4D); each feature set is probed with a linear
head and with BatchNorm(affine=False) + linear head; "best" is the best of the four on the test set
(the I-JEPA convention), "best_by_val" the one chosen on a held-out part of the train split. The
linear heads are L2-regularised logistic regressions solved to their optimum (preconditioned
full-batch L-BFGS; within 0.1 point of scikit-learn's solver: benchmarks/probe_reference.py). A
weighted kNN probe (cosine, k=20, T=0.07, weights exp(sim / T), as in DINO) runs on "last".
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint, data, release
from .augment import normalize
from .config import ConfigError
from .data import ImageDataset
from .runtime import resolve_device

FEATURE_SETS = ("last", "last4")
HEADS = ("linear", "bn_linear")
WEIGHT_DECAYS = tuple(10.0**e for e in range(-1, -10, -1))  # 1e-1 ... 1e-9


# ----------------------------------------------------------------------------- features


def extract_features(
    encoder: torch.nn.Module,
    x_uint8: np.ndarray,
    mean,
    std,
    *,
    device: torch.device | str,
    batch_size: int = 512,
) -> dict[str, np.ndarray]:
    """Pooled features of uint8 (N, H, W, 3) images: {"last": (N, D), "last4": (N, L*D)} float32.

    Calls `encoder.layer_outputs(images, L)` with L = min(4, len(encoder.blocks)), which returns
    the last L layers' (B, T, D) tokens (final-LayerNormed), last layer last; each is averaged over
    tokens. Runs in eval mode under inference_mode and restores the encoder's mode afterwards.
    """
    if not hasattr(encoder, "layer_outputs"):
        raise TypeError("extract_features needs an encoder with layer_outputs(images, n_last)")
    x_uint8 = np.asarray(x_uint8)
    if x_uint8.dtype != np.uint8 or x_uint8.ndim != 4 or x_uint8.shape[-1] != 3 or not len(x_uint8):
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x_uint8.dtype} {x_uint8.shape}")
    n_last = min(4, len(encoder.blocks)) if hasattr(encoder, "blocks") else 4
    was_training = encoder.training
    encoder.eval()
    last, last4 = [], []
    try:
        with torch.inference_mode():
            for start in range(0, len(x_uint8), batch_size):
                batch = torch.from_numpy(x_uint8[start : start + batch_size]).to(device)
                layers = encoder.layer_outputs(normalize(batch, mean, std), n_last)
                if not layers or any(t.ndim != 3 or t.shape[0] != len(batch) for t in layers):
                    shapes = [tuple(t.shape) for t in layers]
                    raise ValueError(f"layer_outputs must return (B, T, D) tensors, got {shapes}")
                pooled = [t.float().mean(dim=1) for t in layers]
                last.append(pooled[-1].cpu())
                last4.append(torch.cat(pooled, dim=1).cpu())
    finally:
        encoder.train(was_training)
    return {"last": torch.cat(last).numpy(), "last4": torch.cat(last4).numpy()}


def _fingerprint(encoder: torch.nn.Module, dataset: ImageDataset) -> str:
    """sha256 of what the features depend on: encoder weights, images and normalisation."""
    digest = hashlib.sha256(f"{dataset.name}|{dataset.mean}|{dataset.std}".encode())
    for array in (dataset.x_train, dataset.x_test):
        digest.update(str(array.shape).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cached_features(
    encoder: torch.nn.Module,
    dataset: ImageDataset,
    *,
    device: torch.device | str,
    cache_path: str | os.PathLike | None = None,
    batch_size: int = 512,
) -> tuple[dict[str, np.ndarray], bool]:
    """Features of both splits as {"train_last", "train_last4", "test_last", "test_last4"}.

    With `cache_path` they are loaded from there when its stored fingerprint matches, and written
    there atomically otherwise; an unreadable cache (truncated, corrupt, not an npz, arrays
    missing) is discarded with a warning and recomputed. Returns (features, loaded_from_cache).
    """
    fingerprint = _fingerprint(encoder, dataset) if cache_path is not None else ""
    if cache_path is not None and Path(cache_path).is_file():
        try:
            with np.load(cache_path, allow_pickle=False) as cached:
                if str(cached.get("fingerprint", "")) == fingerprint:
                    keys = [f"{split}_{k}" for split in ("train", "test") for k in FEATURE_SETS]
                    return {k: np.asarray(cached[k]) for k in keys}, True
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(
                f"feature cache {cache_path} is unreadable ({type(err).__name__}: "
                f"{err}); discarding it and recomputing the features",
                stacklevel=2,
            )
            Path(cache_path).unlink(missing_ok=True)
    features = {}
    for split, images in (("train", dataset.x_train), ("test", dataset.x_test)):
        out = extract_features(
            encoder, images, dataset.mean, dataset.std, device=device, batch_size=batch_size
        )
        features.update({f"{split}_{k}": v for k, v in out.items()})
    if cache_path is not None:
        path = Path(cache_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
            np.savez(tmp, fingerprint=np.array(fingerprint), **features)
        os.replace(tmp.name, path)
    return features, False


# ----------------------------------------------------------------------------- probes


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


def run_probes(
    encoder: torch.nn.Module,
    dataset: ImageDataset,
    *,
    tasks: list[str] | None = None,
    device: torch.device | str = "cpu",
    cache_path: str | os.PathLike | None = None,
    seed: int = 0,
    feature_batch_size: int = 512,
) -> dict:
    """All probes of the frozen `encoder` on each task of `dataset`; a JSON-serialisable dict.

    {"dataset", "n_train", "n_test", "feature_dims", "from_cache", "timing_s",
     "tasks": {task: {"last/linear", "last/bn_linear", "last4/linear", "last4/bn_linear",
                      "best", "best_by_val", "knn"}}}
    """
    tasks = list(dataset.num_classes) if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in dataset.num_classes]
    if unknown:
        raise ValueError(f"unknown tasks {unknown} for {dataset.name}; known: {dataset.tasks}")
    start = time.perf_counter()
    features, from_cache = cached_features(
        encoder, dataset, device=device, cache_path=cache_path, batch_size=feature_batch_size
    )
    feats = {k: torch.from_numpy(v) for k, v in features.items()}
    timing = {"features": time.perf_counter() - start}
    results = {}
    for task in tasks:
        start = time.perf_counter()
        y_train = torch.from_numpy(dataset.labels_train[task])
        y_test = torch.from_numpy(dataset.labels_test[task])
        classes = dataset.num_classes[task]
        results[task] = probe_task(
            {fs: (feats[f"train_{fs}"], feats[f"test_{fs}"]) for fs in FEATURE_SETS},
            y_train, y_test, classes, knn_features="last", seed=seed,
        )  # fmt: skip
        timing[task] = time.perf_counter() - start
    return {
        "dataset": dataset.name,
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "feature_dims": {k: int(feats[f"train_{k}"].shape[1]) for k in FEATURE_SETS},
        "from_cache": from_cache,
        "timing_s": timing,
        "tasks": results,
    }


def probe_checkpoint(
    ckpt: str | Path,
    dataset_name: str | None = None,
    data_path: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    download: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
) -> dict:
    """Probe the frozen target encoder of a checkpoint (a training run's ckpt.pt, a release's
    .safetensors file or a release name such as "jepa_s0"); write JSON to `out` when given.

    The probe set defaults to the training set (with its subset sizes); `n_train`/`n_test`
    override the sizes."""
    if out:  # before any work: a results path that cannot be written fails now
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if Path(out).is_dir():
            raise ConfigError(f"--out {out} is a folder; give the results JSON a file name")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device {device!r}: choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use cpu or auto")
    dev = resolve_device(device)
    is_release = str(ckpt).endswith(".safetensors") or not (
        Path(ckpt).exists() or Path(ckpt).suffix == ".pt" or "/" in str(ckpt)
    )
    if is_release:
        loaded = release.load(ckpt, device=dev)
        encoder, cfg = loaded.encoder, loaded.config
    else:
        encoder, cfg = checkpoint.load_target_encoder(ckpt, dev)
    name = dataset_name or cfg.data.dataset
    same = name == cfg.data.dataset
    ds = data.load_dataset(
        name,
        path=data_path or (cfg.data.path if same else None),
        download=download,
        seed=cfg.train.seed,
        n_train=n_train or (cfg.data.n_train if same else None),
        n_test=n_test or (cfg.data.n_test if same else None),
        image_size=cfg.model.img_size,
    )
    tasks = cfg.probe.tasks if same else None
    unknown = sorted(set(tasks or []) - set(ds.num_classes))
    if unknown:
        raise ConfigError(
            f"probe.tasks={tasks} of {ckpt}: {name} has no tasks {unknown}; it has "
            f"{list(ds.num_classes)}"
        )
    cache = (
        data.default_cache_dir() / "features" / f"{loaded.name}_{name}.npz"
        if is_release
        else Path(ckpt).with_name(f"features_{name}.pt")
    )
    with torch.no_grad():
        results = run_probes(
            encoder,
            ds,
            tasks=tasks,
            device=dev,
            cache_path=cache,
            seed=cfg.train.seed,
        )
    if out:
        Path(out).write_text(json.dumps(results, indent=2))
    return results
