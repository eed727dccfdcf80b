"""Full-matrix gradient descent for deep linear JEPA and MAE, and the two-view data that feed it.

Encoder W = W^L ... W^1 (square d x d layers), head V (predictor for JEPA, decoder for MAE):

    JEPA: 1/2 E||V W x - StopGrad(W y)||^2,   dLoss/d(VW) = V W Sigma_xx - W Sigma_yx
    MAE:  1/2 E||V W x - y||^2,               dLoss/d(VW) = V W Sigma_xx - Sigma_yx

with Sigma_xx = E[x x^T], Sigma_yx = E[y x^T]. Both losses are quadratic in the data, so full-batch
GD on a sample is exactly GD on its second moments (`empirical_covariances`). Every factor of the
chain V W^L ... W^1 gets the gradient through the prediction V W x only (the JEPA target is
stopped), so gradient flow conserves W^(a+1)^T W^(a+1) - W^a W^a^T for consecutive factors
(V counted as W^(L+1)); GD conserves it up to O(lr). Time is gd time, t = steps * lr.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory.linear_jepa.dynamics import OBJECTIVES

INITS = ("aligned", "orthogonal")


class Simulation(NamedTuple):
    """Recorded GD run. times: (n,), gd time; encoder, head: (n, d, d), W = W^L..W^1 and V;
    balancedness_drift: (n,), max over consecutive factor pairs of the largest absolute entry of
    the change of W^(a+1)^T W^(a+1) - W^a W^a^T since t = 0."""

    times: np.ndarray
    encoder: np.ndarray
    head: np.ndarray
    balancedness_drift: np.ndarray


# ---------------------------------------------------------------------------------------------
# data


def _as_vector(name: str, value, size: int | None = None) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or (size is not None and arr.size != size):
        want = f"length {size}" if size is not None else "1-d"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
    return rng


def population_covariances(lam, rho) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal (Sigma_xx, Sigma_yx) with Sigma_yx = diag(lambda), Sigma_xx = diag(lambda / rho)."""
    lam = _as_vector("lam", lam)
    rho = _as_vector("rho", rho, lam.size)
    if np.any(lam <= 0) or np.any(rho <= 0):
        raise ValueError("lambda and rho must be positive")
    return np.diag(lam / rho), np.diag(lam)


def two_view_parameters(signal_std, noise_std, gamma=None) -> tuple[np.ndarray, np.ndarray]:
    """Population (lambda, rho): static lambda = a^2, rho = a^2 / (a^2 + s^2); dynamic multiplies
    both by gamma."""
    a = _as_vector("signal_std", signal_std)
    s = _as_vector("noise_std", noise_std, a.size)
    g = np.ones_like(a) if gamma is None else _as_vector("gamma", gamma, a.size)
    return g * a**2, g * a**2 / (a**2 + s**2)


def sample_static_two_view(n: int, signal_std, noise_std, rng: np.random.Generator):
    """x = z + n, y = z + n' with z ~ N(0, diag(a^2)), n, n' ~ N(0, diag(s^2)); returns (x, y)."""
    rng = _check_rng(rng)
    a = _as_vector("signal_std", signal_std)
    s = _as_vector("noise_std", noise_std, a.size)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = rng.standard_normal((n, a.size)) * a
    x = z + rng.standard_normal((n, a.size)) * s
    y = z + rng.standard_normal((n, a.size)) * s
    return x, y


def sample_dynamic_two_view(n: int, signal_std, noise_std, gamma, rng: np.random.Generator):
    """Independent pairs of consecutive states of z_(t+1) = Gamma z_t + xi at stationarity
    (Var z = a^2, Var xi = a^2 (1 - gamma^2)), observed as x = z_t + n, y = z_(t+1) + n'."""
    rng = _check_rng(rng)
    a = _as_vector("signal_std", signal_std)
    s = _as_vector("noise_std", noise_std, a.size)
    g = _as_vector("gamma", gamma, a.size)
    if np.any(np.abs(g) >= 1):
        raise ValueError("gamma must lie in (-1, 1) for a stationary process")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z_now = rng.standard_normal((n, a.size)) * a
    z_next = g * z_now + rng.standard_normal((n, a.size)) * a * np.sqrt(1 - g**2)
    x = z_now + rng.standard_normal((n, a.size)) * s
    y = z_next + rng.standard_normal((n, a.size)) * s
    return x, y


def empirical_covariances(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Uncentred second moments (Sigma_xx = x^T x / n, Sigma_yx = y^T x / n) of rows x_i, y_i."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must be (n, d) arrays of equal shape, got {x.shape}, {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x or y contains NaN or inf")
    return x.T @ x / len(x), y.T @ x / len(x)


# ---------------------------------------------------------------------------------------------
# gradient descent


def initial_factors(
    d: int, depth: int, eps: float, init: str = "aligned", rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Factors [W^1, ..., W^L, V], each eps^(1/L) times I ("aligned") or times an independent Haar
    random orthogonal matrix ("orthogonal", balanced but not aligned with the features)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {INITS}")
    if not (isinstance(depth, (int, np.integer)) and depth >= 1):
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite positive number, got {eps!r}")
    scale = eps ** (1.0 / depth)
    if init == "aligned":
        return [scale * np.eye(d) for _ in range(depth + 1)]
    rng = _check_rng(rng)
    factors = []
    for _ in range(depth + 1):
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        factors.append(scale * q * np.sign(np.diag(r)))  # sign fix makes q Haar distributed
    return factors


def _check_covariances(sigma_xx, sigma_yx) -> tuple[np.ndarray, np.ndarray]:
    sigma_xx = np.asarray(sigma_xx, dtype=float)
    sigma_yx = np.asarray(sigma_yx, dtype=float)
    if (
        sigma_xx.ndim != 2
        or sigma_xx.shape[0] != sigma_xx.shape[1]
        or sigma_yx.shape != sigma_xx.shape
    ):
        raise ValueError(
            f"sigma_xx and sigma_yx must be square (d, d) arrays of equal shape, got "
            f"{sigma_xx.shape} and {sigma_yx.shape}"
        )
    if not (np.all(np.isfinite(sigma_xx)) and np.all(np.isfinite(sigma_yx))):
        raise ValueError("covariances contain NaN or inf")
    if not np.allclose(sigma_xx, sigma_xx.T):
        raise ValueError("sigma_xx must be symmetric")
    return sigma_xx, sigma_yx


def _products(factors: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """below[k] = F_(k-1) ... F_0 and above[k] = F_top ... F_(k+1) for the chain F_top ... F_0."""
    eye = np.eye(factors[0].shape[0])
    below = [eye]
    for f in factors[:-1]:
        below.append(f @ below[-1])
    above = [eye]
    for f in factors[:0:-1]:
        above.append(above[-1] @ f)
    return below, above[::-1]


def _imbalance(factors: list[np.ndarray]) -> np.ndarray:
    return np.stack(
        [
            factors[a + 1].T @ factors[a + 1] - factors[a] @ factors[a].T
            for a in range(len(factors) - 1)
        ]
    )


def gd_step(
    factors: list[np.ndarray], sigma_xx: np.ndarray, sigma_yx: np.ndarray, objective: str, lr: float
) -> list[np.ndarray]:
    """One GD step on all factors [W^1, ..., W^L, V]; returns new arrays (inputs untouched)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {OBJECTIVES}")
    below, above = _products(factors)
    encoder = below[-1]
    prediction = factors[-1] @ encoder
    target = encoder @ sigma_yx if objective == "jepa" else sigma_yx
    grad_prediction = prediction @ sigma_xx - target
    return [f - lr * above[k].T @ grad_prediction @ below[k].T for k, f in enumerate(factors)]


def simulate(
    sigma_xx: np.ndarray,
    sigma_yx: np.ndarray,
    depth: int,
    objective: str,
    lr: float,
    steps: int,
    eps: float = 0.01,
    init: str = "aligned",
    rng: np.random.Generator | None = None,
    record_every: int = 1,
) -> Simulation:
    """Plain GD from `initial_factors`; records every `record_every` steps (and step 0)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {OBJECTIVES}")
    sigma_xx, sigma_yx = _check_covariances(sigma_xx, sigma_yx)
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if steps < 0 or record_every < 1:
        raise ValueError("steps must be >= 0 and record_every >= 1")
    factors = initial_factors(sigma_xx.shape[0], depth, eps, init, rng)
    imbalance_0 = _imbalance(factors)
    times, encoders, heads, drifts = [], [], [], []
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            encoder = factors[0]
            for f in factors[1:-1]:
                encoder = f @ encoder
            times.append(step * lr)
            encoders.append(encoder)
            heads.append(factors[-1])
            drifts.append(np.abs(_imbalance(factors) - imbalance_0).max())
            if not np.all(np.isfinite(encoder)):
                raise FloatingPointError(
                    f"GD diverged at step {step}; lower lr (now {lr:g}) below about "
                    "1 / (L * sigma^2 * max(w*)^2)"
                )
        if step < steps:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported above
                factors = gd_step(factors, sigma_xx, sigma_yx, objective, lr)
    return Simulation(np.array(times), np.array(encoders), np.array(heads), np.array(drifts))
