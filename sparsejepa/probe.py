"""Frozen-encoder evaluation: the probes of an encoder (or a checkpoint, or a release) on each task
of a dataset.

Pooled features come from `features` ("last": the last layer, "last4": the last 4 layers,
cached on disk), the heads from `probe_heads` (linear and BatchNorm + linear, solved to their
optimum, "best" on test and "best_by_val"; a weighted kNN). `probe_tasks` is the per-task loop
shared with the raw-pixel baseline (`baselines.pixel_probes`). The public names of both modules
are importable from here too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from . import checkpoint, data, release
from .config import ConfigError
from .data import ImageDataset
from .features import FEATURE_SETS, cached_features, extract_features
from .probe_heads import (
    HEADS,
    WEIGHT_DECAYS,
    fit_softmax,
    knn_probe,
    linear_probe,
    probe_task,
)
from .runtime import resolve_device

__all__ = [
    "FEATURE_SETS",
    "HEADS",
    "WEIGHT_DECAYS",
    "cached_features",
    "extract_features",
    "fit_softmax",
    "knn_probe",
    "linear_probe",
    "probe_checkpoint",
    "probe_task",
    "probe_tasks",
    "run_probes",
    "task_names",
]


def task_names(dataset: ImageDataset, tasks: list[str] | None) -> list[str]:
    """`tasks` (default: every task of `dataset`), checked against the dataset's tasks."""
    tasks = list(dataset.num_classes) if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in dataset.num_classes]
    if unknown:
        raise ValueError(f"unknown tasks {unknown} for {dataset.name}; known: {dataset.tasks}")
    return tasks


def probe_tasks(
    feature_sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    dataset: ImageDataset,
    tasks: list[str],
    *,
    knn_features: str,
    seed: int = 0,
) -> tuple[dict, dict]:
    """`probe_task` on each task of `dataset` with the labels of its splits; feature_sets: name ->
    (train features, test features). Returns ({task: results}, {task: seconds})."""
    results, timing = {}, {}
    for task in tasks:
        start = time.perf_counter()
        y_train = torch.from_numpy(dataset.labels_train[task])
        y_test = torch.from_numpy(dataset.labels_test[task])
        classes = dataset.num_classes[task]
        results[task] = probe_task(
            feature_sets, y_train, y_test, classes, knn_features=knn_features, seed=seed
        )
        timing[task] = time.perf_counter() - start
    return results, timing


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
    tasks = task_names(dataset, tasks)
    start = time.perf_counter()
    features, from_cache = cached_features(
        encoder, dataset, device=device, cache_path=cache_path, batch_size=feature_batch_size
    )
    feats = {k: torch.from_numpy(v) for k, v in features.items()}
    timing = {"features": time.perf_counter() - start}
    results, seconds = probe_tasks(
        {fs: (feats[f"train_{fs}"], feats[f"test_{fs}"]) for fs in FEATURE_SETS},
        dataset,
        tasks,
        knn_features="last",
        seed=seed,
    )
    return {
        "dataset": dataset.name,
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "feature_dims": {k: int(feats[f"train_{k}"].shape[1]) for k in FEATURE_SETS},
        "from_cache": from_cache,
        "timing_s": {**timing, **seconds},
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
