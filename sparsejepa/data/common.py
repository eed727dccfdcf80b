"""What every dataset shares: the `ImageDataset` container, `DatasetError`, the checks of image
and label arrays, per-channel statistics, seeded class-stratified subsets and source lookup."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset is missing, corrupt or malformed; the message says what to do."""


@dataclass
class ImageDataset:
    """Images as uint8 (N, H, W, 3) C-contiguous arrays, labels as int64 arrays per task.

    `mean`/`std` are per-channel statistics of x_train / 255. `factors_train`/`factors_test` hold
    the generative factors of synthetic datasets (empty for CIFAR-100).
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    labels_train: dict[str, np.ndarray]
    labels_test: dict[str, np.ndarray]
    num_classes: dict[str, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    factors_train: dict[str, np.ndarray] = field(default_factory=dict)
    factors_test: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return list(self.num_classes)


def default_cache_dir() -> Path:
    """env SPARSEJEPA_CACHE, default ~/.cache/sparsejepa."""
    return Path(os.environ.get("SPARSEJEPA_CACHE", "~/.cache/sparsejepa")).expanduser()


def find_source(
    what: str, path, env: str, cache: Path, cache_names: tuple[str, ...]
) -> tuple[Path | None, list[tuple[str, Path]]]:
    """First existing location of a dataset: the `path` argument, env `env`, then `cache/NAME` for
    each of `cache_names`. Returns (found or None, every candidate as (origin, path)).

    An explicit location (argument or env var) that does not exist is an error, not a miss.
    """
    candidates: list[tuple[str, Path]] = []
    if path is not None:
        candidates.append(("path argument", Path(path).expanduser()))
    if os.environ.get(env):
        candidates.append((f"env {env}", Path(os.environ[env]).expanduser()))
    candidates += [("cache", cache / name) for name in cache_names]
    for origin, candidate in candidates:
        if candidate.exists():
            return candidate, candidates
        if origin != "cache":
            raise DatasetError(f"{what} not found at {candidate} (from {origin})")
    return None, candidates


def tried(candidates: list[tuple[str, Path]]) -> str:
    """The candidates of `find_source`, one per line, for a not-found message."""
    return "\n  ".join(f"{p} ({origin})" for origin, p in candidates)


def check_images(source, split: str, x: np.ndarray, size: int | None = None) -> np.ndarray:
    """x must be uint8 (N, H, W, 3) (H = W = size when given); returns it C-contiguous."""
    shape = "(N, H, W, 3)" if size is None else f"(N, {size}, {size}, 3)"
    ok = x.dtype == np.uint8 and x.ndim == 4 and x.shape[-1] == 3
    if not ok or (size is not None and x.shape[1:3] != (size, size)):
        raise DatasetError(f"{source}: x_{split} must be uint8 {shape}, got {x.dtype} {x.shape}")
    return np.ascontiguousarray(x)


def check_labels(
    source, split: str, n: int, labels: dict[str, np.ndarray], num_classes: dict[str, int]
) -> dict[str, np.ndarray]:
    """Each task's labels must be n integers in 0..C-1; returns them as int64."""
    checked = {}
    for task, classes in num_classes.items():
        y = np.asarray(labels[task])
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(
                f"{source}: {split} {task} labels must be integers of shape ({n},), "
                f"got {y.dtype} {y.shape}"
            )
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise DatasetError(
                f"{source}: {split} {task} labels must lie in 0..{classes - 1}, "
                f"got {y.min()}..{y.max()}"
            )
        checked[task] = y.astype(np.int64)
    return checked


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of x/255, from a 256-bin histogram per channel."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[-1]):
        counts = np.bincount(x[..., c].ravel(), minlength=256).astype(np.float64)
        p = counts / counts.sum()
        mean = float(p @ levels)
        means.append(mean)
        stds.append(float(np.sqrt(p @ (levels - mean) ** 2)))
    return tuple(means), tuple(stds)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (md5 for the official CIFAR archive, sha256
    for everything this project writes or downloads itself)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of n items, classes as balanced as possible, chosen at random by seed.

    Each item gets its rank within its class in a seeded random order; the n smallest ranks are kept
    (ties broken by the random order), so every class gives floor(n/C) or ceil(n/C) items if it can.
    """
    total = len(labels)
    if not 0 < n <= total:
        raise DatasetError(f"subset size {n} must be in 1..{total}")
    order = np.random.default_rng(seed).permutation(total)
    by_class = order[np.argsort(labels[order], kind="stable")]
    sorted_labels = labels[by_class]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    group_sizes = np.diff(np.r_[starts, total])
    rank = np.empty(total, dtype=np.int64)
    rank[by_class] = np.arange(total) - np.repeat(starts, group_sizes)
    position = np.empty(total, dtype=np.int64)
    position[order] = np.arange(total)
    keep = np.lexsort((position, rank))[:n]
    return np.sort(keep)


def subset(data: ImageDataset, n_train: int | None, n_test: int | None, seed: int) -> ImageDataset:
    """Keep a class-stratified subset (on the first task) of each split, chosen by seed; the
    train statistics are recomputed on the kept images."""
    first_task = data.tasks[0]
    if n_train is not None:
        idx = stratified_indices(data.labels_train[first_task], n_train, seed)
        data.x_train = np.ascontiguousarray(data.x_train[idx])
        data.labels_train = {k: v[idx] for k, v in data.labels_train.items()}
        data.factors_train = {k: v[idx] for k, v in data.factors_train.items()}
        data.mean, data.std = channel_stats(data.x_train)
    if n_test is not None:
        idx = stratified_indices(data.labels_test[first_task], n_test, seed + 1)
        data.x_test = np.ascontiguousarray(data.x_test[idx])
        data.labels_test = {k: v[idx] for k, v in data.labels_test.items()}
        data.factors_test = {k: v[idx] for k, v in data.factors_test.items()}
    return data
