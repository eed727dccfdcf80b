"""Tables for T-JEPA / Var-T-JEPA: bundled scikit-learn sets, a simulated mixture, Adult, MNIST-5k,
Covertype.

`load_table(cfg.data)` returns a `Table`: numeric features standardised with train statistics,
categorical features as integer codes, integer class labels, and a fixed stratified train/test split
(`split_seed`). Sources:

- breast_cancer, wine, digits (8x8 images read as a 64-feature table): shipped with scikit-learn.
- mixture: simulated here (`make_mixture`); each row carries the exact entropy of the posterior
  over its mixture component, the ground-truth ambiguity for the uncertainty evaluation.
- adult (UCI, official split when both files are given), covertype (UCI) and mnist (a CSV of
  784 pixels + label per row, e.g. the 5,000-digit `mnist_5k.csv.gz`; `pixel_pool` average-pools
  the 28x28 image to fewer features): their files are found, downloaded, checked and parsed in
  `files.py`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn import datasets as skdata
from sklearn.model_selection import train_test_split

from ..data import DatasetError
from .files import adult_files, locate, mnist_file, read_adult, read_covertype, read_mnist


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
