"""The estimators that need no neighbour search: gaussian and copula (the closed form on a sample
correlation, bias-corrected), binned (plug-in entropies of a histogram), and the rule that tells
discrete columns from continuous ones.
"""

from __future__ import annotations

import numpy as np

from theory.closed_forms import gaussian_multiinformation, gaussian_plugin_bias
from theory.scores import normal_scores

# A column is discrete when it has at most min(DISCRETE_MAX_VALUES, N / DISCRETE_MIN_COUNT)
# distinct values: few values, each seen DISCRETE_MIN_COUNT times on average.
DISCRETE_MAX_VALUES = 32
DISCRETE_MIN_COUNT = 3
# binned refuses when more than this fraction of the N rows fall into distinct joint cells.
BINNED_MAX_CELLS = 0.5


def gaussian(X: np.ndarray, blocks: list[np.ndarray]) -> float:
    """M of a Gaussian fitted to X, bias-corrected: the closed form on the sample correlation R^,
    1/2 (sum_g log det R^_gg - log det R^), minus its exact expected bias for Gaussian data
    (theory.closed_forms.gaussian_plugin_bias, about (d^2 - sum_g d_g^2) / (4N))."""
    n, d = X.shape
    if n <= d:
        raise ValueError(
            f"gaussian/copula need more samples than columns (N = {n}, d = {d}): the "
            "sample correlation is singular; add samples or use method='neural'"
        )
    R = np.corrcoef(X, rowvar=False)
    if np.linalg.eigvalsh(R)[0] < 1e-12:
        raise ValueError(
            "the sample correlation is singular (linearly dependent columns, e.g. a "
            "duplicated column): the Gaussian M is infinite; drop redundant columns "
            "or use method='ksg'"
        )
    groups = [b.tolist() for b in blocks]
    return gaussian_multiinformation(R, groups) - gaussian_plugin_bias(n, map(len, groups))


def copula(X: np.ndarray, blocks: list[np.ndarray]) -> float:
    """Gaussian-copula M: `gaussian` on normal scores (invariant to monotone maps per column)."""
    return gaussian(normal_scores(X), blocks)


# ----------------------------------------------------------------------------- discrete data


def discrete_columns(X: np.ndarray) -> np.ndarray:
    """Boolean per column: at most min(DISCRETE_MAX_VALUES, N / DISCRETE_MIN_COUNT) distinct values.

    The bound is relative to N, so a small sample of continuous data (N distinct values) is never
    taken for discrete. Integer-valued columns with more distinct values than that (counts, pixel
    intensities) are treated as continuous: the kNN methods break their ties with seeded noise,
    which leaves M unchanged (theory.scores.jittered_normal_scores)."""
    n = X.shape[0]
    limit = min(DISCRETE_MAX_VALUES, n / DISCRETE_MIN_COUNT)
    # a column with more than `limit` distinct values in its first rows has more in all of them:
    # continuous columns are settled by one small sort (np.unique on every column of a 10^4 x 192
    # matrix cost as much as the copula estimate itself)
    head = np.sort(X[: 4 * DISCRETE_MAX_VALUES], axis=0)
    maybe = 1 + (np.diff(head, axis=0) != 0).sum(axis=0) <= limit
    return np.array(
        [bool(maybe[c]) and len(np.unique(X[:, c])) <= limit for c in range(X.shape[1])]
    )


def bins_per_column(n: int, d: int) -> int:
    """Equal-frequency bins per continuous column: floor((N / 10)^(1/d)), clipped to [2, 32], so the
    joint histogram has about 10 samples per cell at most."""
    return int(np.clip(np.floor((n / 10) ** (1 / d)), 2, 32))


def _discretise(X: np.ndarray) -> np.ndarray:
    """Integer codes per column: discrete columns (discrete_columns) keep their values as
    categories; others are cut into bins_per_column(N, d) equal-frequency bins."""
    from scipy.stats import rankdata

    n, d = X.shape
    bins = bins_per_column(n, d)
    discrete = discrete_columns(X)
    codes = np.empty(X.shape, dtype=np.int64)
    for c in range(d):
        if discrete[c]:
            codes[:, c] = np.unique(X[:, c], return_inverse=True)[1].ravel()
        else:
            codes[:, c] = np.minimum((rankdata(X[:, c], method="min") - 1) * bins // n, bins - 1)
    return codes


def _entropy_miller_madow(codes: np.ndarray) -> float:
    """Plug-in entropy of the rows of `codes` plus the Miller-Madow term (m - 1) / (2N), m the
    number of occupied cells."""
    _, counts = np.unique(codes, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() + (len(counts) - 1) / (2 * counts.sum()))


def binned(X: np.ndarray, blocks: list[np.ndarray]) -> float:
    """M = sum_g H_MM(g) - H_MM(joint) on discretised data (see _discretise). Refused when the
    joint histogram has more than BINNED_MAX_CELLS x N occupied cells: most cells then hold one
    sample, the plug-in joint entropy saturates near log N and M is meaningless."""
    codes = _discretise(X)
    n = len(codes)
    cells = len(np.unique(codes, axis=0))
    if cells > BINNED_MAX_CELLS * n:
        raise ValueError(
            f"binned: {cells} occupied joint cells for N = {n} samples (more than "
            f"{BINNED_MAX_CELLS:g} N), so the plug-in entropies are meaningless; add samples, "
            "group the columns, or for continuous data use method='auto'"
        )
    return sum(_entropy_miller_madow(codes[:, b]) for b in blocks) - _entropy_miller_madow(codes)
