"""The real tables' files: where they are found, downloaded and checked, and how they are parsed.

- adult (UCI `adult.data`, 32,561 rows, and `adult.test`, 16,281 rows) and covertype (UCI
  `covtype.data.gz`, 581,012 rows): read from `path`, else from the cache (env SPARSEJEPA_CACHE,
  default ~/.cache/sparsejepa/tabular), else downloaded with `download=True` and checked against a
  pinned sha256. A folder that holds both UCI Adult files gives their official train/test split.
- mnist: a CSV of 784 pixels (0-255) + label per row (the file or its folder).

Every problem (missing file, bad checksum, malformed rows) is a `DatasetError` saying what to do.
`data.load_table` turns the parsed arrays into a split, standardised `Table`.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
