"""Tables for T-JEPA / Var-T-JEPA: bundled scikit-learn sets, a simulated mixture, Adult, MNIST-5k,
Covertype.

`load_table(cfg.data)` returns a `Table`: numeric features standardised with train statistics,
categorical features as integer codes, integer class labels, and a fixed stratified train/test split
(`split_seed`). Sources:

- breast_cancer, wine, digits (8x8 images read as a 64-feature table): shipped with scikit-learn.
- mixture: simulated here (`make_mixture`); each row carries the exact entropy of the posterior
  over its mixture component, the ground-truth ambiguity for the uncertainty evaluation.
- adult (UCI `adult.data`, 32,561 rows, and `adult.test`, 16,281 rows) and covertype (UCI
  `covtype.data.gz`, 581,012 rows): read from `path`, else from the cache (env SPARSEJEPA_CACHE,
  default ~/.cache/sparsejepa/tabular), else downloaded with `download=True` and checked against a
  pinned sha256. Adult from a folder that holds both UCI files uses their official train/test split.
- mnist: a CSV of 784 pixels (0-255) + label per row (`path`: the file or its folder, e.g. the
  5,000-digit `mnist_5k.csv.gz`); `pixel_pool` average-pools the 28x28 image to fewer features.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn import datasets as skdata
from sklearn.model_selection import train_test_split

from ..data import DatasetError, default_cache_dir
from ..data.common import sha256_of


@dataclass(frozen=True)
class Remote:
    url: str
    sha256: str
    filename: str


# adult.data / adult.test: the UCI files (the sha256 of adult.data is the PreprocessData.jl
# registry's; both equal those of the UCI copies in ../shared/data/adult). covtype.data.gz:
# scikit-learn's `fetch_covtype` mirror and sha256.
REMOTES = {
    "adult": Remote(
        "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data",
        "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
        "adult.data",
    ),
    "adult_test": Remote(
        "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.test",
        "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
        "adult.test",
    ),
    "covertype": Remote(
        "https://ndownloader.figshare.com/files/5976039",
        "614360d0257557dd1792834a85a1cdebfadc3c4f30b011d56afee7ffb5b15771",
        "covtype.data.gz",
    ),
}
ADULT_COLUMNS = (
    ("age", "num"),
    ("workclass", "cat"),
    ("fnlwgt", "num"),
    ("education", "cat"),
    ("education_num", "num"),
    ("marital_status", "cat"),
    ("occupation", "cat"),
    ("relationship", "cat"),
    ("race", "cat"),
    ("sex", "cat"),
    ("capital_gain", "num"),
    ("capital_loss", "num"),
    ("hours_per_week", "num"),
    ("native_country", "cat"),
)  # then the label column: "<=50K" or ">50K"
COVTYPE_NUMERIC = (
    "elevation",
    "aspect",
    "slope",
    "horiz_dist_hydrology",
    "vert_dist_hydrology",
    "horiz_dist_roadways",
    "hillshade_9am",
    "hillshade_noon",
    "hillshade_3pm",
    "horiz_dist_fire_points",
)  # then 4 one-hot wilderness columns, 40 one-hot soil columns, the cover type 1..7


@dataclass
class Table:
    """A split table. x_num float32 (N, Dn) standardised; x_cat int64 (N, Dc) codes in
    0..cardinalities[j]-1; y int64 in 0..num_classes-1. `ambiguity_*` (mixture only): exact
    entropy in nats of p(component | row)."""

    name: str
    x_num_train: np.ndarray
    x_num_test: np.ndarray
    x_cat_train: np.ndarray
    x_cat_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    num_classes: int
    cardinalities: list[int]
    feature_names: list[str]
    ambiguity_train: np.ndarray | None = None
    ambiguity_test: np.ndarray | None = None
    oracle_std_train: np.ndarray | None = None  # mixture: exact predictive std (make_mixture)
    oracle_std_test: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.x_num_train.shape[1] + self.x_cat_train.shape[1]

    def raw_features(self, split: str) -> np.ndarray:
        """Standardised numerics + one-hot categoricals: the raw-feature baseline input."""
        x_num = getattr(self, f"x_num_{split}")
        x_cat = getattr(self, f"x_cat_{split}")
        onehots = [
            np.eye(c, dtype=np.float32)[x_cat[:, j]] for j, c in enumerate(self.cardinalities)
        ]
        return np.concatenate([x_num, *onehots], axis=1)


REPO = Path(__file__).resolve().parents[2]


def data_path(path: str | None) -> str | None:
    """`path` as given when it exists (or is absolute or None), else relative to the repository
    root (the presets name ../shared/data/..., which holds from the project's root)."""
    if path is None or Path(path).expanduser().is_absolute() or Path(path).exists():
        return path
    rooted = REPO / path
    return str(rooted) if rooted.exists() else path


def load_table(cfg) -> Table:
    """The table named by a `TableConfig` (see the module docstring for the sources)."""
    name, path = cfg.name, data_path(cfg.path)
    truth = split = None
    if name in ("breast_cancer", "wine", "digits"):
        bunch = getattr(skdata, f"load_{name}")()
        x_num, x_cat, cards = bunch.data.astype(np.float64), None, []
        names = [str(n) for n in getattr(bunch, "feature_names", range(x_num.shape[1]))]
        y = bunch.target
    elif name == "mixture":
        mix = make_mixture(
            cfg.mixture_rows,
            cfg.mixture_components,
            cfg.mixture_dims,
            cfg.mixture_separation,
            cfg.mixture_categories,
            seed=cfg.split_seed,
        )
        x_num, x_cat, y = mix["x_num"], mix["x_cat"], mix["y"]
        truth = (mix["entropy"], mix["predictive_std"])
        cards = [cfg.mixture_categories] if cfg.mixture_categories else []
        names = [f"x{j}" for j in range(x_num.shape[1])] + ["c"] * bool(cards)
    elif name == "adult":
        train_file, test_file = adult_files(path, cfg.download)
        x_num, x_cat, cards, names, y, n_train = read_adult(train_file, test_file)
        if test_file is not None:  # the official split: adult.data trains, adult.test tests
            split = (np.arange(n_train), np.arange(n_train, len(y)))
    elif name == "covertype":
        x_num, x_cat, cards, names, y = read_covertype(locate(name, path, cfg.download))
    elif name == "mnist":
        x_num, names, y = read_mnist(mnist_file(path), cfg.pixel_pool)
        x_cat, cards = None, []
    else:
        raise DatasetError(
            f"unknown table '{name}'; choose from breast_cancer, wine, digits, "
            "mixture, adult, mnist, covertype"
        )
    if x_cat is None:
        x_cat = np.zeros((len(y), 0), dtype=np.int64)
    return split_table(name, x_num, x_cat, y, cards, names, cfg, truth, split)


def split_table(name, x_num, x_cat, y, cards, names, cfg, truth=None, split=None) -> Table:
    """Stratified split (optionally after a stratified subsample to `max_rows`), or the given
    `split` (train rows, test rows; `max_rows` then subsamples the train rows), then standardise
    the numeric columns with train mean / std (std 0 -> 1); missing numeric values (NaN) become
    the train mean, 0 after scaling. `truth`: the mixture's per-row (ambiguity, oracle std)."""
    idx = np.arange(len(y)) if split is None else split[0]
    try:
        if cfg.max_rows is not None and cfg.max_rows < len(idx):
            idx, _ = train_test_split(
                idx, train_size=cfg.max_rows, stratify=y[idx], random_state=cfg.split_seed
            )
        if split is None:
            train, test = train_test_split(
                idx, test_size=cfg.test_fraction, stratify=y[idx], random_state=cfg.split_seed
            )
        else:
            train, test = idx, split[1]
    except ValueError as err:  # too few rows of some class for a stratified split
        raise DatasetError(
            f"{name}: cannot split {len(idx)} rows stratified by class ({err}); "
            "use more rows (data.max_rows) or change data.test_fraction"
        ) from err
    if len(np.unique(y[train])) < 2:
        raise DatasetError(f"{name}: the train split holds one class only; use more rows")
    with warnings.catch_warnings():  # an all-missing column: mean 0, std 1
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nan_to_num(np.nanmean(x_num[train], 0)), np.nanstd(x_num[train], 0)
    std[~(std > 0)] = 1.0
    scaled = np.nan_to_num((x_num - mean) / std).astype(np.float32)
    classes, y_codes = np.unique(y, return_inverse=True)
    per_row = [None] * 4 if truth is None else [v[s] for v in truth for s in (train, test)]
    return Table(
        name,
        scaled[train],
        scaled[test],
        x_cat[train].astype(np.int64),
        x_cat[test].astype(np.int64),
        y_codes[train].astype(np.int64),
        y_codes[test].astype(np.int64),
        len(classes),
        list(cards),
        list(names),
        *per_row,
    )


def make_mixture(
    n: int,
    components: int,
    dims: int,
    separation: float,
    categories: int,
    seed: int = 0,
    splits: int = 16,
) -> dict[str, np.ndarray]:
    """Rows of a Gaussian mixture with one optional categorical feature, and their exact ambiguity.

    k ~ Uniform{0..K-1}; x | k ~ N(separation * q_k, I_d) with q_k orthonormal columns of a random
    rotation; c | k ~ Categorical(pi_k), pi_k = 0.5 * onehot(k mod C) + 0.5 / C. The posterior is
        log p(k | x, c) = -||x - mu_k||^2 / 2 + log pi_k[c] - logsumexp_k'(same)
    and the ambiguity of a row is its entropy H = -sum_k p(k|x,c) log p(k|x,c) (nats, <= log K).

    "predictive_std", a reference for latent predictive uncertainties: for `splits` random halves
    (context A, targets B) of the numeric features, the exact std of x_j, j in B, given x_A,
    sqrt(1 + Var_{p(k|x_A)}[mu_kj]), averaged over j and the splits.
    """
    if components < 2 or dims < components:
        raise DatasetError(f"mixture needs 2 <= components <= dims, got {components}, {dims}")
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((dims, dims)))
    means = separation * rotation[:, :components].T  # (K, d)
    y = rng.integers(components, size=n)
    x = means[y] + rng.standard_normal((n, dims))
    sq = (x[:, None, :] - means[None]) ** 2  # (n, K, d)
    log_lik = -0.5 * sq.sum(-1)  # (n, K)
    x_cat = np.zeros((n, 0), dtype=np.int64)
    if categories:
        table = np.full((components, categories), 0.5 / categories)
        table[np.arange(components), np.arange(components) % categories] += 0.5
        c = (rng.random(n)[:, None] > np.cumsum(table[y], axis=1)).sum(1)
        x_cat = c[:, None].astype(np.int64)
        log_lik = log_lik + np.log(table[:, c].T)
    log_post = log_lik - logsumexp(log_lik, axis=1, keepdims=True)
    entropy = -(np.exp(log_post) * log_post).sum(1)
    predictive_std = np.zeros(n)
    for _ in range(splits):
        perm = rng.permutation(dims)
        a, b = perm[: dims // 2], perm[dims // 2 :]
        ll = -0.5 * sq[:, :, a].sum(-1)
        post = np.exp(ll - logsumexp(ll, axis=1, keepdims=True))  # p(k | x_A), (n, K)
        spread = post @ means[:, b] ** 2 - (post @ means[:, b]) ** 2
        predictive_std += np.sqrt(1 + spread).mean(1) / splits
    return {
        "x_num": x,
        "x_cat": x_cat,
        "y": y,
        "entropy": entropy,
        "log_posterior": log_post,
        "predictive_std": predictive_std,
    }


# ----------------------------------------------------------------------------- remote tables


def cache_dir() -> Path:
    return default_cache_dir() / "tabular"


def adult_files(path: str | None, download: bool, cache: Path | None = None):
    """(adult.data, adult.test or None). `path` a folder: the UCI files in it (adult.test
    optional); `path` a file: that file alone (split 75/25 here); no path: the cache, with
    adult.test when cached (or downloaded with `download`)."""
    if path is not None and Path(path).expanduser().is_dir():
        folder = Path(path).expanduser()
        if not (folder / "adult.data").is_file():
            raise DatasetError(
                f"adult: {folder} holds no adult.data; point data.path at the folder with the "
                f"UCI files adult.data and adult.test ({REMOTES['adult'].url})"
            )
        test = folder / "adult.test"
        return folder / "adult.data", test if test.is_file() else None
    train = locate("adult", path, download, cache)
    if path is not None:
        return train, None
    test = (cache or cache_dir()) / REMOTES["adult_test"].filename
    if test.is_file() or download:
        return train, locate("adult_test", None, download, cache)
    return train, None


def mnist_file(path: str | None) -> Path:
    """The MNIST CSV: `path` itself, or the one `*.csv`/`*.csv.gz` file in the folder `path`."""
    hint = (
        "set data.path to a CSV of 784 pixels + label per row, e.g. "
        "../shared/data/mnist5k/mnist_5k.csv.gz (or its folder)"
    )
    if path is None:
        raise DatasetError(f"mnist: no data.path; {hint}")
    file = Path(path).expanduser()
    if file.is_dir():
        found = sorted([*file.glob("*.csv"), *file.glob("*.csv.gz")])
        if len(found) != 1:
            raise DatasetError(
                f"mnist: {file} holds {len(found)} CSV files, need exactly one; {hint}"
            )
        file = found[0]
    if not file.is_file():
        raise DatasetError(f"mnist: data.path {file} does not exist; {hint}")
    return file


def locate(name: str, path: str | None, download: bool, cache: Path | None = None) -> Path:
    """The file of a remote table: `path` if given (must exist), else the cache (its sha256 is
    checked), else a download into the cache when `download`, else a DatasetError saying how."""
    remote = REMOTES[name]
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DatasetError(
                f"{name}: data.path {file} does not exist; point it at "
                f"{remote.filename} (from {remote.url})"
            )
        return file
    cache = cache or cache_dir()
    cached = cache / remote.filename
    if cached.is_file():
        actual = sha256_of(cached)
        if actual != remote.sha256:
            raise DatasetError(
                f"{name}: cached {cached} has sha256 {actual}, expected {remote.sha256}; delete it "
                "and load again with data.download=true, or give your own copy with data.path"
            )
        return cached
    if download:
        return fetch(remote, cache)
    raise DatasetError(
        f"{name}: not in the cache ({cached}). Fix: --set data.download=true on a machine with a "
        f"network (fetches {remote.url}), or download it by hand and --set data.path=FILE"
    )


def fetch(remote: Remote, cache: Path) -> Path:
    """Download `remote` into `cache` via a .part file; keep it only if the sha256 matches."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / remote.filename
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(remote.url, timeout=60) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {remote.url} failed ({err}). Offline? Copy {remote.filename} from a "
            f"machine with a network into {cache}, or --set data.path=FILE"
        ) from err
    actual = sha256_of(part)
    if actual != remote.sha256:
        part.unlink()
        raise DatasetError(
            f"checksum mismatch for {remote.url}: sha256 {actual}, expected "
            f"{remote.sha256}; the download is corrupt or the file changed upstream"
        )
    os.replace(part, target)
    return target


def _read_text(file: Path) -> str:
    try:
        raw = file.read_bytes()
        return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise DatasetError(f"{file}: unreadable ({type(err).__name__}: {err})") from err


def _adult_rows(file: Path) -> np.ndarray:
    """The rows of a UCI adult file as strings (N, 15): lines starting with '|' (adult.test's
    first line) and blank lines skipped, fields stripped, the label's trailing period dropped."""
    rows = [
        [v.strip() for v in line.split(",")]
        for line in _read_text(file).splitlines()
        if line.strip() and not line.startswith("|")
    ]
    width = len(ADULT_COLUMNS) + 1
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if not rows or bad is not None:
        where = "no data rows" if not rows else f"data row {bad + 1} has {len(rows[bad])} fields"
        raise DatasetError(f"{file}: not the UCI adult format ({where}; expected {width})")
    table = np.array(rows, dtype=object)
    table[:, -1] = [v.rstrip(".") for v in table[:, -1]]
    if not set(table[:, -1]) <= {"<=50K", ">50K"}:
        raise DatasetError(
            f"{file}: labels must be '<=50K' or '>50K' (adult.test: with a "
            f"trailing period), got {sorted(set(table[:, -1]))[:5]}"
        )
    return table


def read_adult(file: Path, test_file: Path | None = None):
    """UCI adult.data (and adult.test, appended): 14 comma-separated fields and the label.
    A missing value '?' is its own category in a categorical column and NaN (imputed with the
    train mean by `split_table`) in a numeric one; categories are coded over both files.
    -> x_num, x_cat, cardinalities, names, y, number of rows from `file`."""
    parts = [_adult_rows(f) for f in (file, test_file) if f is not None]
    table = np.concatenate(parts)
    num_cols = [j for j, (_, kind) in enumerate(ADULT_COLUMNS) if kind == "num"]
    cat_cols = [j for j, (_, kind) in enumerate(ADULT_COLUMNS) if kind == "cat"]
    numeric = table[:, num_cols]
    numeric[numeric == "?"] = "nan"
    try:
        x_num = numeric.astype(np.float64)
    except ValueError as err:
        raise DatasetError(f"{file}: a numeric adult column holds text ({err})") from err
    codes = [np.unique(table[:, j].astype(str), return_inverse=True) for j in cat_cols]
    x_cat = np.stack([c for _, c in codes], axis=1)
    names = [ADULT_COLUMNS[j][0] for j in num_cols + cat_cols]
    y = (table[:, -1] == ">50K").astype(np.int64)
    return x_num, x_cat, [len(u) for u, _ in codes], names, y, len(parts[0])


def read_mnist(file: Path, pool: int = 1):
    """MNIST as a table: rows of 784 pixel values (0-255, row-major 28x28) and the label 0-9, no
    header; `pool` > 1 averages pool x pool pixel blocks (28 / pool squared features).
    -> x_num (N, (28 / pool)^2), feature names, y."""
    if pool < 1 or 28 % pool:
        raise DatasetError(f"mnist: data.pixel_pool must divide 28 (1, 2, 4, 7, 14), got {pool}")
    try:
        data = np.loadtxt(io.StringIO(_read_text(file)), delimiter=",", ndmin=2)
    except ValueError as err:
        raise DatasetError(f"{file}: not an MNIST CSV of numbers ({err})") from err
    if data.shape[1] != 785:
        raise DatasetError(
            f"{file}: expected 785 columns (784 pixels + label), got {data.shape[1]}"
        )
    pixels, y = data[:, :784], data[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(
            f"{file}: pixel values must lie in 0..255, got {pixels.min()}..{pixels.max()}"
        )
    if not np.isin(y, np.arange(10)).all():
        raise DatasetError(f"{file}: labels (last column) must be integers 0..9")
    side = 28 // pool
    x = pixels.reshape(-1, side, pool, side, pool).mean((2, 4)).reshape(len(y), -1)
    names = [f"px{r}_{c}" for r in range(side) for c in range(side)]
    return x, names, y.astype(np.int64)


def read_covertype(file: Path):
    """UCI covtype.data(.gz): 10 numeric columns, 4 + 40 one-hot columns read back as two
    categorical features (wilderness area, soil type), the cover type 1..7."""
    try:
        data = np.loadtxt(io.StringIO(_read_text(file)), delimiter=",", ndmin=2)
    except ValueError as err:
        raise DatasetError(f"{file}: not the UCI covtype format ({err})") from err
    if data.shape[1] != 55:
        raise DatasetError(f"{file}: expected 55 columns per row, got {data.shape[1]}")
    wild, soil = data[:, 10:14], data[:, 14:54]
    if not ((wild.sum(1) == 1).all() and (soil.sum(1) == 1).all()):
        raise DatasetError(f"{file}: wilderness (cols 11-14) and soil (15-54) must be one-hot")
    x_cat = np.stack([wild.argmax(1), soil.argmax(1)], axis=1)
    names = [*COVTYPE_NUMERIC, "wilderness", "soil"]
    return data[:, :10], x_cat, [4, 40], names, data[:, 54].astype(np.int64)
