"""Lemma B (grouping, chain rule): M(X_1..X_n) = M(X_S1, .., X_SG) + sum_g M(X_Sg).

Hence between-group M <= total, with equality iff every group is internally independent.
Exact for the closed forms (Gaussian, Student-t, discrete); reported as a residual by estimators.
"""

import math

import numpy as np
import pytest

import theory
from theory.closed_forms import gaussian_multiinformation
from theory.tasks import (
    GaussianTask,
    bits,
    block_correlation,
    blocks,
    discrete_multiinformation,
    random_correlation,
    student_t_multiinformation,
)


def random_partition(d: int, rng: np.random.Generator) -> list[list[int]]:
    labels = rng.permutation(np.resize(np.arange(int(rng.integers(2, d + 1))), d))
    return [list(np.flatnonzero(labels == g)) for g in np.unique(labels)]


def within_gaussian(R: np.ndarray, groups: list[list[int]]) -> list[float]:
    return [gaussian_multiinformation(R[np.ix_(g, g)]) if len(g) > 1 else 0.0 for g in groups]


def block_whiten(R: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Apply L_g^{-1} inside each group (R_gg = L_g L_g^T): the groups become internally white."""
    W = np.zeros_like(R)
    for g in groups:
        W[np.ix_(g, g)] = np.linalg.inv(np.linalg.cholesky(R[np.ix_(g, g)]))
    return W @ R @ W.T


def test_gaussian_chain_rule_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(120):
        d = int(rng.integers(2, 16))
        R = random_correlation(d, rng, nats=float(rng.uniform(0.05, 6.0)))
        groups = random_partition(d, rng)
        total, between = gaussian_multiinformation(R), gaussian_multiinformation(R, groups)
        within = within_gaussian(R, groups)
        assert total == pytest.approx(between + sum(within), abs=1e-9)
        assert between <= total + 1e-12
        if any(w > 1e-9 for w in within):
            assert between < total


def test_gaussian_equality_iff_groups_internally_independent() -> None:
    """Block-whitening keeps the between-group value (invertible map per group), zeroes within."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        d = int(rng.integers(3, 12))
        R = random_correlation(d, rng, nats=float(rng.uniform(0.1, 4.0)))
        groups = random_partition(d, rng)
        white = block_whiten(R, groups)
        assert gaussian_multiinformation(white, groups) == pytest.approx(
            gaussian_multiinformation(R, groups), abs=1e-9
        )
        assert gaussian_multiinformation(white) == pytest.approx(
            gaussian_multiinformation(white, groups), abs=1e-9
        )


def test_student_t_chain_rule_and_uncorrelated_is_not_independent() -> None:
    """Within-group M of a t block is M of t_nu(0, R_gg); with R = I the groups are uncorrelated but
    still dependent (shared scale), so between < total: equality needs independence, not just
    zero correlation.
    """
    rng = np.random.default_rng(2)
    for nu in (1.5, 3.0, 10.0):
        for _ in range(30):
            d = int(rng.integers(3, 10))
            R = random_correlation(d, rng, nats=float(rng.uniform(0.1, 3.0)))
            groups = random_partition(d, rng)
            within = [
                student_t_multiinformation(R[np.ix_(g, g)], nu) if len(g) > 1 else 0.0
                for g in groups
            ]
            total = student_t_multiinformation(R, nu)
            between = student_t_multiinformation(R, nu, groups)
            assert total == pytest.approx(between + sum(within), abs=1e-9)
        eye = np.eye(6)
        assert student_t_multiinformation(eye, nu, blocks([3, 3])) < student_t_multiinformation(
            eye, nu
        )


def test_discrete_chain_rule_exact() -> None:
    rng = np.random.default_rng(3)
    outcomes = bits(5)
    for _ in range(100):
        probs = rng.dirichlet(np.full(32, 0.4))
        groups = random_partition(5, rng)
        within = [
            discrete_multiinformation(outcomes[:, g], probs) if len(g) > 1 else 0.0 for g in groups
        ]
        between = discrete_multiinformation(outcomes, probs, groups)
        total = discrete_multiinformation(outcomes, probs)
        assert total == pytest.approx(between + sum(within), abs=1e-12)
        assert between <= total + 1e-12


def test_discrete_equality_when_groups_internally_independent() -> None:
    """Groups of independent bits, dependent across groups: between == total.

    A1, A2 iid fair bits; B1 a noisy copy of A1, B2 of A2. Columns (A1, B2, A2, B1), groups
    {A1, B2} and {A2, B1}: each group is internally independent, all dependence is between groups.
    """
    outcomes = bits(4)
    probs = np.array(
        [
            0.25 * (0.9 if a1 == b1 else 0.1) * (0.8 if a2 == b2 else 0.2)
            for a1, b2, a2, b1 in outcomes
        ]
    )
    groups = [[0, 1], [2, 3]]
    assert discrete_multiinformation(outcomes[:, [0, 1]], probs) == pytest.approx(0.0, abs=1e-12)
    assert discrete_multiinformation(outcomes[:, [2, 3]], probs) == pytest.approx(0.0, abs=1e-12)
    assert discrete_multiinformation(outcomes, probs, groups) == pytest.approx(
        discrete_multiinformation(outcomes, probs), abs=1e-12
    )


# ---------------------------------------------------------------- estimators via theory.decompose


def test_decompose_gaussian_method_identity_is_exact() -> None:
    sizes = [2, 3, 3]
    task = GaussianTask(block_correlation(sizes, 0.6, 0.2), groups=blocks(sizes))
    X = task.sample(5000, np.random.default_rng(4))
    result = theory.decompose(X, task.groups, method="gaussian")
    total, between, within, residual = _fields(result)
    assert abs(residual) < 1e-9
    assert total == pytest.approx(between + sum(within), abs=1e-9)
    assert between == pytest.approx(task.true_value, abs=0.03)
    assert total == pytest.approx(task.total_value, abs=0.05)
    for w, w_true in zip(within, task.within_values, strict=True):
        assert w == pytest.approx(w_true, abs=0.03)


@pytest.mark.parametrize("seed", [0, 1])
def test_decompose_ksg_reports_small_residual(seed: int) -> None:
    sizes = [2, 2, 2]
    task = GaussianTask(block_correlation(sizes, 0.5, 0.2), groups=blocks(sizes))
    X = task.sample(2000, np.random.default_rng(seed))
    total, between, within, residual = _fields(theory.decompose(X, task.groups, method="ksg"))
    assert math.isfinite(residual) and abs(residual) < 0.15
    assert between <= total + 0.1
    assert between == pytest.approx(task.true_value, abs=0.12)


def _fields(result) -> tuple[float, float, list[float], float]:
    get = result.__getitem__ if isinstance(result, dict) else lambda key: getattr(result, key)
    return get("total"), get("between"), list(get("within")), get("residual")


def test_grouping_identity_of_notebook_05_is_exact_and_mixing_raises_m() -> None:
    """The rows notebook 05 prints: exact total = between + sum within, estimates close to exact;
    the mixing map (x1, x2) -> (x1, x1) takes M from 0 to log 2."""
    from theory.lemmas import grouping_identity, mixing_counterexample

    for row in grouping_identity(np.random.default_rng(0), n=2000):
        exact = row["exact_between"] + row["exact_within"]
        assert row["exact_total"] == pytest.approx(exact, abs=1e-12) and row["exact_total"] > 0.05
        assert abs(row["est_residual"]) < 1e-10
        assert row["est_total"] == pytest.approx(row["exact_total"], abs=0.05)
    mixing = mixing_counterexample(np.random.default_rng(0), n=4000)
    assert mixing["exact_before"] == 0.0 and mixing["exact_after"] == pytest.approx(math.log(2))
    assert abs(mixing["estimate_before"]) < 0.01
    assert mixing["estimate_after"] == pytest.approx(math.log(2), abs=0.01)
