"""A kNN multiinformation estimate whose bias is simulated at a fitted copula model and subtracted
(method "knn_corrected"), and the goodness-of-fit evidence that `auto` decides with.

Steps, on jittered normal scores Z of X (M is unchanged by them):
1. Fit a t copula to the rank scores rank / (N + 1) by pseudo-likelihood over a grid of degrees
   of freedom nu (the Gaussian copula is nu = inf, kept unless a likelihood-ratio test rejects
   it): shape matrix R, nu.
   Its multiinformation M_model is known exactly (theory.closed_forms).
2. A kNN statistic S (below) on Z, and on n_ref samples of the fitted model of the same size,
   put through the same normal-score transform.
3. M = S(Z) - [mean_r S(ref_r) - M_model] = M_model + D, D = S(Z) - mean_r S(ref_r):
   the model's value plus the kNN evidence of what the model misses, with the kNN bias at this
   (N, d, R, nu) cancelled. If the model is right, D is 0 up to noise; a significant D is evidence
   against it.

The statistic: with R^ the sample correlation of Z, W = whiten(Z) and W_g = whiten(Z_g),
    S = 1/2 (sum_g log det R^_gg - log det R^) + sum_g H_KL(W_g) - H_KL(W),
the Gaussian part plus the joint negentropy minus the blocks' negentropies (negentropy
J(Y) = H(Gaussian with Y's covariance) - H(Y) is invariant under invertible linear maps, so it is
estimated on whitened data, where kNN balls are round; M = M_gauss + J(Z) - sum_g J(Z_g) exactly).
H_KL is the Kozachenko-Leonenko entropy; a one-column block of normal scores is exactly N(0, 1),
H = 1/2 log(2 pi e). Heavy tails bias H_KL in high dimension differently from Gaussian data; the
t references carry the same bias, which is why the model family includes t copulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from theory.closed_forms import (
    gaussian_multiinformation,
    gaussian_plugin_bias,
    student_t_multiinformation,
)
from theory.knn import GAUSS_ENTROPY, kl_entropy_terms
from theory.scores import jittered_normal_scores

# Degrees of freedom tried for the t copula (inf, the Gaussian copula, is always tried).
NU_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0, 50.0, 100.0)
# Fixed-point steps of the t shape matrix per nu (from the correlation of the t scores).
SHAPE_ITERATIONS = 3
# 2 N (l(nu^) - l(inf)) above this rejects the Gaussian copula: the 1% point of the
# 1/2 chi2_0 + 1/2 chi2_1 law of a likelihood ratio for a parameter on the boundary.
GAUSSIAN_LR_CRITICAL = 5.41
# Reference samples drawn from the fitted model (their spread also estimates the kNN noise): at
# least MIN_REFERENCES, more for small N, up to about REFERENCE_ROWS simulated rows in all (the
# spread of 4 references is a 3-degree-of-freedom variance; at N = 8 it let a kNN correction of
# +3.1 nats pass as +3 se).
MIN_REFERENCES = 4
MAX_REFERENCES = 32
REFERENCE_ROWS = 20000


@dataclass(frozen=True)
class CopulaFit:
    """A t copula (nu = inf: Gaussian) fitted by pseudo-likelihood; lr = 2 N (l(nu^) - l(inf))."""

    nu: float
    R: np.ndarray
    lr: float


@dataclass(frozen=True)
class Corrected:
    """value = model + discrepancy. model: M of the fitted copula minus the Gaussian plug-in bias
    (so that it estimates M when the model holds); discrepancy: the kNN correction, 0 up to noise
    when the model holds; se: its standard error (kNN noise)."""

    value: float
    model: float
    discrepancy: float
    se: float
    fit: CopulaFit
    references: int


def n_references(n: int) -> int:
    """References for N rows: REFERENCE_ROWS / N clipped to [MIN_REFERENCES, MAX_REFERENCES]."""
    return int(np.clip(round(REFERENCE_ROWS / n), MIN_REFERENCES, MAX_REFERENCES))


def _copula_loglik(U: np.ndarray, nu: float) -> tuple[float, np.ndarray]:
    """Mean pseudo-log-likelihood of a t_nu copula (nu = inf: Gaussian) at uniform scores U, and
    the shape matrix used: R = sample correlation of x = F_nu^-1(U);
    l = < log t_nu,d(x_i; R) - sum_j log t_nu,1(x_ij) >."""
    values, inverse = np.unique(U, return_inverse=True)  # quantiles of distinct values only
    q = special.ndtri(values) if np.isinf(nu) else stats.t.ppf(values, nu)
    x = q[inverse.reshape(U.shape)]
    R = np.corrcoef(x, rowvar=False)
    L = np.linalg.cholesky(R)
    quad = (np.linalg.solve(L, x.T) ** 2).sum(axis=0)
    for _ in range(0 if np.isinf(nu) else SHAPE_ITERATIONS):
        # fixed point of the t likelihood in the shape: R ~ <w x x^T>, w = (nu + d)/(nu + q),
        # normalised to a correlation (the sample correlation of t scores with nu <= 2 is
        # dominated by a few rows: it made the fit choose nu = 2.5 for data with nu = 2)
        w = (nu + x.shape[1]) / (nu + quad)
        S = (x * w[:, None]).T @ x
        s = np.sqrt(np.diag(S))
        R = S / np.outer(s, s)
        L = np.linalg.cholesky(R)
        quad = (np.linalg.solve(L, x.T) ** 2).sum(axis=0)
    half_logdet = np.log(np.diag(L)).sum()
    d = x.shape[1]
    if np.isinf(nu):
        return float(np.mean(-0.5 * quad + 0.5 * (x**2).sum(axis=1)) - half_logdet), R
    joint = (
        special.gammaln((nu + d) / 2)
        - special.gammaln(nu / 2)
        - d / 2 * math.log(nu * math.pi)
        - (nu + d) / 2 * np.log1p(quad / nu)
    )
    marginal = (
        special.gammaln((nu + 1) / 2)
        - special.gammaln(nu / 2)
        - 0.5 * math.log(nu * math.pi)
        - (nu + 1) / 2 * np.log1p(x**2 / nu)
    ).sum(axis=1)
    return float(np.mean(joint - marginal)) - half_logdet, R


def fit_copula(U: np.ndarray) -> CopulaFit:
    """The t copula with the highest pseudo-likelihood over NU_GRID and inf; the Gaussian copula
    unless 2 N (l(nu^) - l(inf)) > GAUSSIAN_LR_CRITICAL. U: (N, d) scores in (0, 1)."""
    try:
        gauss_ll, gauss_R = _copula_loglik(U, math.inf)
        fits = [(*_copula_loglik(U, nu), nu) for nu in NU_GRID]
    except np.linalg.LinAlgError:
        raise ValueError(
            "the correlation of the normal scores is singular (a column is a "
            "monotone function of the others, e.g. duplicated): M is infinite; drop "
            "redundant columns"
        ) from None
    best_ll, best_R, best_nu = max(fits, key=lambda f: f[0])
    lr = 2 * len(U) * (best_ll - gauss_ll)
    if lr > GAUSSIAN_LR_CRITICAL:
        return CopulaFit(best_nu, best_R, lr)
    return CopulaFit(math.inf, gauss_R, lr)


def _whiten(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, R): W = (Z - mean) / sd times L^-T, R = L L^T the sample correlation of Z."""
    R = np.corrcoef(Z, rowvar=False)
    try:
        L = np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the correlation of the normal scores is singular (linearly dependent "
            "columns): M is infinite; drop redundant columns"
        ) from None
    return np.linalg.solve(L, ((Z - Z.mean(axis=0)) / Z.std(axis=0)).T).T, R


def knn_statistic(Z: np.ndarray, blocks: list[np.ndarray], k: int) -> tuple[float, np.ndarray]:
    """S (module docstring) on normal scores Z, and its per-row terms (mean of the kNN part plus
    the Gaussian part): S = 1/2 (sum_g log det R^_gg - log det R^) + sum_g H_KL(W_g) - H_KL(W)."""
    W, R = _whiten(Z)
    terms = -kl_entropy_terms(W, k)
    for b in blocks:
        terms = terms + (GAUSS_ENTROPY if len(b) == 1 else kl_entropy_terms(_whiten(Z[:, b])[0], k))
    gaussian = gaussian_multiinformation(R, [b.tolist() for b in blocks])
    return gaussian + float(np.mean(terms)), terms


def sample_copula(fit: CopulaFit, n: int, rng: np.random.Generator) -> np.ndarray:
    """n rows of t_nu(0, R) (nu = inf: N(0, R)): X = G / sqrt(W / nu), G ~ N(0, R), W ~ chi2(nu)."""
    G = rng.standard_normal((n, len(fit.R))) @ np.linalg.cholesky(fit.R).T
    return G if np.isinf(fit.nu) else G / np.sqrt(rng.chisquare(fit.nu, n) / fit.nu)[:, None]


def knn_corrected(
    X: np.ndarray,
    blocks: list[np.ndarray],
    k: int,
    rng: np.random.Generator,
    n_ref: int | None = None,
) -> Corrected:
    """M = M_model + S(Z) - mean_r S(ref_r) (module docstring), in nats. X: checked (N, d) float
    array with N > d + 1; blocks: column-index arrays covering X; all randomness from rng.

    se = sqrt((1 + 1/n_ref) max(var_i(s_i) / N, var_r(S(ref_r)))): the standard error of the
    discrepancy, from the larger of two estimates of the statistic's variance: the per-row terms
    s_i (too small in high dimension, where neighbouring rows' kNN terms are correlated: 0.025
    against 0.055 measured over samples at d = 64, N = 5000) and the spread of the references
    (right in expectation, noisy with few references)."""
    n, d = X.shape
    n_ref = n_references(n) if n_ref is None else n_ref
    if n <= d + 1:
        raise ValueError(
            f"knn_corrected needs N > d + 1 samples (N = {n}, d = {d}): the "
            "correlation matrix is singular; add samples"
        )
    fit = fit_copula(stats.rankdata(X, axis=0) / (n + 1))  # at most N distinct quantiles per nu
    Z = jittered_normal_scores(X, rng)
    groups = [b.tolist() for b in blocks]
    fitted = student_t_multiinformation(fit.R, fit.nu, groups)
    statistic, terms = knn_statistic(Z, blocks, k)
    references = [
        knn_statistic(jittered_normal_scores(sample_copula(fit, n, rng), rng), blocks, k)[0]
        for _ in range(n_ref)
    ]
    value = fitted + statistic - float(np.mean(references))
    noise = max(float(np.var(terms)) / n, float(np.var(references, ddof=1)))
    # The fit's R^ is noisier, so more dependent, than the truth: M(fit) errs high by about the
    # Gaussian plug-in bias (exact for Gaussian data), and so does the data's statistic relative
    # to the references'; the model's own estimate of M is M(fit) minus that bias.
    model = fitted - gaussian_plugin_bias(n, map(len, groups))
    se = math.sqrt((1 + 1 / n_ref) * noise)
    return Corrected(value, model, value - model, se, fit, n_ref)


# ----------------------------------------------------------------------------- cheap screen

# The screen looks at at most this many rows (a fixed, seed-independent subset): its cost stays
# O(SCREEN_ROWS d^2), below the copula's own O(N d^2 + N d log N) for N above about 10^4, and its
# power does not grow without bound on huge N (it still rejects an isotropic t, nu = 5, d = 4 at
# omnibus z = 49 and the swiss roll at 350 with 5000 rows).
SCREEN_ROWS = 5000
# Family-wise level of the screen (split between its two statistics).
SCREEN_ALPHA = 0.001


@dataclass(frozen=True)
class Screen:
    """A moment test of the Gaussian copula: z_sum (omnibus, sum of squares standardised) and
    z_max (largest |z|) against their critical values; rejected if either exceeds its own."""

    z_sum: float
    z_max: float
    sum_critical: float
    max_critical: float
    tests: int

    @property
    def rejected(self) -> bool:
        return self.z_sum > self.sum_critical or self.z_max > self.max_critical

    def __str__(self) -> str:
        return (
            f"moment screen of the whitened normal scores over {self.tests} Hermite "
            f"cross-moments: omnibus z = {self.z_sum:.1f} (critical {self.sum_critical:.1f}), "
            f"largest |z| = {self.z_max:.1f} (critical {self.max_critical:.1f})"
        )


def gaussian_copula_screen(Z: np.ndarray) -> Screen:
    """Test 'the normal scores Z are jointly Gaussian' (the Gaussian copula) in O(N d^2): whiten Z
    by its sample correlation (W = Z L^-T) and test that the cross-moments of the Hermite features
    f_1 = w and f_2 = (w^2 - 1) / sqrt 2 of the columns of W are those of independent N(0, 1)
    variables: E[f_a(W_i) f_b(W_j)] = 0 for i != j (co-skewness a = 1, b = 2; co-kurtosis
    a = b = 2), E[f_1 f_2] = 0 (skewness) and E[f_2^2] = 1 (kurtosis) within a column. Each moment
    gives a self-normalised z = mean / (sd / sqrt N) of its per-row products (whose tails are
    heavier than Gaussian, so a known-variance z would reject too often); the omnibus statistic is
    (sum z^2 - m) / sqrt(2m) and the max statistic is Bonferroni-corrected, each at
    SCREEN_ALPHA / 2. Normal scores are more evenly spread than a Gaussian sample, which makes
    both conservative (omnibus mean about -2 to -15 on Gaussian data, N = 50 to 10^4, d = 4 to
    192).

    These moments are what tail dependence (t copulas: variances that move together), curved and
    non-monotone dependence leave in whitened scores first. Structure orthogonal to them (e.g.
    y = sin(5x), whose low-order Hermite coefficients are tiny) escapes the screen."""
    n, d = Z.shape
    if n > SCREEN_ROWS:
        Z = Z[np.sort(np.random.default_rng(0).choice(n, SCREEN_ROWS, replace=False))]
        n = SCREEN_ROWS
    Zc = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    try:
        L = np.linalg.cholesky(Zc.T @ Zc / n)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the correlation of the normal scores is singular (a column is a "
            "monotone function of the others, e.g. duplicated): M is infinite; drop "
            "redundant columns"
        ) from None
    W = Zc @ np.linalg.inv(L).T
    F = np.concatenate([W, (W**2 - 1) / math.sqrt(2)], axis=1)
    target = np.zeros((2 * d, 2 * d))
    target[d:, d:] = np.eye(d)  # E[f_2(W_i)^2] = 1
    mean = F.T @ F / n
    F *= F
    var = F.T @ F / n - mean**2
    keep = np.triu(np.ones((2 * d, 2 * d), bool), k=1)
    keep[:d, :d] = False  # E[W_i W_j] = 0 holds exactly after whitening
    keep[d:, d:] |= np.eye(d, dtype=bool)
    z = (mean - target)[keep] / np.sqrt(np.maximum(var[keep], 1e-12) / n)
    m = z.size
    z_sum = float((np.sum(z**2) - m) / math.sqrt(2 * m))
    z_max = float(np.abs(z).max())
    return Screen(
        z_sum,
        z_max,
        float(stats.norm.isf(SCREEN_ALPHA / 2)),
        float(stats.norm.isf(SCREEN_ALPHA / (4 * m))),
        m,
    )
