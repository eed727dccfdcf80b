"""Multiinformation (total correlation) of an embedding matrix: the public API. The dispatcher
over the methods, `Estimate`, subsampling intervals and decompose; the estimators themselves are
in plugin (gaussian, copula, binned), knn, corrected and neural, the `auto` rule in auto.

M(X_1..X_m) = sum_j H(X_j) - H(X) = KL(P_X || prod_j P_{X_j}), in nats; `base` converts.
Modules depend one way: inputs <- closed_forms <- scores <- knn <- corrected <- plugin <- auto
<- estimators (-> neural, imported when used, for torch).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory import knn
from theory.auto import auto
from theory.corrected import knn_corrected
from theory.inputs import as_matrix, check_rows, drop_constant, parse_groups
from theory.plugin import binned, copula, gaussian

METHODS = (
    "auto",
    "gaussian",
    "copula",
    "ksg",
    "ksg_extrapolated",
    "kl",
    "kl_copula",
    "knn_corrected",
    "binned",
    "neural",
)
# ksg/kl/kl_copula warn above this many columns: plain kNN estimates collapse (N = 5000, truth
# 0.88 at d = 16: ksg 0.56, kl_copula -0.02; truth 3.52 at d = 64: ksg 0.60, kl_copula -13.6).
KNN_WARN_DIM = 8


# ----------------------------------------------------------------------------- dispatcher


def _estimate(
    X: np.ndarray,
    blocks: list[np.ndarray],
    method: str,
    k: int | None,
    rng: np.random.Generator,
    rank: bool | None,
    min_rows: bool = True,
) -> float:
    """Nats, on checked inputs: X has no constant columns, blocks cover it, method is not auto.
    min_rows=False (subsampling replicates only: halves of a sample that passed) skips the
    MIN_ROWS floor."""
    if len(blocks) < 2:
        return 0.0
    k = knn.neighbours(method, k, len(X))
    if method != "binned" and min_rows:
        check_rows(method, *X.shape)
    knn.check_k(method, len(X), k)
    if method == "gaussian":
        return gaussian(X, blocks)
    if method == "copula":
        return copula(X, blocks)
    if method == "binned":
        return binned(X, blocks)
    if method in ("ksg", "ksg_extrapolated", "kl", "kl_copula") and X.shape[1] > KNN_WARN_DIM:
        warnings.warn(
            f"{method} on d = {X.shape[1]} columns: plain kNN estimates collapse above "
            f"d = {KNN_WARN_DIM} (at N = 5000, d = 16: ksg -35%, kl_copula -100%); use "
            "method='knn_corrected' (or 'auto')",
            UserWarning,
            stacklevel=3,
        )
    if method == "ksg":
        return knn.ksg(X, blocks, k, rng, rank=True if rank is None else rank)
    if method == "ksg_extrapolated":
        return knn.ksg_extrapolated(X, blocks, k, rng, rank=True if rank is None else rank)
    if method in ("kl", "kl_copula"):
        return knn.kl(X, blocks, k, rng, rank=method == "kl_copula" or bool(rank))
    if method == "knn_corrected":
        return knn_corrected(X, blocks, k, rng).value
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
    METHODS ("auto": see theory.auto; the Estimate says which method it chose and why). k:
    neighbours for the kNN methods (None: 3, as NPEET, and 8 for knn_corrected; see
    knn.DEFAULT_K and knn.neighbours).
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
        value, method, reason = auto(A, blocks, k, rng)
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
    """The method `auto` picks for X (see theory.auto); the same as multiinformation(X).method. It
    costs one auto estimate (on Gaussian-copula data about two copula estimates; otherwise a
    copula fit and several kNN statistics)."""
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
                min_rows=False,
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
