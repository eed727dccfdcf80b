"""Datasets as in-memory uint8 arrays: CIFAR-100 (npz or official format) and offline "shapes".

`load_dataset(name, ...)` returns an `ImageDataset`: uint8 (N, H, W, 3) images and int64 labels
keyed by task. Everything is held in memory (CIFAR-100 is 180 MB), so the training loop can put a
whole split on the device and index it with `augment.batch_indices`.

CIFAR-100 sources, first hit wins: the `path` argument, env SPARSEJEPA_CIFAR100, then the cache
dir (`cache_dir`, env SPARSEJEPA_CACHE, default ~/.cache/sparsejepa) holding `cifar100.npz`,
`cifar-100-python/` or `cifar-100-python.tar.gz`; with `download=True` the official tarball is
fetched into the cache (md5 checked). A path may be the npz, the official directory or the tarball.

"shapes" is generated from the seed (see `make_shapes`), so it needs no file at all.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_TASKS = {"fine": 100, "coarse": 20}
NPZ_KEYS = ("x_train", "y_train_fine", "y_train_coarse", "x_test", "y_test_fine", "y_test_coarse")
DATASETS = ("cifar100", "shapes")


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


def load_dataset(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageDataset:
    """Load dataset `name` ("cifar100" or "shapes").

    `n_train`/`n_test` keep a class-stratified subset (on the first task) chosen by `seed`, never a
    prefix: the CIFAR-100 npz is sorted by class. For "shapes" they set the generated sizes.
    """
    if name == "cifar100":
        x_tr, y_tr, x_te, y_te = _read_cifar100(path, download, cache_dir)
        data = ImageDataset("cifar100", x_tr, x_te, y_tr, y_te, dict(CIFAR100_TASKS), *_stats(x_tr))
        return _subset(data, n_train, n_test, seed)
    if name == "shapes":
        if path is not None or download:
            raise DatasetError("'shapes' is generated from the seed; it takes no path or download")
        return make_shapes(seed=seed, **_sizes(n_train=n_train, n_test=n_test))
    raise DatasetError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def _sizes(**sizes: int | None) -> dict[str, int]:
    return {k: v for k, v in sizes.items() if v is not None}


def _stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


# ----------------------------------------------------------------------------- subsets


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


def _subset(data: ImageDataset, n_train: int | None, n_test: int | None, seed: int) -> ImageDataset:
    first_task = data.tasks[0]
    if n_train is not None:
        idx = stratified_indices(data.labels_train[first_task], n_train, seed)
        data.x_train = np.ascontiguousarray(data.x_train[idx])
        data.labels_train = {k: v[idx] for k, v in data.labels_train.items()}
        data.factors_train = {k: v[idx] for k, v in data.factors_train.items()}
        data.mean, data.std = _stats(data.x_train)
    if n_test is not None:
        idx = stratified_indices(data.labels_test[first_task], n_test, seed + 1)
        data.x_test = np.ascontiguousarray(data.x_test[idx])
        data.labels_test = {k: v[idx] for k, v in data.labels_test.items()}
        data.factors_test = {k: v[idx] for k, v in data.factors_test.items()}
    return data


# ----------------------------------------------------------------------------- CIFAR-100

Split = tuple[np.ndarray, dict[str, np.ndarray]]


def default_cache_dir() -> Path:
    return Path(os.environ.get("SPARSEJEPA_CACHE", "~/.cache/sparsejepa")).expanduser()


def _read_cifar100(path, download: bool, cache_dir) -> tuple:
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    candidates: list[tuple[str, Path]] = []
    if path is not None:
        candidates.append(("path argument", Path(path).expanduser()))
    if os.environ.get("SPARSEJEPA_CIFAR100"):
        candidates.append(("env SPARSEJEPA_CIFAR100", Path(os.environ["SPARSEJEPA_CIFAR100"])))
    for name in ("cifar100.npz", "cifar-100-python", "cifar-100-python.tar.gz"):
        candidates.append(("cache", cache / name))
    for origin, candidate in candidates:
        if candidate.exists():
            return _read_cifar100_at(candidate, cache)
        if origin != "cache":  # an explicit location that does not exist is a mistake, not a miss
            raise DatasetError(f"CIFAR-100 not found at {candidate} (from {origin})")
    if download:
        return _read_cifar100_at(download_cifar100(cache), cache)
    tried = "\n  ".join(f"{p} ({origin})" for origin, p in candidates)
    raise DatasetError(
        f"CIFAR-100 not found. Tried:\n  {tried}\nFix: point env SPARSEJEPA_CIFAR100 (or the "
        "data.path setting / --data-path) at cifar100.npz, a cifar-100-python directory or its "
        f".tar.gz, or load with download=True to fetch {CIFAR100_URL} into {cache}."
    )


def _read_cifar100_at(path: Path, cache: Path) -> tuple:
    if path.is_file() and path.suffix == ".npz":
        return _read_npz(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _read_official_dir(extract_tarball(path, cache))
    if path.is_dir():
        inner = path / "cifar-100-python"
        return _read_official_dir(inner if inner.is_dir() else path)
    raise DatasetError(f"{path}: expected a .npz file, a cifar-100-python directory or a .tar.gz")


def _read_npz(path: Path) -> tuple:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable .npz archive ({err})") from err
    with archive:
        missing = [k for k in NPZ_KEYS if k not in archive.files]
        if missing:
            raise DatasetError(f"{path}: missing arrays {missing}; expected keys {list(NPZ_KEYS)}")
        splits = [
            _check_split(
                path,
                split,
                archive[f"x_{split}"],
                {t: archive[f"y_{split}_{t}"] for t in CIFAR100_TASKS},
            )
            for split in ("train", "test")
        ]
    return splits[0][0], splits[0][1], splits[1][0], splits[1][1]


def _read_official_dir(directory: Path) -> tuple:
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
                entry = pickle.load(f, encoding="bytes")
        except Exception as err:  # any unpickling failure means a corrupt file
            raise DatasetError(f"{file}: cannot unpickle ({err})") from err
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


def _check_split(source, split: str, x: np.ndarray, labels: dict[str, np.ndarray]) -> Split:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise DatasetError(
            f"{source}: x_{split} must be uint8 (N, 32, 32, 3), got {x.dtype} {x.shape}"
        )
    checked = {}
    for task, num_classes in CIFAR100_TASKS.items():
        y = labels[task]
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(
                f"{source}: {split} {task} labels must be integers of shape ({len(x)},), "
                f"got {y.dtype} {y.shape}"
            )
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DatasetError(
                f"{source}: {split} {task} labels must lie in 0..{num_classes - 1}, "
                f"got {y.min()}..{y.max()}"
            )
        checked[task] = y.astype(np.int64)
    return np.ascontiguousarray(x), checked


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    actual = _md5(part)
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


# ----------------------------------------------------------------------------- shapes

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {
    "red": (0.9, 0.15, 0.15),
    "green": (0.2, 0.8, 0.2),
    "blue": (0.2, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "magenta": (0.85, 0.2, 0.85),
    "cyan": (0.15, 0.85, 0.9),
}
MAX_OBJECTS = 6
DEPTH_RANGE = (1.0, 2.5)  # depth d gives radius RADIUS_AT_DEPTH_1 / d pixels: 7.5 px .. 3 px
RADIUS_AT_DEPTH_1 = 7.5
DIST_BINS = 6
IMAGE_SIZE = 32
WINDOW = 20  # patch painted around an object: covers 1.2 * 7.5 px plus antialiasing


def make_shapes(n_train: int = 20000, n_test: int = 5000, seed: int = 0) -> ImageDataset:
    """Offline dataset of 32x32 RGB images with 1..6 flat objects on a noisy grey background.

    Each object has a shape (5), a colour (6, jittered), a depth d drawn as radius 7.5/d pixels
    (3..7.5 px; nearer is larger and is painted on top) and a position. The closest object's depth
    is U(1, 2.5), the others are uniform behind it; objects are placed without overlap where 20
    tries allow it. Tasks:
      shape: shape of the closest (largest) object, 5 classes;
      count: number of objects minus one, 6 classes (stand-in for Clevr/Count);
      dist:  depth of the closest object in 6 equal bins of [1, 2.5] (stand-in for Clevr/Dist).
    Factors, per slot sorted from closest to farthest, padding -1 (ints) or NaN (floats):
    count, shape, colour, depth, radius, x, y (pixel coordinates of the centre).
    """
    if n_train < 1 or n_test < 1:
        raise DatasetError(f"shapes needs n_train, n_test >= 1, got {n_train}, {n_test}")
    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x_tr, f_tr = _render_shapes(n_train, rng_train)
    x_te, f_te = _render_shapes(n_test, rng_test)
    num_classes = {"shape": len(SHAPES), "count": MAX_OBJECTS, "dist": DIST_BINS}
    return ImageDataset(
        "shapes", x_tr, x_te, _shape_labels(f_tr), _shape_labels(f_te), num_classes,
        *_stats(x_tr), factors_train=f_tr, factors_test=f_te,
    )  # fmt: skip


def _shape_labels(factors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    lo, hi = DEPTH_RANGE
    closest_depth = factors["depth"][:, 0]
    dist_bin = ((closest_depth - lo) / (hi - lo) * DIST_BINS).astype(np.int64)
    dist = np.clip(dist_bin, 0, DIST_BINS - 1)
    return {
        "shape": factors["shape"][:, 0].astype(np.int64),
        "count": factors["count"].astype(np.int64) - 1,
        "dist": dist,
    }


def _sample_factors(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = MAX_OBJECTS
    count = rng.integers(1, k + 1, size=n)
    present = np.arange(k) < count[:, None]
    lo, hi = DEPTH_RANGE
    closest = rng.uniform(lo, hi, size=(n, 1))  # uniform, so the "dist" bins are balanced
    behind = np.sort(rng.uniform(size=(n, k - 1)), axis=1) * (hi - closest) + closest
    depth = np.concatenate([closest, behind], axis=1)  # slot 0 is the closest
    radius = RADIUS_AT_DEPTH_1 / depth
    centres = np.empty((n, k, 2))
    tries = 20
    for slot in range(k):  # rejection sampling, vectorised over images: first non-overlapping try
        r = radius[:, slot, None]
        cand = r[..., None] + rng.uniform(size=(n, tries, 2)) * (IMAGE_SIZE - 2 * r[..., None])
        gap2 = ((cand[:, :, None, :] - centres[:, None, :slot, :]) ** 2).sum(axis=-1)
        free = (gap2 >= (radius[:, None, :slot] + r[..., None] + 1) ** 2).all(axis=-1)
        centres[:, slot] = cand[np.arange(n), np.argmax(free, axis=1)]
    factors = {
        "count": count,
        "shape": rng.integers(0, len(SHAPES), size=(n, k)),
        "colour": rng.integers(0, len(COLOURS), size=(n, k)),
        "depth": depth,
        "radius": radius,
        "x": centres[..., 0],
        "y": centres[..., 1],
    }
    for key, value in factors.items():
        if key != "count":
            factors[key] = np.where(present, value, -1 if value.dtype.kind == "i" else np.nan)
    return factors


def _signed_distance(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance (pixels, < 0 inside) to a shape of radius r centred at 0."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == 0:  # circle
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == 1:  # square with the circle's area
        return np.maximum(ax, ay) - 0.886 * r
    if shape == 2:  # upward equilateral triangle with circumradius 1.2 r
        big = 1.2 * r
        return np.maximum(dy - big / 2, 0.866 * ax - dy / 2 - big / 2)
    if shape == 3:  # diamond with half-diagonal 1.2 r
        return (ax + ay - 1.2 * r) / np.sqrt(2.0)
    bar = r / 3  # cross: union of two bars
    return np.minimum(np.maximum(ax - r, ay - bar), np.maximum(ax - bar, ay - r))


def _render_shapes(n: int, rng: np.random.Generator, chunk: int = 4096) -> tuple:
    """Paint the objects farthest first, each in a WINDOW x WINDOW patch around its centre."""
    factors = _sample_factors(n, rng)
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    jitter = rng.uniform(-0.1, 0.1, (n, MAX_OBJECTS, 3)).astype(np.float32)
    colour_rgb = np.clip(palette[np.maximum(factors["colour"], 0)] + jitter, 0, 1)
    background = rng.uniform(0.1, 0.4, size=(n, 1, 1, 1)).astype(np.float32)
    noise_rng = np.random.default_rng(rng.integers(2**62))
    offsets = np.arange(WINDOW)
    size, pad = IMAGE_SIZE, WINDOW // 2 + 1  # the padding keeps every window inside the canvas
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, chunk):  # chunks bound the memory of the float canvas
        stop = min(start + chunk, n)
        canvas = np.empty((stop - start, size + 2 * pad, size + 2 * pad, 3), dtype=np.float32)
        canvas[:] = background[start:stop]
        windows = sliding_window_view(canvas, (WINDOW, WINDOW), axis=(1, 2), writeable=True)
        for slot in reversed(range(MAX_OBJECTS)):  # painter's order: farthest first
            rows = np.flatnonzero(factors["count"][start:stop] > slot)
            g = rows + start
            cx, cy = factors["x"][g, slot], factors["y"][g, slot]
            x0 = np.rint(cx).astype(np.int64) - WINDOW // 2
            y0 = np.rint(cy).astype(np.int64) - WINDOW // 2
            dx = x0[:, None, None] + offsets[None, None, :] + 0.5 - cx[:, None, None]
            dy = y0[:, None, None] + offsets[None, :, None] + 0.5 - cy[:, None, None]
            r = factors["radius"][g, slot, None, None]
            shape = factors["shape"][g, slot]
            alpha = np.empty((len(rows), WINDOW, WINDOW), dtype=np.float32)
            for s in range(len(SHAPES)):
                sel = shape == s
                sdf = _signed_distance(s, dx[sel], dy[sel], r[sel])
                alpha[sel] = np.clip(0.5 - sdf, 0.0, 1.0)
            # windows[i, y, x] is the (3, WINDOW, WINDOW) patch of image i whose corner is (y, x)
            window = windows[rows, y0 + pad, x0 + pad]
            window += alpha[:, None] * (colour_rgb[g, slot, :, None, None] - window)
            windows[rows, y0 + pad, x0 + pad] = window
        image = canvas[:, pad : pad + size, pad : pad + size]
        image += noise_rng.random(image.shape, dtype=np.float32) * 0.12 - 0.06
        images[start:stop] = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return images, factors
