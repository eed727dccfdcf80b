"""Normal scores: each column mapped to N(0, 1) through its ranks. Multiinformation is invariant
under strictly increasing maps per column, so every rank-based estimator starts here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata


def rank_codes(X: np.ndarray) -> np.ndarray:
    """Per column c = 2 r - 2 (int32), r the rank 1..N with ties given their average rank, so c is
    an integer in 0..2N-2 and the uniform score r / (N + 1) of any entry is (c / 2 + 1) / (N + 1):
    scores through any quantile function cost 2N - 1 evaluations and one gather (quantile_scores).

    One argsort per column (on a transposed copy: sorting contiguous rows is several times faster
    than strided columns); columns with ties go through scipy's rankdata (average ranks)."""
    n, d = X.shape
    XT = np.ascontiguousarray(X.T)
    order = np.argsort(XT, axis=1)
    tied = (np.diff(np.take_along_axis(XT, order, axis=1), axis=1) == 0).any(axis=1)
    out = np.empty((d, n), np.int32)
    np.put_along_axis(out, order, np.arange(0, 2 * n, 2, dtype=np.int32)[None, :], axis=1)
    if tied.any():
        out[tied] = (2 * rankdata(XT[tied], axis=1) - 2).astype(np.int32)
    return np.ascontiguousarray(out.T)


def quantile_scores(
    codes: np.ndarray, n: int, ppf: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """ppf(r / (N + 1)) for rank codes (rank_codes) among N rows (codes may hold a subset of the
    rows or columns): ppf on the 2N - 1 possible values, then a gather."""
    return ppf((np.arange(2 * n - 1) / 2 + 1) / (n + 1))[codes]


def normal_scores(X: np.ndarray) -> np.ndarray:
    """Per column Phi^-1(rank / (N + 1)), ties given their average rank (deterministic)."""
    return quantile_scores(rank_codes(X), len(X), ndtri)


def jittered_normal_scores(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per column z = Phi^-1((r + u) / N): r the rank 0..N-1, ties broken at random, u ~ U(0, 1).

    Strictly increasing in the data up to the random order of tied values, and without ties. For a
    column with ties (discrete or mixed values) z is a bijection of (x, the tie-breaking noise),
    and the noise is independent of everything, so M is unchanged exactly.
    """
    n, d = X.shape
    Z = np.empty((n, d))
    for c in range(d):
        order = np.lexsort((rng.random(n), X[:, c]))
        ranks = np.empty(n)
        ranks[order] = np.arange(n)
        Z[:, c] = ndtri((ranks + rng.random(n)) / n)
    return Z
