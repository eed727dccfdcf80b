"""Exact multiinformation of Gaussian and Student-t distributions, and the exact bias of the
Gaussian plug-in estimator. All values in nats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special

from theory.inputs import parse_groups


def gaussian_multiinformation(R: Any, groups: Any = None) -> float:
    """Exact between-group M (nats) of a Gaussian with covariance or correlation matrix R:
    M = 1/2 (sum_g log det R_gg - log det R). groups=None: every coordinate its own variable."""
    R = np.array(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"R must be a square matrix, got shape {R.shape}")
    if not np.allclose(R, R.T, atol=1e-10 * np.abs(R).max()):
        raise ValueError("R must be symmetric")
    blocks = parse_groups(groups, R.shape[0])
    sign, logdet = np.linalg.slogdet(R)
    if sign <= 0:
        raise ValueError(
            "R is not positive definite (singular: a linearly dependent coordinate "
            "makes M infinite); drop redundant coordinates"
        )
    return float(0.5 * (sum(np.linalg.slogdet(R[np.ix_(b, b)])[1] for b in blocks) - logdet))


def t_entropy_excess(nu: float, m: int) -> float:
    """Entropy of a standard m-dim t_nu (shape I) minus its (m/2) log(nu pi) term:

    c(m) = log G(nu/2) - log G((nu+m)/2) + (nu+m)/2 [psi((nu+m)/2) - psi(nu/2)].
    """
    a, b = nu / 2.0, (nu + m) / 2.0
    return float(
        special.gammaln(a) - special.gammaln(b) + b * (special.digamma(b) - special.digamma(a))
    )


def student_t_multiinformation(R: Any, nu: float, groups: Any = None) -> float:
    """M of X ~ t_nu(0, R) (shape matrix R) over `groups`.

    H(t_nu(0, S)) in m dims = 1/2 log det S + m/2 log(nu pi) + c(m), and every block X_g is again
    t_nu(0, R_gg); the log(nu pi) terms cancel, so
    M = 1/2 (sum_g log det R_gg - log det R) + sum_g c(|g|) - c(d). nu = inf: the Gaussian.
    """
    R = np.asarray(R, dtype=np.float64)
    gaussian = gaussian_multiinformation(R, groups)
    if np.isinf(nu):
        return gaussian
    if not nu > 0:
        raise ValueError(f"degrees of freedom nu must be > 0, got {nu}")
    sizes = [len(b) for b in parse_groups(groups, R.shape[0])]
    return gaussian + sum(t_entropy_excess(nu, m) for m in sizes) - t_entropy_excess(nu, len(R))


def gaussian_plugin_bias(n: int, sizes: Sequence[int]) -> float:
    """Exact E[M_hat] - M of the plug-in Gaussian estimate M_hat = 1/2 (sum_g log det R^_gg -
    log det R^) from N Gaussian samples (sample correlation R^, mean estimated), groups of `sizes`:

    bias = 1/2 [sum_g S(d_g) - S(d)],  S(m) = sum_{i=1}^{m} psi((N - i) / 2),  d = sum_g d_g.

    Why: (N - 1) x sample covariance is Wishart(Sigma, N - 1), so E log det S^ - log det Sigma and
    E log S^_jj - log Sigma_jj do not depend on Sigma (Bartlett decomposition); the psi(N/2 - 1/2)
    terms of the diagonal cancel between the groups and the whole. Independent of R, so it holds at
    every dependence strength (about (d^2 - sum_g d_g^2) / (4N) for N >> d).
    """
    sizes = [int(s) for s in sizes]
    d = sum(sizes)
    if n <= d:
        raise ValueError(f"the Gaussian estimator needs N > d samples (N = {n}, d = {d})")

    def S(m: int) -> float:
        return float(special.digamma((n - np.arange(1, m + 1)) / 2).sum())

    return 0.5 * (sum(S(m) for m in sizes) - S(d))
