"""Datasets as in-memory uint8 arrays: CIFAR-100, the offline "shapes" set and CLEVR (VTAB tasks).

`load_dataset(name, ...)` returns an `ImageDataset`: uint8 (N, H, W, 3) images and int64 labels
keyed by task. Everything is held in memory (CIFAR-100 is 180 MB), so the training loop can put a
whole split on the device and index it with `augment.batch_indices`.

One module per dataset: `cifar100` (npz / official format / md5-checked download), `shapes`
(generated from the seed, no files), `clevr` (CLEVR v1.0 folder: Clevr/Count and Clevr/Dist).
`common` holds what they share: `ImageDataset`, `DatasetError`, the array checks, statistics,
stratified subsets and the lookup of a dataset's files (argument, env var, cache dir).
"""

from __future__ import annotations

import os

from . import cifar100, clevr, shapes
from .cifar100 import (
    CIFAR100_MD5,
    CIFAR100_TASKS,
    CIFAR100_URL,
    NPZ_KEYS,
    download_cifar100,
    extract_tarball,
    load_cifar100,
)
from .clevr import CLEVR_TASKS, load_clevr, locate_clevr
from .common import (
    DatasetError,
    ImageDataset,
    channel_stats,
    default_cache_dir,
    stratified_indices,
)
from .shapes import COLOURS, DEPTH_RANGE, DIST_BINS, MAX_OBJECTS, SHAPES, make_shapes

DATASETS = ("cifar100", "shapes", "clevr")

__all__ = [
    "CIFAR100_MD5", "CIFAR100_TASKS", "CIFAR100_URL", "CLEVR_TASKS", "COLOURS", "DATASETS",
    "DEPTH_RANGE", "DIST_BINS", "MAX_OBJECTS", "NPZ_KEYS", "SHAPES", "DatasetError",
    "ImageDataset", "channel_stats", "cifar100", "clevr", "default_cache_dir",
    "download_cifar100", "extract_tarball", "load_cifar100", "load_clevr", "load_dataset",
    "locate_clevr", "make_shapes", "shapes", "stratified_indices",
]  # fmt: skip


def load_dataset(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    image_size: int = 32,
) -> ImageDataset:
    """Load dataset `name` ("cifar100", "shapes" or "clevr").

    `n_train`/`n_test` keep a class-stratified subset (on the first task) chosen by `seed`, never a
    prefix: the CIFAR-100 npz is sorted by class. For "shapes" they set the generated sizes.
    `image_size` is the side CLEVR images are resized to (CIFAR-100 and shapes are 32x32).
    """
    if name == "cifar100":
        return cifar100.load_cifar100(path, download, cache_dir, seed, n_train, n_test)
    if name == "shapes":
        if path is not None or download:
            raise DatasetError("'shapes' is generated from the seed; it takes no path or download")
        sizes = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v is not None}
        return make_shapes(seed=seed, **sizes)
    if name == "clevr":
        if download:
            raise DatasetError(
                f"CLEVR is not downloaded automatically (18 GB); get it from {clevr.CLEVR_URL}"
            )
        return load_clevr(path, cache_dir, image_size, seed, n_train, n_test)
    raise DatasetError(f"unknown dataset {name!r}; choose one of {DATASETS}")
