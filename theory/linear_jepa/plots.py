"""Paper-style figures: per-feature encoder trajectories and critical-time ratios against depth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from theory.linear_jepa.dynamics import OBJECTIVES, critical_time, encoder_trajectory, fixed_point

# Two feature sets with the same lambdas: rho ordered like lambda, and rho ordered against it.
DEFAULT_LAMBDAS = (0.4, 0.6, 0.8, 1.0)
DEFAULT_RHOS = (0.6, 0.9, 1.4, 2.0)


def _feature_sets(lambdas: Sequence[float], rhos: Sequence[float]):
    lam = np.asarray(lambdas, dtype=float)
    rho = np.sort(np.asarray(rhos, dtype=float))
    if lam.shape != rho.shape or lam.ndim != 1:
        raise ValueError("lambdas and rhos must be 1-d sequences of equal length")
    lam = np.sort(lam)
    return {"rho ordered like lambda": (lam, rho), "rho ordered against lambda": (lam, rho[::-1])}


def plot_trajectories(
    depths: Sequence[int] = (1, 2, 4),
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    rhos: Sequence[float] = DEFAULT_RHOS,
    eps: float = 0.01,
    n_times: int = 400,
) -> Figure:
    """Grid of w_i(t) / w_i* (gd time, log axis): one row per depth, columns = feature set x
    {JEPA, MAE}. Line colour encodes lambda (darker = larger), the label gives (lambda, rho)."""
    sets = _feature_sets(lambdas, rhos)
    fig = Figure(figsize=(4.0 * 2 * len(sets), 2.8 * len(depths)), layout="constrained")
    axes = fig.subplots(len(depths), 2 * len(sets), squeeze=False)
    n_features = len(lambdas)
    colours = [
        (0.15 + 0.7 * (1 - k / max(n_features - 1, 1)),) * 2 + (0.85,) for k in range(n_features)
    ]
    for row, depth in enumerate(depths):
        for s, (name, (lam, rho)) in enumerate(sets.items()):
            for o, objective in enumerate(OBJECTIVES):
                ax = axes[row, 2 * s + o]
                t_end = 3 * max(
                    critical_time(lv, rv, depth, objective, eps)
                    for lv, rv in zip(lam, rho, strict=True)
                )
                times = np.geomspace(t_end * 1e-3, t_end, n_times)
                w = encoder_trajectory(lam, rho, depth, objective, eps, np.r_[0.0, times])[1:]
                w_star = np.array([fixed_point(r, depth, objective).encoder for r in rho])
                for k in range(n_features):
                    ax.plot(
                        times,
                        w[:, k] / w_star[k],
                        color=colours[k],
                        label=f"$\\lambda$={lam[k]:g}, $\\rho$={rho[k]:g}",
                    )
                ax.set_xscale("log")
                ax.set_ylim(-0.03, 1.05)
                ax.set_title(f"{objective.upper()}, L={depth}\n{name}", fontsize=9)
                if row == len(depths) - 1:
                    ax.set_xlabel("GD time (steps x lr)")
                if s == 0 and o == 0:
                    ax.set_ylabel("$w_i(t) / w_i^*$")
                if row == 0:
                    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_critical_time_ratio(
    max_depth: int = 8,
    rho_low: float = 0.5,
    rho_high: float = 2.0,
    eps: float = 1e-3,
    pair: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.5), (0.6, 2.0)),
    pair_eps: float = 0.01,
    p: float = 0.5,
) -> Figure:
    """Left: t*(lambda, rho_low) / t*(lambda, rho_high) against depth for JEPA and MAE.
    Right: t*_A / t*_B for a pair (lambda, rho) against depth; below 1 means A is learned first."""
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    depths = np.arange(1, max_depth + 1)
    for objective, marker in zip(OBJECTIVES, ("o", "s"), strict=True):
        ratio = [
            critical_time(1.0, rho_low, d, objective, eps, p)
            / critical_time(1.0, rho_high, d, objective, eps, p)
            for d in depths
        ]
        left.plot(depths, ratio, marker=marker, label=objective.upper())
        valid = [d for d in depths if _critical_time_defined(pair, d, objective, pair_eps, p)]
        pair_ratio = [
            critical_time(*pair[0], d, objective, pair_eps, p)
            / critical_time(*pair[1], d, objective, pair_eps, p)
            for d in valid
        ]
        right.plot(valid, pair_ratio, marker=marker, label=objective.upper())
    left.set_yscale("log")
    left.set_xlabel("depth L")
    left.set_ylabel(f"t*($\\rho$={rho_low:g}) / t*($\\rho$={rho_high:g})")
    left.set_title(f"same $\\lambda$, eps={eps:g}, p={p:g}", fontsize=9)
    right.axhline(1.0, color="grey", lw=0.8, ls="--")
    right.set_xlabel("depth L")
    right.set_ylabel("$t^*_A / t^*_B$")
    right.set_title(f"A=$(\\lambda,\\rho)$={pair[0]}, B={pair[1]}, eps={pair_eps:g}", fontsize=9)
    for ax in (left, right):
        ax.legend(fontsize=8)
    return fig


def _critical_time_defined(pair, depth: int, objective: str, eps: float, p: float) -> bool:
    """True if both features of the pair have eps < p * w* at this depth (critical time defined)."""
    return all(eps < p * fixed_point(rho, depth, objective).encoder for _, rho in pair)
