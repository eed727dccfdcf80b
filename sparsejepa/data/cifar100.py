"""CIFAR-100: the npz layout (uint8 NHWC, official split), the official pickle directory or its
tarball; optional md5-checked download of the official archive.

Sources, first hit wins: the `path` argument, env SPARSEJEPA_CIFAR100, then the cache dir
(`cache_dir`, env SPARSEJEPA_CACHE, default ~/.cache/sparsejepa) holding `cifar100.npz`,
`cifar-100-python/` or `cifar-100-python.tar.gz`; with `download=True` the official tarball is
fetched into the cache. A path may be the npz, the official directory or the tarball.
"""

from __future__ import annotations

import codecs
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from .common import (
    DatasetError,
    ImageDataset,
    channel_stats,
    check_images,
    check_labels,
    default_cache_dir,
    file_md5,
    find_source,
    subset,
    tried,
)

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_TASKS = {"fine": 100, "coarse": 20}
NPZ_KEYS = ("x_train", "y_train_fine", "y_train_coarse", "x_test", "y_test_fine", "y_test_coarse")
CACHE_NAMES = ("cifar100.npz", "cifar-100-python", "cifar-100-python.tar.gz")

Split = tuple[np.ndarray, dict[str, np.ndarray]]


def load_cifar100(
    path=None,
    download: bool = False,
    cache_dir=None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageDataset:
    """CIFAR-100 with tasks `fine` (100 classes) and `coarse` (20); optional stratified subsets."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found, candidates = find_source("CIFAR-100", path, "SPARSEJEPA_CIFAR100", cache, CACHE_NAMES)
    if found is None and download:
        found = download_cifar100(cache)
    if found is None:
        raise DatasetError(
            f"CIFAR-100 not found. Tried:\n  {tried(candidates)}\nFix: point env "
            "SPARSEJEPA_CIFAR100 (or the data.path setting / --data-path) at cifar100.npz, a "
            "cifar-100-python directory or its .tar.gz, or load with download=True to fetch "
            f"{CIFAR100_URL} into {cache}."
        )
    x_tr, y_tr, x_te, y_te = _read_at(found, cache)
    data = ImageDataset("cifar100", x_tr, x_te, y_tr, y_te, dict(CIFAR100_TASKS),
                        *channel_stats(x_tr))  # fmt: skip
    return subset(data, n_train, n_test, seed)


def _read_at(path: Path, cache: Path) -> tuple:
    if path.is_file() and path.suffix == ".npz":
        return _read_npz(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _read_official_dir(extract_tarball(path, cache))
    if path.is_dir():
        inner = path / "cifar-100-python"
        return _read_official_dir(inner if inner.is_dir() else path)
    raise DatasetError(f"{path}: expected a .npz file, a cifar-100-python directory or a .tar.gz")


def _check_split(source, split: str, x: np.ndarray, labels: dict[str, np.ndarray]) -> Split:
    x = check_images(source, split, x, size=32)
    return x, check_labels(source, split, len(x), labels, CIFAR100_TASKS)


def _read_npz(path: Path) -> tuple:
    # an empty, truncated or corrupt archive fails on opening or on reading an array
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        archive = np.load(path, allow_pickle=False)
    except unreadable as err:
        raise DatasetError(f"{path}: not a readable .npz archive ({err})") from err
    with archive:
        missing = [k for k in NPZ_KEYS if k not in archive.files]
        if missing:
            raise DatasetError(f"{path}: missing arrays {missing}; expected keys {list(NPZ_KEYS)}")
        try:
            arrays = {k: archive[k] for k in NPZ_KEYS}
        except unreadable as err:
            raise DatasetError(
                f"{path}: truncated or corrupt .npz archive ({err}); download or convert it again"
            ) from err
    splits = [
        _check_split(
            path,
            split,
            arrays[f"x_{split}"],
            {t: arrays[f"y_{split}_{t}"] for t in CIFAR100_TASKS},
        )
        for split in ("train", "test")
    ]
    return splits[0][0], splits[0][1], splits[1][0], splits[1][1]


class _ArrayUnpickler(pickle.Unpickler):
    """Reads the official CIFAR-100 pickles (dicts, lists, bytes, numbers and numpy arrays) and
    refuses every other global, so a tampered file cannot run code while it is read."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own array reconstructor
        if module == "_codecs":
            return codecs.encode
        return getattr(np, name)


def _read_official_dir(directory: Path) -> tuple:
    """The official pickles, read by `_ArrayUnpickler` (numpy arrays and plain types only)."""
    files = {split: directory / split for split in ("train", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{directory}: not a cifar-100-python directory, missing {missing} "
            "(expected the pickles 'train', 'test' and 'meta' of the official archive)"
        )
    out = []
    for split, file in files.items():
        try:
            with open(file, "rb") as f:
                entry = _ArrayUnpickler(f, encoding="bytes").load()
        except Exception as err:  # any unpickling failure means a corrupt or foreign file
            raise DatasetError(
                f"{file}: cannot read it as an official CIFAR-100 pickle ({err}); re-extract it "
                "from cifar-100-python.tar.gz"
            ) from err
        keys = (b"data", b"fine_labels", b"coarse_labels")
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise DatasetError(f"{file}: expected a dict with keys {keys}")
        data = np.asarray(entry[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(
                f"{file}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}"
            )
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = {t: np.asarray(entry[f"{t}_labels".encode()]) for t in CIFAR100_TASKS}
        out.extend(_check_split(file, split, images, labels))
    return tuple(out)


def download_cifar100(cache: Path, url: str | None = None, md5: str | None = None) -> Path:
    """Fetch the official tarball into `cache` (to a .part file, md5-checked, then renamed)."""
    url, md5 = url or CIFAR100_URL, md5 or CIFAR100_MD5
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / "cifar-100-python.tar.gz"
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url} failed ({err}); download it by hand and set SPARSEJEPA_CIFAR100"
        ) from err
    actual = file_md5(part)
    if actual != md5:
        part.unlink()
        raise DatasetError(
            f"checksum mismatch for {url}: md5 {actual}, expected {md5}; the download is corrupt "
            "or was tampered with, try again"
        )
    os.replace(part, target)
    return target


def extract_tarball(tarball: Path, cache: Path) -> Path:
    """Extract a cifar-100-python tarball into `cache` atomically; return the directory."""
    target = cache / "cifar-100-python"
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".extract-") as tmp:
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                for member in tar.getmembers():
                    name = Path(member.name)
                    unsafe = name.is_absolute() or ".." in name.parts
                    if unsafe or not (member.isfile() or member.isdir()):
                        raise DatasetError(f"{tarball}: unsafe archive member {member.name!r}")
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, **safe)  # members checked above; the filter where Python has it
        except (tarfile.TarError, OSError) as err:
            raise DatasetError(f"{tarball}: not a readable .tar.gz ({err})") from err
        extracted = Path(tmp) / "cifar-100-python"
        if not extracted.is_dir():
            raise DatasetError(f"{tarball}: no cifar-100-python/ directory inside the archive")
        os.replace(extracted, target)
    return target
