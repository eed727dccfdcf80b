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
NU_GRID = (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0, 50.0, 100.0)
# 2 N (l(nu^) - l(inf)) above this rejects the Gaussian copula: the 1% point of the
# 1/2 chi2_0 + 1/2 chi2_1 law of a likelihood ratio for a parameter on the boundary.
GAUSSIAN_LR_CRITICAL = 5.41
# Reference samples drawn from the fitted model (their spread also estimates the kNN noise).
N_REFERENCES = 4


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
    half_logdet = np.log(np.diag(L)).sum()
    d = x.shape[1]
    if np.isinf(nu):
        return float(np.mean(-0.5 * quad + 0.5 * (x ** 2).sum(axis=1)) - half_logdet), R
    joint = (special.gammaln((nu + d) / 2) - special.gammaln(nu / 2)
             - d / 2 * math.log(nu * math.pi) - (nu + d) / 2 * np.log1p(quad / nu))
    marginal = (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                - 0.5 * math.log(nu * math.pi) - (nu + 1) / 2 * np.log1p(x ** 2 / nu)).sum(axis=1)
    return float(np.mean(joint - marginal)) - half_logdet, R


def fit_copula(U: np.ndarray) -> CopulaFit:
    """The t copula with the highest pseudo-likelihood over NU_GRID and inf; the Gaussian copula
    unless 2 N (l(nu^) - l(inf)) > GAUSSIAN_LR_CRITICAL. U: (N, d) scores in (0, 1)."""
    try:
        gauss_ll, gauss_R = _copula_loglik(U, math.inf)
        fits = [(*_copula_loglik(U, nu), nu) for nu in NU_GRID]
    except np.linalg.LinAlgError:
        raise ValueError("the correlation of the normal scores is singular (a column is a "
                         "monotone function of the others, e.g. duplicated): M is infinite; drop "
                         "redundant columns") from None
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
        raise ValueError("the correlation of the normal scores is singular (linearly dependent "
                         "columns): M is infinite; drop redundant columns") from None
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


def knn_corrected(X: np.ndarray, blocks: list[np.ndarray], k: int, rng: np.random.Generator,
                  n_ref: int = N_REFERENCES) -> Corrected:
    """M = M_model + S(Z) - mean_r S(ref_r) (module docstring), in nats. X: checked (N, d) float
    array with N > d + 1; blocks: column-index arrays covering X; all randomness from rng.

    se = sqrt((1 + 1/n_ref) max(var_i(s_i) / N, var_r(S(ref_r)))): the standard error of the
    discrepancy, from the larger of two estimates of the statistic's variance: the per-row terms
    s_i (too small in high dimension, where neighbouring rows' kNN terms are correlated: 0.025
    against 0.055 measured over samples at d = 64, N = 5000) and the spread of the references
    (right in expectation, noisy with few references)."""
    n, d = X.shape
    if n <= d + 1:
        raise ValueError(f"knn_corrected needs N > d + 1 samples (N = {n}, d = {d}): the "
                         "correlation matrix is singular; add samples")
    fit = fit_copula(stats.rankdata(X, axis=0) / (n + 1))  # at most N distinct quantiles per nu
    Z = jittered_normal_scores(X, rng)
    groups = [b.tolist() for b in blocks]
    fitted = student_t_multiinformation(fit.R, fit.nu, groups)
    statistic, terms = knn_statistic(Z, blocks, k)
    references = [
        knn_statistic(jittered_normal_scores(sample_copula(fit, n, rng), rng), blocks, k)[0]
        for _ in range(n_ref)]
    value = fitted + statistic - float(np.mean(references))
    noise = max(float(np.var(terms)) / n, float(np.var(references, ddof=1)))
    # The fit's R^ is noisier, so more dependent, than the truth: M(fit) errs high by about the
    # Gaussian plug-in bias (exact for Gaussian data), and so does the data's statistic relative
    # to the references'; the model's own estimate of M is M(fit) minus that bias.
    model = fitted - gaussian_plugin_bias(n, map(len, groups))
    se = math.sqrt((1 + 1 / n_ref) * noise)
    return Corrected(value, model, value - model, se, fit)
