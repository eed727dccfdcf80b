"""Ground-truth tasks for multiinformation estimators (style of the "Beyond Normal" benchmark).

A task draws samples, `sample(n, rng) -> (n, dim)`, and knows its exact value `true_value` in nats:
the multiinformation M = sum_g H(X_g) - H(X) of the variables defined by `groups` (None: each column
is one variable), i.e. what `theory.multiinformation(X, groups=task.groups)` estimates.

Families:
- GaussianTask: M = 1/2 (sum_g log det R_gg - log det R) for a correlation matrix R
  (random with a target value, equicorrelated, AR(1), block structures).
- TransformedTask: a task pushed through strictly monotone maps per column; M is unchanged.
- StudentTTask: multivariate t (heavy-tailed dependence even at R = I), closed form below.
- DiscreteTask: a finite joint pmf; exact value by enumeration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import optimize, stats

from theory.closed_forms import gaussian_multiinformation, student_t_multiinformation

Groups = list[list[int]] | None


class Task(Protocol):
    """What every task provides; `true_value` is exact, in nats."""

    name: str
    groups: Groups

    @property
    def dim(self) -> int: ...

    @property
    def true_value(self) -> float: ...

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


# ---------------------------------------------------------------- correlation matrices


def equicorrelated(d: int, rho: float) -> np.ndarray:
    """R = (1 - rho) I + rho 11^T; M = -1/2 [(d - 1) log(1 - rho) + log(1 + (d - 1) rho)]."""
    if d < 2 or not -1.0 / (d - 1) < rho < 1.0:
        raise ValueError(f"equicorrelated: need -1/(d-1) < rho < 1 for d={d}, got rho={rho}")
    return (1.0 - rho) * np.eye(d) + rho * np.ones((d, d))


def ar1(d: int, rho: float) -> np.ndarray:
    """R_ij = rho^|i-j| (stationary AR(1)); M = -(d - 1)/2 log(1 - rho^2)."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"ar1: need |rho| < 1, got rho={rho}")
    lags = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    return rho**lags


def block_correlation(sizes: Sequence[int], within: float, between: float) -> np.ndarray:
    """Correlation `within` inside each block, `between` across blocks (blocks in column order)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    R = np.where(labels[:, None] == labels[None, :], within, between)
    np.fill_diagonal(R, 1.0)
    if np.linalg.eigvalsh(R)[0] <= 0:
        raise ValueError(
            f"block_correlation: within={within}, between={between} is not positive "
            "definite; lower `between` (it must stay below `within`)"
        )
    return R


def blocks(sizes: Sequence[int]) -> list[list[int]]:
    """Consecutive column groups of the given sizes, e.g. [2, 3] -> [[0, 1], [2, 3, 4]]."""
    edges = np.cumsum([0, *sizes])
    return [list(range(a, b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def random_correlation(d: int, rng: np.random.Generator, nats: float) -> np.ndarray:
    """A random correlation matrix with multiinformation exactly `nats`.

    R = corr(I + s B B^T) with B ~ N(0, 1)^{d x ceil(d/2)}; the scale s is found by root finding on
    log s. M grows from 0 at s = 0 to infinity (B B^T is rank deficient): every target is reachable.
    """
    if d < 2 or nats <= 0:
        raise ValueError(f"random_correlation: need d >= 2 and nats > 0, got d={d}, nats={nats}")
    B = rng.standard_normal((d, (d + 1) // 2))
    gram = B @ B.T / B.shape[1]

    def gap(log_s: float) -> float:
        cov = np.eye(d) + math.exp(log_s) * gram
        return gaussian_multiinformation(cov) - nats

    log_s = optimize.brentq(gap, -30.0, 30.0, xtol=1e-12)
    cov = np.eye(d) + math.exp(log_s) * gram
    scale = 1.0 / np.sqrt(np.diag(cov))
    return cov * scale[:, None] * scale[None, :]


def _check_correlation(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 2:
        raise ValueError(f"expected a square (d, d) matrix with d >= 2, got shape {R.shape}")
    if not np.allclose(R, R.T) or not np.allclose(np.diag(R), 1.0):
        raise ValueError("expected a symmetric correlation matrix with unit diagonal")
    if np.linalg.eigvalsh(R)[0] <= 0:
        raise ValueError("the correlation matrix is not positive definite")
    return R


def _check_groups(groups: Groups, d: int) -> Groups:
    if groups is None:
        return None
    flat = sorted(i for g in groups for i in g)
    if flat != list(range(d)) or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups {groups} must partition the columns 0..{d - 1} exactly")
    return [list(g) for g in groups]


# ---------------------------------------------------------------- Gaussian


@dataclass(frozen=True, eq=False)
class GaussianTask:
    """X ~ N(0, R). true_value = 1/2 (sum_g log det R_gg - log det R)."""

    R: np.ndarray
    groups: Groups = None
    name: str = "gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "R", _check_correlation(self.R))
        object.__setattr__(self, "groups", _check_groups(self.groups, self.dim))

    @property
    def dim(self) -> int:
        return self.R.shape[0]

    @property
    def true_value(self) -> float:
        return gaussian_multiinformation(self.R, self.groups)

    @property
    def total_value(self) -> float:
        """M over all single columns (ignores groups)."""
        return gaussian_multiinformation(self.R)

    @property
    def within_values(self) -> list[float]:
        """M inside each group (0 for a single column); total = between + sum(within)."""
        return [
            gaussian_multiinformation(self.R[np.ix_(g, g)]) if len(g) > 1 else 0.0
            for g in (self.groups or [[i] for i in range(self.dim)])
        ]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.multivariate_normal(np.zeros(self.dim), self.R, size=n, method="cholesky")


# ---------------------------------------------------------------- monotone transforms

MONOTONE_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "exp": np.exp,
    "cube": lambda x: x**3,
    "sinh": np.sinh,
    "arcsinh": np.arcsinh,
    "uniform": stats.norm.cdf,  # N(0, 1) -> U(0, 1): the normal CDF
}


@dataclass(frozen=True, eq=False)
class TransformedTask:
    """Y_i = f_i(X_i) with strictly monotone f_i (cycled over columns): M(Y) = M(X) exactly."""

    base: Task
    maps: tuple[str, ...] = ("exp", "cube", "arcsinh", "uniform")

    def __post_init__(self) -> None:
        unknown = [m for m in self.maps if m not in MONOTONE_MAPS]
        if unknown or not self.maps:
            raise ValueError(f"unknown maps {unknown}; choose from {sorted(MONOTONE_MAPS)}")

    @property
    def name(self) -> str:
        return f"{self.base.name}+{'/'.join(self.maps)}"

    @property
    def groups(self) -> Groups:
        return self.base.groups

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def true_value(self) -> float:
        return self.base.true_value

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = self.base.sample(n, rng)
        return np.column_stack(
            [MONOTONE_MAPS[self.maps[j % len(self.maps)]](X[:, j]) for j in range(self.dim)]
        )


# ---------------------------------------------------------------- Student-t


@dataclass(frozen=True, eq=False)
class StudentTTask:
    """X = Z / sqrt(W / nu), Z ~ N(0, R), W ~ chi2(nu): dependent via the shared W even at R = I."""

    R: np.ndarray
    nu: float
    groups: Groups = None
    name: str = "student-t"

    def __post_init__(self) -> None:
        if not self.nu > 0:
            raise ValueError(f"StudentTTask: degrees of freedom nu must be > 0, got {self.nu}")
        object.__setattr__(self, "R", _check_correlation(self.R))
        object.__setattr__(self, "groups", _check_groups(self.groups, self.dim))

    @property
    def dim(self) -> int:
        return self.R.shape[0]

    @property
    def true_value(self) -> float:
        return student_t_multiinformation(self.R, self.nu, self.groups)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        Z = rng.multivariate_normal(np.zeros(self.dim), self.R, size=n, method="cholesky")
        W = rng.chisquare(self.nu, size=n)
        return Z / np.sqrt(W / self.nu)[:, None]


# ---------------------------------------------------------------- discrete


def _entropy(probs: np.ndarray) -> float:
    p = probs[probs > 0]
    return float(-(p * np.log(p)).sum())


def _marginal(outcomes: np.ndarray, probs: np.ndarray, cols: list[int]) -> np.ndarray:
    _, inverse = np.unique(outcomes[:, cols], axis=0, return_inverse=True)
    return np.bincount(inverse.ravel(), weights=probs)


def discrete_multiinformation(
    outcomes: np.ndarray, probs: np.ndarray, groups: Groups = None
) -> float:
    """M = sum_g H(X_g) - H(X) by enumeration of a pmf over the rows of `outcomes` (K, d)."""
    outcomes, probs = np.asarray(outcomes), np.asarray(probs, dtype=float)
    d = outcomes.shape[1]
    groups = _check_groups(groups, d) or [[i] for i in range(d)]
    joint = _entropy(_marginal(outcomes, probs, list(range(d))))
    return sum(_entropy(_marginal(outcomes, probs, g)) for g in groups) - joint


@dataclass(frozen=True, eq=False)
class DiscreteTask:
    """X takes row k of `outcomes` with probability probs[k]; exact M by enumeration."""

    outcomes: np.ndarray
    probs: np.ndarray
    groups: Groups = None
    name: str = "discrete"

    def __post_init__(self) -> None:
        outcomes, probs = np.asarray(self.outcomes), np.asarray(self.probs, dtype=float)
        if outcomes.ndim != 2 or probs.shape != (outcomes.shape[0],):
            raise ValueError(
                f"outcomes must be (K, d) and probs (K,), got {outcomes.shape} and {probs.shape}"
            )
        if np.any(probs < 0) or not math.isclose(probs.sum(), 1.0, abs_tol=1e-9):
            raise ValueError("probs must be non-negative and sum to 1")
        object.__setattr__(self, "outcomes", outcomes)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "groups", _check_groups(self.groups, self.dim))

    @property
    def dim(self) -> int:
        return self.outcomes.shape[1]

    @property
    def true_value(self) -> float:
        return discrete_multiinformation(self.outcomes, self.probs, self.groups)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.outcomes[rng.choice(len(self.probs), size=n, p=self.probs)].astype(float)


def bits(d: int) -> np.ndarray:
    """All 2^d binary vectors as rows (first column most significant)."""
    return (np.arange(2**d)[:, None] >> np.arange(d - 1, -1, -1)) & 1


def noisy_copies(d: int, flip: float) -> DiscreteTask:
    """X_1 a fair bit, X_2..X_d independent copies of it, each flipped with probability `flip`."""
    outcomes = bits(d)
    flips = (outcomes[:, 1:] != outcomes[:, :1]).sum(axis=1)
    probs = 0.5 * flip**flips * (1 - flip) ** (d - 1 - flips)
    return DiscreteTask(outcomes, probs, name=f"noisy-copies-{d}-{flip}")


def xor_bits() -> DiscreteTask:
    """(X_1, X_2, X_1 xor X_2) with X_1, X_2 iid fair bits: pairwise independent, M = log 2."""
    outcomes = np.array([[a, b, a ^ b] for a in (0, 1) for b in (0, 1)])
    return DiscreteTask(outcomes, np.full(4, 0.25), name="xor")


def duplicated_bit() -> DiscreteTask:
    """Y = (X_1, X_1) for a fair bit X_1: M = H(X_1) = log 2 (the scope example)."""
    return DiscreteTask(np.array([[0, 0], [1, 1]]), np.array([0.5, 0.5]), name="duplicated-bit")


# ---------------------------------------------------------------- standard suite


def standard_tasks(rng: np.random.Generator | None = None) -> list[Task]:
    """A small suite covering every family (d <= 8); the accuracy tests run on it."""
    rng = np.random.default_rng(0) if rng is None else rng
    sizes = [2, 3, 3]
    gauss_random = GaussianTask(random_correlation(6, rng, nats=1.0), name="gaussian-random-6")
    return [
        gauss_random,
        GaussianTask(equicorrelated(4, 0.5), name="gaussian-equicorr-4"),
        GaussianTask(ar1(8, 0.6), name="gaussian-ar1-8"),
        GaussianTask(
            block_correlation(sizes, 0.6, 0.2), groups=blocks(sizes), name="gaussian-blocks"
        ),
        TransformedTask(gauss_random),
        StudentTTask(np.eye(6), nu=3.0, name="student-t-3-6"),
        StudentTTask(ar1(4, 0.5), nu=5.0, name="student-t-5-ar1-4"),
        noisy_copies(3, 0.1),
        xor_bits(),
    ]


def student_t_tasks() -> list[Task]:
    """The heavy-tail suite of `auto`'s target: multivariate t with nu in {3, 5}, R = I
    (dependence only through the shared scale) or a random correlation with 0.1 d nats of
    Gaussian part, d in {4, 10, 16}."""
    out: list[Task] = []
    for nu in (3.0, 5.0):
        for d in (4, 10, 16):
            out.append(StudentTTask(np.eye(d), nu, name=f"student-t-{nu:g}-I-{d}"))
            R = random_correlation(d, np.random.default_rng(d), nats=0.1 * d)
            out.append(StudentTTask(R, nu, name=f"student-t-{nu:g}-corr-{d}"))
    return out


def gaussian_copula_tasks() -> list[Task]:
    """The Gaussian-copula suite of `auto`'s target, d up to 64: random correlations with
    0.055 d nats (d = 4, 16, 64), the same through monotone maps, equicorrelated and AR(1), and
    group structure (d = 12 in three groups, d = 64 in four groups of 16)."""
    rand = {
        d: GaussianTask(
            random_correlation(d, np.random.default_rng(d), nats=0.055 * d), name=f"gaussian-{d}"
        )
        for d in (4, 16, 64)
    }
    g12, g64 = [4, 4, 4], [16] * 4
    return [
        *rand.values(),
        *(TransformedTask(task) for task in rand.values()),
        GaussianTask(equicorrelated(16, 0.3), name="gaussian-equicorr-16"),
        GaussianTask(ar1(32, 0.7), name="gaussian-ar1-32"),
        GaussianTask(
            block_correlation(g12, 0.6, 0.2), groups=blocks(g12), name="gaussian-groups-12"
        ),
        TransformedTask(
            GaussianTask(
                block_correlation(g64, 0.5, 0.25), groups=blocks(g64), name="gaussian-groups-64"
            )
        ),
    ]
