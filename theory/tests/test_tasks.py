"""The ground-truth tasks themselves: closed forms against Monte-Carlo and enumeration."""

import math

import numpy as np
import pytest
from scipy import stats

from theory.closed_forms import gaussian_multiinformation
from theory.tasks import (
    DiscreteTask,
    GaussianTask,
    StudentTTask,
    TransformedTask,
    ar1,
    bits,
    block_correlation,
    blocks,
    discrete_multiinformation,
    duplicated_bit,
    equicorrelated,
    noisy_copies,
    random_correlation,
    standard_tasks,
    student_t_multiinformation,
    xor_bits,
)


def monte_carlo(log_joint: np.ndarray, log_marginals: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of log p(x) - sum_g log p(x_g) over samples of p."""
    ratio = log_joint - log_marginals.sum(axis=1)
    return float(ratio.mean()), float(ratio.std(ddof=1) / math.sqrt(len(ratio)))


def test_gaussian_special_closed_forms() -> None:
    for d, rho in [(2, 0.3), (5, 0.7), (9, -0.1)]:
        expected = -0.5 * ((d - 1) * math.log(1 - rho) + math.log(1 + (d - 1) * rho))
        assert gaussian_multiinformation(equicorrelated(d, rho)) == pytest.approx(
            expected, rel=1e-10
        )
    for d, rho in [(2, 0.5), (10, 0.9), (7, -0.4)]:
        expected = -0.5 * (d - 1) * math.log(1 - rho**2)
        assert gaussian_multiinformation(ar1(d, rho)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d,nats", [(2, 0.2), (6, 1.0), (32, 5.0), (128, 20.0)])
def test_random_correlation_hits_target(d: int, nats: float) -> None:
    R = random_correlation(d, np.random.default_rng(d), nats)
    assert np.allclose(np.diag(R), 1.0) and np.allclose(R, R.T)
    assert np.linalg.eigvalsh(R)[0] > 0
    assert gaussian_multiinformation(R) == pytest.approx(nats, abs=1e-8)


def test_gaussian_task_matches_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    task = GaussianTask(random_correlation(5, rng, nats=0.8))
    X = task.sample(100_000, rng)
    log_joint = stats.multivariate_normal(np.zeros(5), task.R).logpdf(X)
    mean, se = monte_carlo(log_joint, stats.norm.logpdf(X))
    assert abs(mean - task.true_value) < 5 * se


def test_block_task_decomposition() -> None:
    sizes = [2, 3, 4]
    task = GaussianTask(block_correlation(sizes, 0.7, 0.25), groups=blocks(sizes))
    between, within = task.true_value, task.within_values
    assert 0 < between < task.total_value
    assert between + sum(within) == pytest.approx(task.total_value, rel=1e-12)
    for g, w in zip(blocks(sizes), within, strict=True):
        assert w == pytest.approx(gaussian_multiinformation(equicorrelated(len(g), 0.7)))


@pytest.mark.parametrize(
    "R,nu,groups",
    [
        (np.eye(6), 3.0, None),
        (ar1(4, 0.5), 5.0, None),
        (block_correlation([2, 2], 0.5, 0.2), 4.0, [[0, 1], [2, 3]]),
    ],
)
def test_student_t_closed_form_matches_monte_carlo(R, nu, groups) -> None:
    rng = np.random.default_rng(2)
    task = StudentTTask(R, nu, groups=groups)
    X = task.sample(200_000, rng)
    log_joint = stats.multivariate_t(np.zeros(task.dim), R, df=nu).logpdf(X)
    groups = groups or [[i] for i in range(task.dim)]
    log_marginals = np.column_stack(
        [
            stats.multivariate_t(np.zeros(len(g)), R[np.ix_(g, g)], df=nu).logpdf(X[:, g])
            for g in groups
        ]
    )
    mean, se = monte_carlo(log_joint, log_marginals)
    assert abs(mean - task.true_value) < 5 * se + 1e-3


def test_student_t_known_values_and_gaussian_limit() -> None:
    # The heavy-tailed task: nu = 3, d = 6, R = I has about 0.40 nats.
    assert student_t_multiinformation(np.eye(6), 3.0) == pytest.approx(0.3996, abs=1e-4)
    R = ar1(5, 0.6)
    assert student_t_multiinformation(R, 1e7) == pytest.approx(
        gaussian_multiinformation(R), abs=1e-5
    )
    # Heavier tails, more shared dependence through the common scale.
    values = [student_t_multiinformation(R, nu) for nu in (1.0, 3.0, 10.0, 100.0)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_transformed_task_applies_monotone_maps() -> None:
    base = GaussianTask(ar1(4, 0.5), groups=[[0, 1], [2, 3]])
    task = TransformedTask(base, maps=("exp", "cube", "arcsinh", "uniform"))
    X = base.sample(1000, np.random.default_rng(3))
    Y = task.sample(1000, np.random.default_rng(3))
    assert np.allclose(Y[:, 0], np.exp(X[:, 0])) and np.allclose(Y[:, 1], X[:, 1] ** 3)
    assert np.allclose(Y[:, 2], np.arcsinh(X[:, 2])) and np.allclose(
        Y[:, 3], stats.norm.cdf(X[:, 3])
    )
    assert task.true_value == base.true_value and task.groups == base.groups and task.dim == 4
    with pytest.raises(ValueError, match="unknown maps"):
        TransformedTask(base, maps=("log",))


def test_discrete_values_by_enumeration() -> None:
    log2 = math.log(2)
    assert duplicated_bit().true_value == pytest.approx(log2)
    assert xor_bits().true_value == pytest.approx(log2)
    assert DiscreteTask(bits(3), np.full(8, 1 / 8)).true_value == pytest.approx(0.0, abs=1e-12)
    # Two noisy copies: the mutual information of a binary symmetric channel, log 2 - h(p).
    p = 0.1
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert noisy_copies(2, p).true_value == pytest.approx(log2 - h)
    # Groups: X_3 = X_1 xor X_2 is a function of the pair (X_1, X_2).
    xor = xor_bits()
    assert discrete_multiinformation(xor.outcomes, xor.probs, [[0, 1], [2]]) == pytest.approx(log2)
    # Pairwise independent: any two of the three bits carry nothing about each other.
    pair = xor.outcomes[:, :2]
    assert discrete_multiinformation(pair, xor.probs) == pytest.approx(0.0, abs=1e-12)


def test_discrete_sampling_matches_pmf() -> None:
    task = noisy_copies(3, 0.2)
    X = task.sample(40_000, np.random.default_rng(4)).astype(int)
    codes = X @ (1 << np.arange(2, -1, -1))
    freq = np.bincount(codes, minlength=8) / len(codes)
    assert np.abs(freq - task.probs).max() < 0.01


def test_standard_suite_is_consistent() -> None:
    rng = np.random.default_rng(5)
    for task in standard_tasks():
        X = task.sample(50, rng)
        assert X.shape == (50, task.dim) and np.isfinite(X).all(), task.name
        assert task.true_value >= 0, task.name


def test_bad_task_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="positive definite"):
        GaussianTask(np.array([[1.0, 1.2], [1.2, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        GaussianTask(np.ones((2, 3)))
    with pytest.raises(ValueError, match="partition"):
        GaussianTask(np.eye(3), groups=[[0, 1]])
    with pytest.raises(ValueError, match="nu must be > 0"):
        StudentTTask(np.eye(2), nu=0.0)
    with pytest.raises(ValueError, match="sum to 1"):
        DiscreteTask(bits(2), np.full(4, 0.3))
    with pytest.raises(ValueError, match="rho"):
        equicorrelated(4, -0.5)
    with pytest.raises(ValueError, match="nats > 0"):
        random_correlation(4, np.random.default_rng(0), nats=0.0)
