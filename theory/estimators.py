"""Multiinformation (total correlation) of an embedding matrix: the estimators that need no
neighbour search (gaussian, copula, binned), the discrete/continuous rule, the dispatcher with
`auto`, intervals and decompose.

M(X_1..X_m) = sum_j H(X_j) - H(X) = KL(P_X || prod_j P_{X_j}), in nats; `base` converts.
Modules depend one way: inputs <- closed_forms <- scores <- knn <- corrected <- estimators
(-> neural, imported when used, for torch).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory import corrected, knn
from theory.closed_forms import gaussian_multiinformation, gaussian_plugin_bias
from theory.inputs import as_matrix, drop_constant, parse_groups
from theory.scores import normal_scores

METHODS = (
    "auto",
    "gaussian",
    "copula",
    "ksg",
    "kl",
    "kl_copula",
    "knn_corrected",
    "binned",
    "neural",
)
# A column is discrete when it has at most min(DISCRETE_MAX_VALUES, N / DISCRETE_MIN_COUNT)
# distinct values: few values, each seen DISCRETE_MIN_COUNT times on average.
DISCRETE_MAX_VALUES = 32
DISCRETE_MIN_COUNT = 3
# binned refuses when more than this fraction of the N rows fall into distinct joint cells.
BINNED_MAX_CELLS = 0.5
# Default neighbours: 3 for ksg/kl/kl_copula (as NPEET); 8 for knn_corrected, whose kNN bias is
# simulated and subtracted, so a larger k only lowers its variance (sd 0.023 -> 0.013 nats on a
# Student-t, d = 4, N = 5000; 0.048 -> 0.018 on the Gaussian d = 12 groups task; 4 samples each,
# measured with 2 references).
DEFAULT_K = {"knn_corrected": 8}
# ksg/kl/kl_copula warn above this many columns: plain kNN estimates collapse (N = 5000, truth
# 0.88 at d = 16: ksg 0.56, kl_copula -0.02; truth 3.52 at d = 64: ksg 0.60, kl_copula -13.6).
KNN_WARN_DIM = 8
# Continuous estimators refuse fewer rows than this (and N <= d + 1): at N = 8, d = 4 independent
# normals, auto's old value ranged from -0.53 to 3.3 nats and ksg on 2 rows read -1.0.
MIN_ROWS = 20
# `auto` keeps the Gaussian copula while the kNN discrepancy is within this many standard errors.
GAUSSIAN_MAX_Z = 3.0


# ----------------------------------------------------------------------------- Gaussian, copula


def _gaussian(X: np.ndarray, blocks: list[np.ndarray]) -> float:
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


def _copula(X: np.ndarray, blocks: list[np.ndarray]) -> float:
    """Gaussian-copula M: `_gaussian` on normal scores (invariant to monotone maps per column)."""
    return _gaussian(normal_scores(X), blocks)


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


def _binned(X: np.ndarray, blocks: list[np.ndarray]) -> float:
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


# ----------------------------------------------------------------------------- dispatcher


def _neighbours(method: str, k: int | None, n: int) -> int:
    """k, or when k is None the method's default (DEFAULT_K, else 3), lowered to N // 4 (at least
    1) for small samples."""
    return max(1, min(DEFAULT_K.get(method, 3), n // 4)) if k is None else k


def _check_rows(method: str, n: int, d: int) -> None:
    """Continuous estimators need at least MIN_ROWS rows and N > d + 1 (else ValueError)."""
    if n < MIN_ROWS or n <= d + 1:
        need = max(MIN_ROWS, d + 2)
        raise ValueError(
            f"{method}: N = {n} rows for d = {d} continuous columns is too few to estimate M "
            f"(at least {need} needed: below that, independent normals read anywhere from -0.5 "
            "to 3 nats); add samples or select fewer columns"
        )


def _check_n(method: str, n: int, k: int) -> None:
    if method in ("ksg", "kl", "kl_copula", "knn_corrected") and n < k + 1:
        raise ValueError(
            f"{method} needs at least k + 1 = {k + 1} samples, got N = {n}; lower k or add samples"
        )


def _estimate(
    X: np.ndarray,
    blocks: list[np.ndarray],
    method: str,
    k: int | None,
    rng: np.random.Generator,
    rank: bool | None,
    check_rows: bool = True,
) -> float:
    """Nats, on checked inputs: X has no constant columns, blocks cover it, method is not auto.
    check_rows=False (subsampling replicates only: halves of a sample that passed) skips the
    MIN_ROWS floor."""
    if len(blocks) < 2:
        return 0.0
    k = _neighbours(method, k, len(X))
    if method != "binned" and check_rows:
        _check_rows(method, *X.shape)
    _check_n(method, len(X), k)
    if method == "gaussian":
        return _gaussian(X, blocks)
    if method == "copula":
        return _copula(X, blocks)
    if method == "binned":
        return _binned(X, blocks)
    if method in ("ksg", "kl", "kl_copula") and X.shape[1] > KNN_WARN_DIM:
        warnings.warn(
            f"{method} on d = {X.shape[1]} columns: plain kNN estimates collapse above "
            f"d = {KNN_WARN_DIM} (at N = 5000, d = 16: ksg -35%, kl_copula -100%); use "
            "method='knn_corrected' (or 'auto')",
            UserWarning,
            stacklevel=3,
        )
    if method == "ksg":
        return knn.ksg(X, blocks, k, rng, rank=True if rank is None else rank)
    if method in ("kl", "kl_copula"):
        return knn.kl(X, blocks, k, rng, rank=method == "kl_copula" or bool(rank))
    if method == "knn_corrected":
        return corrected.knn_corrected(X, blocks, k, rng).value
    try:
        from theory import neural
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        raise ImportError(
            "method='neural' needs torch, which is not installed: install it "
            "(pip install torch) or use method='auto'"
        ) from None
    return neural.neural(X, blocks, rng)


def _auto(
    X: np.ndarray, blocks: list[np.ndarray], k: int | None, rng: np.random.Generator
) -> tuple[float, str, str]:
    """(value in nats, method, reason): the `auto` rule (see _decide), with one more guard: when
    every variable is one column and no column is discrete, M = M_copula + J(Z) >= M_copula (the
    normal scores Z have exactly Gaussian marginals, so only the joint negentropy J >= 0 is left),
    so a kNN value below the copula's is below a lower bound and the copula is returned."""
    value, method, reason = _decide(X, blocks, k, rng)
    if (
        method in ("knn_corrected", "ksg")
        and all(len(b) == 1 for b in blocks)
        and not discrete_columns(X).any()
    ):
        bound = _copula(X, blocks)
        if value < bound:
            return (
                bound,
                "copula",
                f"{reason}; but {method}'s {value:+.4f} is below the Gaussian-copula value "
                f"{bound:.4f}, a lower bound of M for one-column variables (M = M_copula + "
                "the normal scores' joint negentropy): value = copula",
            )
    return value, method, reason


def _decide(
    X: np.ndarray, blocks: list[np.ndarray], k: int | None, rng: np.random.Generator
) -> tuple[float, str, str]:
    """(value in nats, method, reason): the `auto` rule, decided from the data.

    - every column discrete (discrete_columns) -> binned;
    - fewer than MIN_ROWS rows, or N <= d + 1 -> ValueError (no estimate of M is meaningful);
    - no column discrete and the moment screen (corrected.gaussian_copula_screen, O(N d^2)) does
      not reject the Gaussian copula -> copula (closed form, bias-corrected: the most precise
      estimate when the Gaussian copula holds), at about twice the cost of `copula` alone;
    - otherwise knn_corrected runs: a t copula is fitted and a kNN statistic is compared with the
      same statistic on samples of the fit. A Gaussian fit whose kNN correction is within
      GAUSSIAN_MAX_Z standard errors of 0 (and no discrete column) -> copula after all; else the
      knn_corrected value (computed from the same random numbers as method="knn_corrected" with
      the same seed, so that call reproduces it), unless the kNN check rejects the fit AND the
      corrected value is implausible (below 0, or a correction larger than the fit's M it
      corrects): the correction then transfers the kNN bias of a model the data reject, and auto
      falls back to ksg, which assumes no model (its per-row neighbour radius is shared by the
      joint and the blocks, so its bias cancels on curved and degenerate data too).
    """
    n, d = X.shape
    discrete = discrete_columns(X)
    if discrete.all():
        return (
            _binned(X, blocks),
            "binned",
            f"all {d} columns discrete (at most min({DISCRETE_MAX_VALUES}, N/"
            f"{DISCRETE_MIN_COUNT}) = {min(DISCRETE_MAX_VALUES, n // DISCRETE_MIN_COUNT)} "
            "distinct values each): plug-in entropies with Miller-Madow",
        )
    _check_rows("auto", n, d)
    screen = None
    if not discrete.any():
        Z = normal_scores(X)
        screen = corrected.gaussian_copula_screen(Z)
        if not screen.rejected:
            return (
                _gaussian(Z, blocks),
                "copula",
                f"Gaussian copula not rejected by the {screen}; bias-corrected closed form on "
                "normal scores (copula)",
            )
    k = _neighbours("knn_corrected", k, n)
    _check_n("knn_corrected", n, k)
    res = corrected.knn_corrected(X, blocks, k, rng)
    z = res.discrepancy / res.se
    first = "" if screen is None else f"Gaussian copula rejected by the {screen}; "
    check = (
        f"kNN correction from {res.references} simulated samples of the fit "
        f"{res.discrepancy:+.4f} nats = {z:+.1f} se"
    )
    value = (
        f"value = the fit's M {res.model:.4f} + kNN correction {res.discrepancy:+.4f} "
        "(knn_corrected)"
    )
    if np.isinf(res.fit.nu):
        fit = (
            f"t copulas not preferred (2N log-likelihood gain {res.fit.lr:.1f} <= "
            f"{corrected.GAUSSIAN_LR_CRITICAL})"
        )
    else:
        fit = (
            f"heavy-tailed: a t copula with nu = {res.fit.nu:g} fits better than the Gaussian "
            f"(2N log-likelihood gain {res.fit.lr:.1f} > {corrected.GAUSSIAN_LR_CRITICAL})"
        )
    if abs(z) > GAUSSIAN_MAX_Z and (res.value < 0 or abs(res.discrepancy) > max(res.model, 0)):
        ksg_k = _neighbours("ksg", None, n)
        why = (
            "below 0"
            if res.value < 0
            else f"its correction {res.discrepancy:+.4f} is larger than the fit's M {res.model:.4f}"
        )
        return (
            knn.ksg(X, blocks, ksg_k, rng),
            "ksg",
            f"{first}{fit}; the kNN check rejects the fit ({check}, |z| > "
            f"{GAUSSIAN_MAX_Z:g}) and the corrected value {res.value:+.4f} is implausible "
            f"({why}): the correction carries the kNN bias of a rejected model; value = ksg "
            f"(k = {ksg_k}, no model assumed; biased low in high dimension)",
        )
    if not np.isinf(res.fit.nu):
        return res.value, "knn_corrected", f"{first}{fit}; {check}; {value}"
    if discrete.any():
        return (
            res.value,
            "knn_corrected",
            f"mixed: {int(discrete.sum())} of {d} columns discrete (ties broken by seeded "
            f"noise, M unchanged; the Gaussian closed form does not apply); {fit}; "
            f"{check}; {value}",
        )
    if abs(z) > GAUSSIAN_MAX_Z:
        return (
            res.value,
            "knn_corrected",
            f"{first}{fit}, and the kNN check rejects the Gaussian copula: {check} "
            f"(|z| > {GAUSSIAN_MAX_Z:g}); {value}",
        )
    return (
        _copula(X, blocks),
        "copula",
        f"{first}but {fit} and the kNN check does not reject it: {check} "
        f"(|z| <= {GAUSSIAN_MAX_Z:g}); bias-corrected closed form on normal scores (copula)",
    )


class Estimate(float):
    """A multiinformation estimate: a float (use it as a number) that also says how it was made.

    method: the estimator used ("auto" resolved to the one it chose); reason: why (for auto, the
    evidence). With ci: low, high, level and the subsampling replicates; otherwise None.
    """

    method: str
    reason: str
    low: float | None
    high: float | None
    level: float | None
    replicates: np.ndarray | None

    def __new__(
        cls,
        value: float,
        method: str = "",
        reason: str = "",
        low: float | None = None,
        high: float | None = None,
        level: float | None = None,
        replicates: np.ndarray | None = None,
    ) -> Estimate:
        self = super().__new__(cls, value)
        self.method, self.reason, self.level, self.replicates = method, reason, level, replicates
        self.low, self.high = low, high
        return self

    @property
    def value(self) -> float:
        return float(self)

    def __repr__(self) -> str:
        interval = f", low={self.low!r}, high={self.high!r}" if self.low is not None else ""
        return f"Estimate({float(self)!r}, method={self.method!r}{interval})"


def multiinformation(
    X: Any,
    method: str = "auto",
    groups: Any = None,
    k: int | None = None,
    base: float = math.e,
    seed: int | np.random.Generator | None = None,
    ci: float | None = None,
    n_boot: int = 100,
    rank: bool | None = None,
) -> Estimate:
    """Multiinformation between the variables of X (columns, or groups of columns), in nats
    (bits for base=2), as an Estimate: a float carrying .method and .reason.

    X: (N, d) numpy array or torch tensor, never mutated. groups: see parse_groups. method: one of
    METHODS ("auto": see _auto; the Estimate says which method it chose and why). k: neighbours for
    the kNN methods (None: 3, as NPEET, and 8 for knn_corrected; see DEFAULT_K and _neighbours).
    seed: int or Generator for all randomness (tie-breaking noise, reference samples, subsamples,
    neural training); None = fresh entropy. rank: ksg/kl only; transform each column to normal
    scores first (default: True for ksg, False for kl, which then matches NPEET's `tc`;
    "kl_copula" is kl with rank=True). ci: e.g. 0.95 adds a half-sampling interval (see
    subsampling_interval; the replicates use the method auto chose). Constant columns are dropped
    with a warning; a single variable (d = 1, or one group) gives 0.0.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if k is not None and not (isinstance(k, int | np.integer) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not (base > 0 and base != 1):
        raise ValueError(
            f"base must be positive and not 1 (e.g. math.e for nats, 2 for bits), got {base!r}"
        )
    if ci is not None and not 0 < ci < 1:
        raise ValueError(f"ci is a coverage level in (0, 1), e.g. 0.95; got {ci!r}")
    A = as_matrix(X)
    blocks = parse_groups(groups, A.shape[1])
    A, blocks = drop_constant(A, blocks)
    rng = np.random.default_rng(seed)
    scale = 1.0 / math.log(base)
    if len(blocks) < 2:
        value, reason = 0.0, "a single variable: M = 0"
        method = "gaussian" if method == "auto" else method
    elif method == "auto":
        value, method, reason = _auto(A, blocks, k, rng)
    else:
        value, reason = _estimate(A, blocks, method, k, rng, rank), "requested"
    if ci is None:
        return Estimate(value * scale, method, reason)
    reps = subsampling_replicates(A, blocks, method, k, rng, rank, n_boot) * scale
    low, high = subsampling_interval(value * scale, reps, len(A), ci)
    return Estimate(value * scale, method, reason, low, high, ci, reps)


def choose_method(
    X: Any, groups: Any = None, k: int | None = None, seed: int | np.random.Generator | None = None
) -> str:
    """The method `auto` picks for X (see _auto); the same as multiinformation(X).method. It costs
    one auto estimate (on Gaussian-copula data about two copula estimates; otherwise a copula fit
    and several kNN statistics)."""
    return multiinformation(X, groups=groups, k=k, seed=seed).method


def subsampling_replicates(
    X: np.ndarray,
    blocks: list[np.ndarray],
    method: str,
    k: int | None,
    rng: np.random.Generator,
    rank: bool | None,
    n_boot: int,
) -> np.ndarray:
    """Estimates on n_boot random halves of the rows (drawn without replacement, so kNN methods
    never see the duplicate rows that a bootstrap would create)."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    half = len(X) // 2
    return np.array(
        [
            _estimate(
                X[rng.choice(len(X), half, replace=False)],
                blocks,
                method,
                k,
                rng,
                rank,
                check_rows=False,
            )
            for _ in range(n_boot)
        ]
    )


def subsampling_interval(
    value: float, replicates: np.ndarray, n: int, level: float
) -> tuple[float, float]:
    """Half-sampling interval: value + sqrt(m / (N - m)) * quantiles of (replicates - their mean),
    m = N // 2. The factor rescales the spread of size-m subsamples (without replacement) to size N;
    centring on the replicate mean removes the bias difference between m and N samples. It covers
    sampling variability only, not an estimator's bias."""
    m = n // 2
    spread = (replicates - replicates.mean()) * math.sqrt(m / (n - m))
    lo, hi = np.quantile(spread, [(1 - level) / 2, (1 + level) / 2])
    return float(value + lo), float(value + hi)


# ----------------------------------------------------------------------------- decompose


@dataclass(frozen=True)
class Decomposition:
    """total = between + sum(within) + residual (chain rule; residual is estimation error)."""

    total: float
    between: float
    within: list[float]
    residual: float
    method: str


def decompose(
    X: Any,
    groups: Any,
    method: str = "auto",
    k: int | None = None,
    base: float = math.e,
    seed: int | None = None,
    rank: bool | None = None,
) -> Decomposition:
    """Total M over all columns, between-group M, and M within each group (0 for a one-column
    group), with residual = total - between - sum(within): 0 up to rounding for gaussian and
    copula (Lemma B holds exactly for one correlation matrix, and so it does for their bias
    corrections), an estimation error otherwise. method="auto" is decided once, on the total, and
    that method is used for every part."""
    A = as_matrix(X)
    blocks = parse_groups(groups, A.shape[1])
    rng = np.random.default_rng(seed)
    total = multiinformation(A, method=method, k=k, base=base, rank=rank, seed=rng)
    kw = dict(method=total.method, k=k, base=base, rank=rank)  # auto: chosen on all columns
    between = multiinformation(A, groups=[b.tolist() for b in blocks], seed=rng, **kw)
    within = [multiinformation(A[:, b], seed=rng, **kw) if len(b) > 1 else 0.0 for b in blocks]
    return Decomposition(
        float(total),
        float(between),
        [float(w) for w in within],
        float(total - between - sum(within)),
        total.method,
    )
