"""A kNN multiinformation estimate whose bias is simulated at a fitted copula model and subtracted
(method "knn_corrected"), and the goodness-of-fit evidence that `auto` decides with.

Steps, on jittered normal scores Z of X (M is unchanged by them):
1. Fit a t copula to the rank scores rank / (N + 1) by pseudo-likelihood over a grid of degrees
   of freedom nu (the Gaussian copula is nu = inf, kept unless a likelihood-ratio test rejects
   it): shape matrix R, nu.
   Its multiinformation M_model is known exactly (theory.closed_forms).
2. A kNN statistic S (below) on Z, and on n_ref samples of the fitted model of the same size,
   put through the same normal-score transform (on a random subset of check_rows(N, d) rows
   when N^2 d is large: the kNN bias of the subset's size then cancels).
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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from theory.closed_forms import (
    gaussian_multiinformation,
    gaussian_plugin_bias,
    student_t_multiinformation,
)
from theory.knn import GAUSS_ENTROPY, kl_entropy_terms
from theory.scores import jittered_normal_scores, quantile_scores, rank_codes

# Degrees of freedom tried for the t copula (inf, the Gaussian copula, is always tried).
NU_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0, 50.0, 100.0)
# Fixed-point steps of the t shape matrix per nu (from the correlation of the t scores).
SHAPE_ITERATIONS = 3
# 2 N (l(nu^) - l(inf)) above this rejects the Gaussian copula: the 1% point of the
# 1/2 chi2_0 + 1/2 chi2_1 law of a likelihood ratio for a parameter on the boundary.
GAUSSIAN_LR_CRITICAL = 5.41
# nu (and the likelihood-ratio test) is decided on at most FIT_ROWS rows and FIT_COLUMNS columns,
# a random subset from the caller's generator: any columns of a t copula form a t copula with the
# same nu, and one number needs neither 5 x 10^4 rows nor 768 columns (17 likelihoods with 3 shape
# steps each, O(N d^2) apiece, took minutes there). The shape R of the chosen nu is then fitted on
# every row and column, once: the fit's M needs all of R at full precision.
FIT_ROWS = 5000
FIT_COLUMNS = 64
# Reference samples drawn from the fitted model (their spread also estimates the kNN noise): at
# least MIN_REFERENCES, more where references are cheap, up to about REFERENCE_ROWS simulated rows
# and REFERENCE_WORK of kNN work (d rows^2 each) in all (the spread of 4 references is a
# 3-degree-of-freedom variance; at N = 8 it let a kNN correction of +3.1 nats pass as +3 se).
MIN_REFERENCES = 4
MAX_REFERENCES = 32
REFERENCE_ROWS = 20000
# The kNN check (the statistic on the data and on the references) runs on at most check_rows(N, d)
# rows, a random subset: brute-force kNN costs about d rows^2, and CHECK_WORK is that of N = 5000
# at d = 64 (every N = 5000 task up to d = 64 is checked on all rows, as before). N = 5 x 10^4 at
# d = 768 would cost 4 x 10^3 times that per statistic (one statistic on 1536 rows there: 1.9
# CPU-seconds). At least CHECK_ROWS_PER_COLUMN x d rows, so that the data can be whitened.
CHECK_WORK = 64 * 5000**2
CHECK_ROWS_PER_COLUMN = 2
REFERENCE_WORK = 4 * CHECK_WORK


@dataclass(frozen=True)
class CopulaFit:
    """A t copula (nu = inf: Gaussian) fitted by pseudo-likelihood; lr = 2 n (l(nu^) - l(inf)) on
    the rows x columns that nu was chosen on (R: on every row and column)."""

    nu: float
    R: np.ndarray
    lr: float
    rows: int
    columns: int


@dataclass(frozen=True)
class Corrected:
    """value = model + discrepancy. model: M of the fitted copula minus the Gaussian plug-in bias
    (so that it estimates M when the model holds); discrepancy: the kNN correction, 0 up to noise
    when the model holds; se: its standard error (kNN noise); rows: the rows of the kNN check
    (N unless check_rows subsampled them)."""

    value: float
    model: float
    discrepancy: float
    se: float
    fit: CopulaFit
    references: int
    rows: int


def n_references(n: int, d: int) -> int:
    """References for n rows of d columns: min(REFERENCE_ROWS / n, REFERENCE_WORK / (d n^2)),
    clipped to [MIN_REFERENCES, MAX_REFERENCES]."""
    cheap = min(REFERENCE_ROWS / n, REFERENCE_WORK / (d * n**2))
    return int(np.clip(round(cheap), MIN_REFERENCES, MAX_REFERENCES))


def check_rows(n: int, d: int) -> int:
    """Rows of the kNN check: min(N, max(sqrt(CHECK_WORK / d), CHECK_ROWS_PER_COLUMN d))."""
    return min(n, max(math.isqrt(CHECK_WORK // d), CHECK_ROWS_PER_COLUMN * d))


def random_subset(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `size` of range(n) drawn from rng; all of them (no draw) if n <= size."""
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))


def _ppf(nu: float) -> Callable[[np.ndarray], np.ndarray]:
    """The quantile function of t_nu (nu = inf: the standard normal)."""
    return special.ndtri if np.isinf(nu) else (lambda p: stats.t.ppf(p, nu))


def _shape(x: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, L, quad): the shape matrix of t_nu scores x (nu = inf: their sample correlation), its
    Cholesky factor and the rows' x^T R^-1 x (one matrix product each, not a triangular solve)."""

    def factor(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        L = np.linalg.cholesky(R)
        return L, ((x @ np.linalg.inv(L).T) ** 2).sum(axis=1)

    R = np.corrcoef(x, rowvar=False)
    L, quad = factor(R)
    for _ in range(0 if np.isinf(nu) else SHAPE_ITERATIONS):
        # fixed point of the t likelihood in the shape: R ~ <w x x^T>, w = (nu + d)/(nu + q),
        # normalised to a correlation (the sample correlation of t scores with nu <= 2 is
        # dominated by a few rows: it made the fit choose nu = 2.5 for data with nu = 2)
        w = (nu + x.shape[1]) / (nu + quad)
        S = (x * w[:, None]).T @ x
        s = np.sqrt(np.diag(S))
        R = S / np.outer(s, s)
        L, quad = factor(R)
    return R, L, quad


def _copula_loglik(x: np.ndarray, nu: float) -> tuple[float, np.ndarray]:
    """Mean pseudo-log-likelihood of a t_nu copula (nu = inf: Gaussian) at scores x = F_nu^-1(U),
    and the shape matrix used (_shape): l = < log t_nu,d(x_i; R) - sum_j log t_nu,1(x_ij) >."""
    R, L, quad = _shape(x, nu)
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


def fit_copula(codes: np.ndarray, rng: np.random.Generator) -> CopulaFit:
    """The t copula with the highest pseudo-likelihood over NU_GRID and inf at the rank scores of
    codes (theory.scores.rank_codes of N rows); the Gaussian copula unless
    2 n (l(nu^) - l(inf)) > GAUSSIAN_LR_CRITICAL. nu is chosen on at most FIT_ROWS x FIT_COLUMNS
    of the scores (drawn from rng only when there are more), R on all of them."""
    n, d = codes.shape
    rows, cols = random_subset(n, FIT_ROWS, rng), random_subset(d, FIT_COLUMNS, rng)
    sub = codes[np.ix_(rows, cols)] if len(rows) < n or len(cols) < d else codes
    try:
        gauss_ll, gauss_R = _copula_loglik(quantile_scores(sub, n, special.ndtri), math.inf)
        fits = [(*_copula_loglik(quantile_scores(sub, n, _ppf(nu)), nu), nu) for nu in NU_GRID]
        best_ll, best_R, best_nu = max(fits, key=lambda f: f[0])
        lr = 2 * len(sub) * (best_ll - gauss_ll)
        nu, R = (best_nu, best_R) if lr > GAUSSIAN_LR_CRITICAL else (math.inf, gauss_R)
        if sub is not codes:
            R = _shape(quantile_scores(codes, n, _ppf(nu)), nu)[0]
    except np.linalg.LinAlgError:
        raise ValueError(
            "the correlation of the normal scores is singular (a column is a "
            "monotone function of the others, e.g. duplicated): M is infinite; drop "
            "redundant columns"
        ) from None
    return CopulaFit(nu, R, lr, len(rows), len(cols))


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
    The fit uses every row (fit_copula); the kNN check (S on the data and on references of the
    same size) runs on m = check_rows(N, d) of them, a random subset when m < N: its kNN bias
    and noise are those of m rows, on both sides, so they still cancel, and se says how precise
    the check is at m rows.

    se = sqrt((1 + 1/n_ref) max(var_i(s_i) / m, var_r(S(ref_r)))): the standard error of the
    discrepancy, from the larger of two estimates of the statistic's variance: the per-row terms
    s_i (too small in high dimension, where neighbouring rows' kNN terms are correlated: 0.025
    against 0.055 measured over samples at d = 64, N = 5000) and the spread of the references
    (right in expectation, noisy with few references)."""
    n, d = X.shape
    if n <= d + 1:
        raise ValueError(
            f"knn_corrected needs N > d + 1 samples (N = {n}, d = {d}): the "
            "correlation matrix is singular; add samples"
        )
    fit = fit_copula(rank_codes(X), rng)
    rows = random_subset(n, check_rows(n, d), rng)
    m = len(rows)
    n_ref = n_references(m, d) if n_ref is None else n_ref
    Z = jittered_normal_scores(X if m == n else X[rows], rng)
    groups = [b.tolist() for b in blocks]
    fitted = student_t_multiinformation(fit.R, fit.nu, groups)
    statistic, terms = knn_statistic(Z, blocks, k)
    references = [
        knn_statistic(jittered_normal_scores(sample_copula(fit, m, rng), rng), blocks, k)[0]
        for _ in range(n_ref)
    ]
    # the data's and the references' statistics share the kNN bias and the Gaussian plug-in bias
    # at m rows; the fit's M carries the plug-in bias of R at n rows (below)
    value = fitted + statistic - float(np.mean(references))
    noise = max(float(np.var(terms)) / m, float(np.var(references, ddof=1)))
    # The fit's R^ is noisier, so more dependent, than the truth: M(fit) errs high by about the
    # Gaussian plug-in bias (exact for Gaussian data), and so does the data's statistic relative
    # to the references'; the model's own estimate of M is M(fit) minus that bias.
    model = fitted - gaussian_plugin_bias(n, map(len, groups))
    se = math.sqrt((1 + 1 / n_ref) * noise)
    return Corrected(value, model, value - model, se, fit, n_ref, m)


# ----------------------------------------------------------------------------- cheap screen

# The screen looks at at most screen_rows(N, d) rows (a fixed, seed-independent subset): its cost
# stays O(rows d^2), below the copula's own O(N d^2 + N d log N) for large N, and its power does
# not grow without bound on huge N (it still rejects an isotropic t, nu = 5, d = 4 at omnibus
# z = 49 and the swiss roll at 350 with 5000 rows). At least SCREEN_ROWS_PER_COLUMN rows per
# column: its ~1.5 d^2 moments are nearly independent only while d / rows is small. On Gaussian
# data (3 samples each, normal scores) the omnibus z read -0.8 to 1.5 at 5000 rows and d = 96 or
# 192, 0.3 to 4.1 at d = 384 and 3.2 to 4.4 at d = 768 (critical 3.3: false rejections), 1.6 to
# 2.4 at 10^4 rows and -1.0 to 0.4 at 2 x 10^4 rows (d = 768).
SCREEN_ROWS = 5000
SCREEN_ROWS_PER_COLUMN = 25
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


def screen_rows(n: int, d: int) -> int:
    """Rows the screen looks at: min(N, max(SCREEN_ROWS, SCREEN_ROWS_PER_COLUMN d))."""
    return min(n, max(SCREEN_ROWS, SCREEN_ROWS_PER_COLUMN * d))


def gaussian_copula_screen(Z: np.ndarray) -> Screen:
    """Test 'the normal scores Z are jointly Gaussian' (the Gaussian copula) in O(N d^2): whiten Z
    by its sample correlation (W = Z L^-T) and test that the cross-moments of the Hermite features
    f_1 = w and f_2 = (w^2 - 1) / sqrt 2 of the columns of W are those of independent N(0, 1)
    variables: E[f_a(W_i) f_b(W_j)] = 0 for i != j (co-skewness a = 1, b = 2; co-kurtosis
    a = b = 2), E[f_1 f_2] = 0 (skewness) and E[f_2^2] = 1 (kurtosis) within a column. Each moment
    gives a self-normalised z = mean / (sd / sqrt N) of its per-row products (whose tails are
    heavier than Gaussian, so a known-variance z would reject too often); the omnibus statistic is
    (sum z^2 - m) / sqrt(2m) and the max statistic is Bonferroni-corrected, each at
    SCREEN_ALPHA / 2, on screen_rows(N, d) rows. Normal scores are more evenly spread than a
    Gaussian sample, which makes both a little conservative (omnibus z 0.5-0.8 lower than on the
    Gaussian sample itself at d = 96 to 768). The omnibus assumes nearly independent moments,
    which holds while d / rows is small (SCREEN_ROWS_PER_COLUMN); with fewer rows (N < 25 d) it
    drifts up and can reject Gaussian copulas: that costs `auto` the knn_corrected check, not
    accuracy.

    These moments are what tail dependence (t copulas: variances that move together), curved and
    non-monotone dependence leave in whitened scores first. Structure orthogonal to them (e.g.
    y = sin(5x), whose low-order Hermite coefficients are tiny) escapes the screen."""
    n, d = Z.shape
    rows = screen_rows(n, d)
    if n > rows:
        Z = Z[np.sort(np.random.default_rng(0).choice(n, rows, replace=False))]
        n = rows
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
