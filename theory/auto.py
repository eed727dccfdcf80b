"""`auto`: the estimator chosen from the data, with the evidence for the choice (see _decide)."""

from __future__ import annotations

import numpy as np

from theory import corrected, knn
from theory.inputs import check_rows
from theory.plugin import (
    DISCRETE_MAX_VALUES,
    DISCRETE_MIN_COUNT,
    binned,
    copula,
    discrete_columns,
    gaussian,
)
from theory.scores import normal_scores

# `auto` keeps the Gaussian copula while the kNN discrepancy is within this many standard errors.
GAUSSIAN_MAX_Z = 3.0


def auto(
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
        bound = copula(X, blocks)
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
      the same seed, so that call reproduces it) while the kNN check does not reject the fit;
    - the kNN check rejects the fit (|z| > GAUSSIAN_MAX_Z) and no column is discrete -> the
      largest of copula, ksg, ksg_extrapolated and knn_corrected (see _largest); with discrete
      columns, ksg
      only where the corrected value is implausible (below 0, or a correction larger than the
      fit's M it corrects), else knn_corrected.
    """
    n, d = X.shape
    discrete = discrete_columns(X)
    if discrete.all():
        return (
            binned(X, blocks),
            "binned",
            f"all {d} columns discrete (at most min({DISCRETE_MAX_VALUES}, N/"
            f"{DISCRETE_MIN_COUNT}) = {min(DISCRETE_MAX_VALUES, n // DISCRETE_MIN_COUNT)} "
            "distinct values each): plug-in entropies with Miller-Madow",
        )
    check_rows("auto", n, d)
    screen = None
    if not discrete.any():
        Z = normal_scores(X)
        screen = corrected.gaussian_copula_screen(Z)
        if not screen.rejected:
            return (
                gaussian(Z, blocks),
                "copula",
                f"Gaussian copula not rejected by the {screen}; bias-corrected closed form on "
                "normal scores (copula)",
            )
    k = knn.neighbours("knn_corrected", k, n)
    knn.check_k("knn_corrected", n, k)
    res = corrected.knn_corrected(X, blocks, k, rng)
    z = res.discrepancy / res.se
    first = "" if screen is None else f"Gaussian copula rejected by the {screen}; "
    on = "" if res.rows == n else f" (on {res.rows} random rows of {n}: kNN cost ~ d rows^2)"
    check = (
        f"kNN correction from {res.references} simulated samples of the fit{on} "
        f"{res.discrepancy:+.4f} nats = {z:+.1f} se"
    )
    value = (
        f"value = the fit's M {res.model:.4f} + kNN correction {res.discrepancy:+.4f} "
        "(knn_corrected)"
    )
    chosen = (
        ""
        if (res.fit.rows, res.fit.columns) == (n, d)
        else f", nu chosen on {res.fit.rows} random rows x {res.fit.columns} columns"
    )
    if np.isinf(res.fit.nu):
        fit = (
            f"t copulas not preferred (2N log-likelihood gain {res.fit.lr:.1f} <= "
            f"{corrected.GAUSSIAN_LR_CRITICAL}{chosen})"
        )
    else:
        fit = (
            f"heavy-tailed: a t copula with nu = {res.fit.nu:g} fits better than the Gaussian "
            f"(2N log-likelihood gain {res.fit.lr:.1f} > {corrected.GAUSSIAN_LR_CRITICAL}"
            f"{chosen})"
        )
    implausible = res.value < 0 or abs(res.discrepancy) > max(res.model, 0)
    if abs(z) > GAUSSIAN_MAX_Z and (implausible or not discrete.any()):
        ksg_k = knn.neighbours("ksg", None, n)
        why = (
            "below 0"
            if res.value < 0
            else f"its correction {res.discrepancy:+.4f} is larger than the fit's M {res.model:.4f}"
        )
        rejected = (
            f"{first}{fit}; the kNN check rejects the fit ({check}, |z| > {GAUSSIAN_MAX_Z:g})"
        )
        # ksg on the check's number of rows (all of them unless N^2 d is large)
        rows = corrected.random_subset(n, res.rows, rng)
        candidates = {"ksg": knn.ksg(X[rows], blocks, ksg_k, rng)}
        if discrete.any():
            return (
                candidates["ksg"],
                "ksg",
                f"{rejected} and the corrected value {res.value:+.4f} is implausible ({why}): "
                "the correction carries the kNN bias of a rejected model; value = ksg "
                f"(k = {ksg_k}{on}, no model assumed; biased low in high dimension)",
            )
        extrapolated_k = knn.neighbours("ksg_extrapolated", None, len(rows))
        candidates["ksg_extrapolated"] = knn.ksg_extrapolated(X[rows], blocks, extrapolated_k, rng)
        candidates["copula"] = gaussian(Z, blocks)
        if not implausible:
            candidates["knn_corrected"] = res.value
        names = {
            "ksg": f"ksg (k = {ksg_k}{on})",
            "ksg_extrapolated": f"ksg_extrapolated (k = 1..{extrapolated_k}{on})",
        }
        return _largest(candidates, names, rejected, res.value, why)
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
    return (
        gaussian(Z, blocks),  # no column discrete, so the screen ran on these normal scores
        "copula",
        f"{first}but {fit} and the kNN check does not reject it: {check} "
        f"(|z| <= {GAUSSIAN_MAX_Z:g}); bias-corrected closed form on normal scores (copula)",
    )


def _largest(
    candidates: dict[str, float],
    names: dict[str, str],
    rejected: str,
    corrected_value: float,
    why: str,
) -> tuple[float, str, str]:
    """The largest of the candidate estimates, once the kNN check has rejected the fitted copula.

    No estimator on offer is then unbiased, and all but one err low on the data that get here:
    the copula sees only the dependence that survives as rank correlation (its value is a lower
    bound of M when every block but one has jointly Gaussian normal scores, one-column blocks
    always, and falls short by what curved or non-monotone maps hide from the ranks), and kNN
    estimates are biased low where the density bends within the neighbour balls (Gao et al.
    2015; plain ksg also in high dimension). knn_corrected then adds a correction simulated at a
    model the data reject: on curved data the data's kNN statistic carries more of that low bias
    than the model's samples, so the correction pulls the value below the copula's
    (Beyond-Normal's spiral on the unit cube, 3 x 3, mean of 3 samples: 0.75 against the
    copula's 0.83 and ksg's 0.90, truth 1.02); it is left out when implausible (below 0, or a
    correction larger than the M it corrects: the swiss roll read -1.85, ksg 0.41, truth 0.41).
    ksg_extrapolated removes the bending bias to second order in the ball's radius (spiral 3 x 3:
    0.95 where ksg reads 0.74); it fails in high dimension, where the balls are not small (-77%
    at d = 50), and there reads below the copula. The largest is the least wrong; it errs high
    by about one standard error of the noisiest candidate, or by ksg_extrapolated's own
    extrapolation error (at most +15% on the 40 Beyond-Normal tasks, one sample of each)."""
    method = max(candidates, key=candidates.__getitem__)
    listed = ", ".join(f"{names.get(m, m)} {v:+.4f}" for m, v in candidates.items())
    dropped = (
        ""
        if "knn_corrected" in candidates
        else f"; the corrected value {corrected_value:+.4f} is implausible ({why}) and left out"
    )
    return (
        candidates[method],
        method,
        f"{rejected}: the fit's kNN bias does not transfer, and the copula and plain kNN "
        "estimates err low on such data (curved or non-monotone dependence; ksg_extrapolated "
        f"removes the kNN part to second order){dropped}; the largest of {listed}: "
        f"value = {method}",
    )
