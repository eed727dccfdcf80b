"""What a frozen encoder's probe accuracy is measured against: a linear probe on the raw pixels and
the majority-class rate.

`pixel_probes(dataset)` fits the same linear and BatchNorm+linear heads as `probe.run_probes`
(same weight decays, same validation rule for "best_by_val") and the same kNN probe, on the
normalised pixels x' = (x / 255 - mean) / std flattened to H*W*3 features; its result has the keys
of `run_probes` with the feature set "pixels" in place of "last" / "last4". An encoder that does
not beat it has learned nothing a linear read-out of the image could not already find.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .data import ImageDataset
from .probe import probe_tasks, task_names


def pixel_features(dataset: ImageDataset, x_uint8: np.ndarray) -> torch.Tensor:
    """(N, H*W*3) float32: the images normalised with the dataset's train mean/std, flattened."""
    mean = torch.tensor(dataset.mean, dtype=torch.float32)
    std = torch.tensor(dataset.std, dtype=torch.float32)
    x = torch.from_numpy(np.asarray(x_uint8)).float().div_(255.0)
    return ((x - mean) / std).reshape(len(x), -1)


def pixel_probes(
    dataset: ImageDataset,
    *,
    tasks: list[str] | None = None,
    seed: int = 0,
) -> dict:
    """Linear, BatchNorm+linear and kNN probes of the raw pixels on each task of `dataset`:
    {"dataset", "n_train", "n_test", "feature_dims", "timing_s", "tasks": {task: {"pixels/linear",
    "pixels/bn_linear", "best", "best_by_val", "knn"}}} with top-1 % as in `run_probes`."""
    tasks = task_names(dataset, tasks)
    tic = time.perf_counter()
    train_x = pixel_features(dataset, dataset.x_train)
    test_x = pixel_features(dataset, dataset.x_test)
    timing = {"features": time.perf_counter() - tic}
    results, seconds = probe_tasks(
        {"pixels": (train_x, test_x)}, dataset, tasks, knn_features="pixels", seed=seed
    )
    return {
        "dataset": dataset.name,
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "feature_dims": {"pixels": int(train_x.shape[1])},
        "timing_s": {**timing, **seconds},
        "tasks": results,
    }


def majority_rate(dataset: ImageDataset, task: str) -> float:
    """Test top-1 % of always predicting the most frequent training class of `task`."""
    train, test = dataset.labels_train[task], dataset.labels_test[task]
    majority = np.bincount(train, minlength=dataset.num_classes[task]).argmax()
    return 100.0 * float(np.mean(test == majority))
