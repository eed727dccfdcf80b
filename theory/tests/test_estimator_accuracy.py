"""Estimators against the ground-truth tasks, several seeds each.

Tolerances come from a measurement, not from hope: each (task, method) ran on 10 seeds (100..109)
at N = 2000 and the tolerance is |bias| + 4 sd of those runs, rounded up (numbers in the comments:
bias / sd in nats). The tests use other seeds (0, 1, 2). A tolerance therefore pins the estimator's
current accuracy: a change that makes it worse fails here.
"""

import math

import numpy as np
import pytest

import theory
from theory.tasks import (
    GaussianTask,
    StudentTTask,
    TransformedTask,
    noisy_copies,
    random_correlation,
    standard_tasks,
    xor_bits,
)

N = 2000
SEEDS = (0, 1, 2)
TASKS = {task.name: task for task in standard_tasks()}

# (task, method) -> tolerance in nats.
TOLERANCES = {
    ("gaussian-random-6", "gaussian"): 0.20,  # -0.001 / 0.048
    ("gaussian-random-6", "copula"): 0.20,  # -0.002 / 0.048
    ("gaussian-random-6", "ksg"): 0.25,  # -0.063 / 0.045
    ("gaussian-random-6", "kl"): 0.20,  # -0.000 / 0.046
    ("gaussian-equicorr-4", "gaussian"): 0.06,  # -0.002 / 0.013
    ("gaussian-equicorr-4", "copula"): 0.06,  # -0.003 / 0.012
    ("gaussian-equicorr-4", "ksg"): 0.09,  # +0.006 / 0.019
    ("gaussian-equicorr-4", "kl"): 0.17,  # +0.048 / 0.030
    ("gaussian-ar1-8", "gaussian"): 0.12,  # +0.000 / 0.029
    ("gaussian-ar1-8", "copula"): 0.12,  # -0.003 / 0.029
    ("gaussian-ar1-8", "ksg"): 0.30,  # -0.190 / 0.026: KSG underestimates strong dependence
    ("gaussian-blocks", "gaussian"): 0.05,  # +0.008 / 0.009
    ("gaussian-blocks", "copula"): 0.05,  # +0.008 / 0.009
    ("gaussian-blocks", "ksg"): 0.07,  # +0.009 / 0.013
    ("gaussian-blocks", "binned"): 0.06,  # -0.026 / 0.007
    ("gaussian-random-6+exp/cube/arcsinh/uniform", "copula"): 0.20,  # -0.002 / 0.048
    ("gaussian-random-6+exp/cube/arcsinh/uniform", "ksg"): 0.25,  # -0.063 / 0.045
    ("student-t-5-ar1-4", "ksg"): 0.13,  # -0.008 / 0.030
    ("noisy-copies-3-0.1", "binned"): 0.07,  # +0.004 / 0.016
    ("xor", "binned"): 0.01,  # +0.000 / 0.000
    ("xor", "auto"): 0.01,  # auto -> binned on discrete data
}


@pytest.mark.parametrize("task_name,method", sorted(TOLERANCES))
def test_estimator_within_measured_tolerance(task_name: str, method: str) -> None:
    task, tol = TASKS[task_name], TOLERANCES[task_name, method]
    for seed in SEEDS:
        X = task.sample(N, np.random.default_rng(seed))
        value = theory.multiinformation(X, method=method, groups=task.groups, seed=seed)
        assert abs(value - task.true_value) < tol, (task_name, method, seed, value, task.true_value)


def test_gaussian_estimators_miss_non_gaussian_dependence() -> None:
    """Gaussian and copula estimators see correlation only: a Student-t with R = I (0.40 nats) looks
    independent to them, and monotone maps fool the plain Gaussian estimator (copula is immune)."""
    student = TASKS["student-t-3-6"]
    transformed = TASKS["gaussian-random-6+exp/cube/arcsinh/uniform"]
    for seed in SEEDS:
        X = student.sample(N, np.random.default_rng(seed))
        assert theory.multiinformation(X, method="copula") < 0.02
        assert theory.multiinformation(X, method="gaussian") < student.true_value - 0.15
        Y = transformed.sample(N, np.random.default_rng(seed))
        assert theory.multiinformation(Y, method="gaussian") < transformed.true_value - 0.25


def test_estimates_are_reproducible_and_base_converts() -> None:
    task = TASKS["student-t-5-ar1-4"]
    X = task.sample(N, np.random.default_rng(0))
    for method in ("ksg", "kl"):
        a = theory.multiinformation(X, method=method, seed=7)
        assert theory.multiinformation(X, method=method, seed=7) == a
        assert theory.multiinformation(X, method=method, seed=7, base=2) == pytest.approx(
            a / math.log(2)
        )


def test_student_t_heavy_tail_target() -> None:
    """The issue's heavy-tail target: nu = 3, d = 6, N = 5000, truth 0.40 nats; some method should
    beat npeet-plus tc and plain KSG (40-50% and 56% off here) and aim for 15%. kl on normal scores
    (rank=True) does: 0.43-0.47 on seeds 0..4, mean error 12%."""
    task = StudentTTask(np.eye(6), nu=3.0)
    errors = []
    for seed in SEEDS:
        X = task.sample(5000, np.random.default_rng(seed))
        value = theory.multiinformation(X, method="kl", rank=True, seed=seed)
        errors.append(abs(value - task.true_value))
    assert np.mean(errors) < 0.15 * task.true_value and max(errors) < 0.2 * task.true_value, errors


def test_auto_meets_student_t_target() -> None:
    task = StudentTTask(np.eye(6), nu=3.0)
    X = task.sample(5000, np.random.default_rng(0))
    value = theory.multiinformation(X, method="auto", seed=0)
    assert abs(value - task.true_value) < 0.15 * task.true_value, value


# ---------------------------------------------------------------- heavier sweeps (pytest -m slow)


@pytest.mark.slow
@pytest.mark.parametrize("d", [16, 32, 64])
def test_copula_within_10_percent_on_gaussian_copula_tasks(d: int) -> None:
    base = GaussianTask(random_correlation(d, np.random.default_rng(d), nats=0.055 * d))
    task = TransformedTask(base)
    for seed in SEEDS:
        X = task.sample(10_000, np.random.default_rng(seed))
        value = theory.multiinformation(X, method="copula")
        assert abs(value - task.true_value) < 0.1 * task.true_value


@pytest.mark.slow
@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_auto_is_never_far_off_at_larger_n(task_name: str) -> None:
    """auto at N = 10000 on every standard task, within the worst N = 2000 tolerance (0.30 nats)
    except for the Student-t with nu = 3, where it must at least beat the Gaussian estimators."""
    task = TASKS[task_name]
    X = task.sample(10_000, np.random.default_rng(0))
    value = theory.multiinformation(X, method="auto", groups=task.groups, seed=0)
    if task_name == "student-t-3-6":
        assert value > theory.multiinformation(X, method="gaussian") + 0.05
    else:
        assert abs(value - task.true_value) < 0.30


@pytest.mark.slow
def test_discrete_tasks_converge_with_n() -> None:
    for task in (noisy_copies(4, 0.2), xor_bits()):
        errors = [
            abs(
                theory.multiinformation(task.sample(n, np.random.default_rng(1)), method="binned")
                - task.true_value
            )
            for n in (500, 50_000)
        ]
        assert errors[1] < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("nats", [2.0, 5.0])
def test_neural_on_wide_gaussian(nats: float) -> None:
    """The neural estimator on d = 64 (where kNN collapses): within 15% at N = 20000."""
    task = GaussianTask(random_correlation(64, np.random.default_rng(64), nats=nats))
    X = task.sample(20_000, np.random.default_rng(0))
    value = theory.multiinformation(X, method="neural", seed=0)
    assert abs(value - nats) < 0.15 * nats, value
