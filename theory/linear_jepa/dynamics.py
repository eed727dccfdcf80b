"""Per-feature scalar dynamics of deep linear JEPA and MAE (Littwin et al. 2024; REFERENCE sec. 6).

One feature i has covariance lambda = Sigma_yx[i, i], input variance sigma^2 = Sigma_xx[i, i] and
regression coefficient rho = lambda / sigma^2. With the balanced aligned init every layer of the
encoder and the head (predictor or decoder) carries the same scalar u, the encoder entry is
w = u^L (L = depth) and, under plain gradient descent on all L + 1 factors ("gd" time,
t = steps * lr),

    JEPA: du/dt = lambda u^(2L) (1 - u / rho)          w -> rho^L,          predictor -> rho
    MAE:  du/dt = lambda u^L (1 - u^(L+1) / rho)      w -> rho^(L/(L+1)),  V W -> rho.

In w this is the paper's ODE up to the time-convention factor L ("paper" time = L * gd time):

    JEPA: dw/dt_paper = lambda w^(3 - 1/L) - sigma^2 w^3
    MAE:  dw/dt_paper = lambda w^(2 - 1/L) - sigma^2 w^3.

The critical time t* is the first time w reaches p times its fixed point, starting from w(0) = eps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import integrate, special

OBJECTIVES = ("jepa", "mae")
CONVENTIONS = ("gd", "paper")
METHODS = ("closed", "quad", "ode")


class FixedPoint(NamedTuple):
    """Fixed point of one feature: encoder entry w, head v (predictor/decoder), product v * w."""

    encoder: float
    head: float
    prediction: float


class Feature(NamedTuple):
    """One feature: covariance lambda (Sigma_yx entry) and regression coefficient rho."""

    lam: float
    rho: float


# ---------------------------------------------------------------------------------------------
# validation


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {OBJECTIVES}")


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown time convention {convention!r}; use 'gd' (plain GD time, steps * lr) "
            "or 'paper' (the paper's ODE, L times slower)"
        )


def _check_depth(depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def _check_feature(lam: float, rho: float) -> tuple[float, float]:
    return _check_positive("lambda", lam), _check_positive("rho", rho)


def _time_scale(depth: int, convention: str) -> float:
    """Factor that turns gd time into the requested convention."""
    _check_convention(convention)
    return float(depth) if convention == "paper" else 1.0


# ---------------------------------------------------------------------------------------------
# ODEs and fixed points


def fixed_point(rho: float, depth: int, objective: str) -> FixedPoint:
    """JEPA: (rho^L, rho, rho^(L+1)); MAE: (rho^(L/(L+1)), rho^(1/(L+1)), rho)."""
    _check_objective(objective)
    _check_depth(depth)
    rho = _check_positive("rho", rho)
    u = rho if objective == "jepa" else rho ** (1.0 / (depth + 1))
    return FixedPoint(encoder=u**depth, head=u, prediction=u ** (depth + 1))


def encoder_rhs(
    w: np.ndarray, lam: float, rho: float, depth: int, objective: str, convention: str = "gd"
) -> np.ndarray:
    """dw/dt of the encoder entry: lambda w^(3-1/L) - sigma^2 w^3 (JEPA) or
    lambda w^(2-1/L) - sigma^2 w^3 (MAE), in paper time; times L in gd time."""
    _check_objective(objective)
    _check_depth(depth)
    scale = depth / _time_scale(depth, convention)
    w = np.asarray(w, dtype=float)
    sigma2 = lam / rho
    power = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    return scale * (lam * w**power - sigma2 * w**3)


def _log_rhs(lam: np.ndarray, rho: np.ndarray, depth: int, objective: str, scale: float):
    """d(ln w)/dt, the ODE integrated by the solvers (well conditioned over many decades of w)."""
    power = (2.0 if objective == "jepa" else 1.0) - 1.0 / depth
    sigma2 = lam / rho

    def rhs(_t: float, log_w: np.ndarray) -> np.ndarray:
        w = np.exp(log_w)
        return scale * (lam * w**power - sigma2 * w**2)

    return rhs


def encoder_trajectory(
    lam: np.ndarray,
    rho: np.ndarray,
    depth: int,
    objective: str,
    eps: float,
    times: np.ndarray,
    convention: str = "gd",
) -> np.ndarray:
    """Encoder entries w(t) of several features from w(0) = eps; returns shape (len(times), d)."""
    _check_objective(objective)
    _check_depth(depth)
    eps = _check_positive("eps", eps)
    lam = np.atleast_1d(np.asarray(lam, dtype=float))
    rho = np.atleast_1d(np.asarray(rho, dtype=float))
    if lam.shape != rho.shape or lam.ndim != 1:
        raise ValueError(
            f"lam and rho must be 1-d of equal length, got {lam.shape} and {rho.shape}"
        )
    if not (np.all(lam > 0) and np.all(rho > 0)):
        raise ValueError("all lambda and rho must be positive")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or np.any(np.diff(times) < 0) or times[0] < 0:
        raise ValueError("times must be a 1-d non-decreasing array starting at t >= 0")
    scale = depth / _time_scale(depth, convention)
    sol = integrate.solve_ivp(
        _log_rhs(lam, rho, depth, objective, scale),
        (0.0, float(times[-1])),
        np.full(lam.shape, np.log(eps)),
        method="LSODA",
        t_eval=times,
        rtol=1e-10,
        atol=1e-12,
    )
    if not sol.success:
        raise RuntimeError(f"ODE integration failed: {sol.message}")
    return np.exp(sol.y.T)


# ---------------------------------------------------------------------------------------------
# critical times


def _limits(rho: float, depth: int, objective: str, eps: float, p: float) -> tuple[float, float]:
    """Per-layer start u0 = eps^(1/L) and target u1 = (p w*)^(1/L)."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    target = p * fixed_point(rho, depth, objective).encoder
    if eps >= target:
        raise ValueError(
            f"eps = {eps:g} is not below p * w* = {target:g} ({objective}, rho = {rho:g}, "
            f"L = {depth}): the feature never has to grow (JEPA features with rho^L < eps never "
            "do); choose eps < p * min(rho)^L"
        )
    return eps ** (1.0 / depth), target ** (1.0 / depth)


def _per_layer_rate(u: float | np.ndarray, lam: float, rho: float, depth: int, objective: str):
    """du/dt in gd time."""
    if objective == "jepa":
        return lam * u ** (2 * depth) * (1.0 - u / rho)
    return lam * u**depth * (1.0 - u ** (depth + 1) / rho)


def _closed_form_gd(lam: float, rho: float, depth: int, objective: str, u0: float, u1: float):
    if objective == "jepa":
        n = np.arange(1, 2 * depth)
        powers = (u0 ** (-n) - u1 ** (-n)) / (n * rho ** (2 * depth - 1 - n))
        log_term = np.log(u1 * (1 - u0 / rho) / (u0 * (1 - u1 / rho)))
        return (powers.sum() + rho ** (1 - 2 * depth) * log_term) / lam
    if depth == 1:

        def antiderivative(u):
            return np.log(u) - 0.5 * np.log1p(-(u**2) / rho)
    else:
        a = (1.0 - depth) / (depth + 1.0)

        def antiderivative(u):
            z = u ** (depth + 1) / rho
            return u ** (1 - depth) / (1 - depth) * special.hyp2f1(1.0, a, a + 1.0, z)

    return (antiderivative(u1) - antiderivative(u0)) / lam


def _quadrature_gd(lam: float, rho: float, depth: int, objective: str, u0: float, u1: float):
    # In s = ln u the integrand u / rate(u) is smooth over the whole range.
    def integrand(s: float) -> float:
        u = np.exp(s)
        return u / _per_layer_rate(u, lam, rho, depth, objective)

    value, _ = integrate.quad(
        integrand, np.log(u0), np.log(u1), epsabs=0.0, epsrel=1e-12, limit=200
    )
    return value


def _ode_hitting_time_gd(
    lam: float, rho: float, depth: int, objective: str, eps: float, target: float
) -> float:
    event_level = np.log(target)

    def reached(_t: float, log_w: np.ndarray) -> float:
        return log_w[0] - event_level

    reached.terminal = True
    reached.direction = 1.0
    rhs = _log_rhs(np.array([lam]), np.array([rho]), depth, objective, float(depth))
    horizon = critical_time_series(lam, rho, depth, objective, eps)
    start, state = 0.0, np.array([np.log(eps)])
    for _ in range(60):  # extend the horizon until the event fires
        sol = integrate.solve_ivp(
            rhs,
            (start, start + horizon),
            state,
            method="LSODA",
            events=reached,
            rtol=1e-12,
            atol=1e-14,
        )
        if not sol.success:
            raise RuntimeError(f"ODE integration failed: {sol.message}")
        if sol.t_events[0].size:
            return float(sol.t_events[0][0])
        start, state, horizon = sol.t[-1], sol.y[:, -1], 2 * horizon
    raise RuntimeError("the encoder entry never reached p * w*; check lambda, rho and eps")


def critical_time(
    lam: float,
    rho: float,
    depth: int,
    objective: str,
    eps: float,
    p: float = 0.5,
    method: str = "closed",
    convention: str = "gd",
) -> float:
    """First time w(t) = p * w* from w(0) = eps, i.e. (gd time) t* = int_{u0}^{u1} du / (du/dt).

    method "closed": JEPA (L/lambda)[sum_{n=1}^{2L-1} (u0^-n - u1^-n) / (n rho^(2L-1-n))
    + rho^(1-2L) ln(u1 (1 - u0/rho) / (u0 (1 - u1/rho)))] in paper time; MAE via
    int u^-L / (1 - u^(L+1)/rho) du = u^(1-L)/(1-L) 2F1(1, a; a+1; u^(L+1)/rho), a = (1-L)/(L+1)
    (L = 1: ln u - ln(1 - u^2/rho) / 2). "quad": the integral numerically. "ode": integrate the ODE
    and detect the hitting time.
    """
    _check_objective(objective)
    _check_depth(depth)
    lam, rho = _check_feature(lam, rho)
    eps = _check_positive("eps", eps)
    scale = _time_scale(depth, convention)
    u0, u1 = _limits(rho, depth, objective, eps, p)
    if method == "closed":
        t_gd = _closed_form_gd(lam, rho, depth, objective, u0, u1)
    elif method == "quad":
        t_gd = _quadrature_gd(lam, rho, depth, objective, u0, u1)
    elif method == "ode":
        t_gd = _ode_hitting_time_gd(lam, rho, depth, objective, eps, u1**depth)
    else:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    return scale * float(t_gd)


def critical_time_series(
    lam: float, rho: float, depth: int, objective: str, eps: float, convention: str = "gd"
) -> float:
    """The paper's small-eps expansion without its Theta(log eps) remainder (paper time):
    JEPA (1/lambda) sum_{n=1}^{2L-1} L / (n rho^(2L-n-1) eps^(n/L));
    MAE L / ((L-1) lambda eps^((L-1)/L)) for L >= 2 (rho-free), ln(1/eps) / lambda for L = 1."""
    _check_objective(objective)
    _check_depth(depth)
    lam, rho = _check_feature(lam, rho)
    eps = _check_positive("eps", eps)
    scale = _time_scale(depth, convention) / depth  # the formulas below are paper time
    if objective == "jepa":
        n = np.arange(1, 2 * depth)
        t_paper = np.sum(depth / (n * rho ** (2 * depth - n - 1) * eps ** (n / depth))) / lam
    elif depth == 1:
        t_paper = np.log(1.0 / eps) / lam
    else:
        t_paper = depth / ((depth - 1) * lam * eps ** ((depth - 1) / depth))
    return scale * float(t_paper)


# ---------------------------------------------------------------------------------------------
# learning order


def learned_first(
    a: Feature, b: Feature, depth: int, objective: str, eps: float, p: float = 0.5
) -> int:
    """0 if feature a reaches p of its fixed point first, 1 if b does (ties go to a)."""
    t_a = critical_time(a[0], a[1], depth, objective, eps, p)
    t_b = critical_time(b[0], b[1], depth, objective, eps, p)
    return 0 if t_a <= t_b else 1


def inversion_depth(
    a: Feature, b: Feature, objective: str, eps: float, p: float = 0.5, max_depth: int = 10
) -> int | None:
    """Smallest depth at which the learning order of a and b differs from the order at depth 1;
    None if it does not change up to max_depth."""
    _check_depth(max_depth)
    first_at_one = learned_first(a, b, 1, objective, eps, p)
    for depth in range(2, max_depth + 1):
        if learned_first(a, b, depth, objective, eps, p) != first_at_one:
            return depth
    return None


def sample_feature_pairs(
    rng: np.random.Generator,
    n_pairs: int,
    lambda_ratio: tuple[float, float],
    rho_range: tuple[float, float],
) -> np.ndarray:
    """Random pairs (lam_A, rho_A, lam_B, rho_B), shape (n_pairs, 4): lam_B = 1,
    lam_A / lam_B ~ U(lambda_ratio), rho_A, rho_B log-uniform on rho_range (order depends on
    lambda only through the ratio, so lam_B = 1 loses nothing)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
    lo, hi = (float(v) for v in lambda_ratio)
    r_lo, r_hi = (float(v) for v in rho_range)
    if not (0 < lo <= hi and 0 < r_lo <= r_hi):
        raise ValueError("lambda_ratio and rho_range must be (low, high) with 0 < low <= high")
    ratio = rng.uniform(lo, hi, n_pairs)
    rhos = np.exp(rng.uniform(np.log(r_lo), np.log(r_hi), (n_pairs, 2)))
    return np.column_stack([ratio, rhos[:, 0], np.ones(n_pairs), rhos[:, 1]])


def order_survey(
    pairs: np.ndarray, depths: list[int], objective: str, eps: float, p: float = 0.5
) -> np.ndarray:
    """Boolean (n_pairs, len(depths)): True where feature B of a pair (lam_A, rho_A, lam_B, rho_B)
    is learned strictly before feature A."""
    pairs = np.asarray(pairs, dtype=float)
    if pairs.ndim != 2 or pairs.shape[1] != 4:
        raise ValueError(
            f"pairs must have shape (n, 4) = (lam_A, rho_A, lam_B, rho_B), got {pairs.shape}"
        )
    out = np.zeros((len(pairs), len(depths)), dtype=bool)
    for i, (lam_a, rho_a, lam_b, rho_b) in enumerate(pairs):
        for j, depth in enumerate(depths):
            out[i, j] = learned_first((lam_a, rho_a), (lam_b, rho_b), depth, objective, eps, p) == 1
    return out
