"""Normal scores: each column mapped to N(0, 1) through its ranks. Multiinformation is invariant
under strictly increasing maps per column, so every rank-based estimator starts here.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata


def normal_scores(X: np.ndarray) -> np.ndarray:
    """Per column Phi^-1(rank / (N + 1)), ties given their average rank (deterministic).

    One argsort per column (on a transposed copy: sorting contiguous rows is several times faster
    than strided columns); columns with ties go through scipy's rankdata (average ranks)."""
    n, d = X.shape
    XT = np.ascontiguousarray(X.T)
    order = np.argsort(XT, axis=1)
    tied = (np.diff(np.take_along_axis(XT, order, axis=1), axis=1) == 0).any(axis=1)
    out = np.empty((d, n))
    np.put_along_axis(out, order, ndtri(np.arange(1, n + 1) / (n + 1))[None, :], axis=1)
    if tied.any():
        out[tied] = ndtri(rankdata(XT[tied], axis=1) / (n + 1))
    return np.ascontiguousarray(out.T)


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
