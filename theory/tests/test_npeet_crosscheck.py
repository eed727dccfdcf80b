"""Cross-check against npeet-plus (Ver Steeg's NPEET fork): `entropy`, `tc`, `mi`, on small data.

NPEET returns bits (base 2) by default and adds noise of size 1e-10 from the global numpy generator,
so each call is preceded by np.random.seed. Skipped when npeet-plus is not installed.
"""

import math
import warnings

import numpy as np
import pytest

import theory
from theory.knn import kl_entropy
from theory.tasks import GaussianTask, StudentTTask, TransformedTask, ar1, random_correlation

ee = pytest.importorskip("npeet_plus.estimators")
LN2 = math.log(2)


def standardised(X: np.ndarray) -> np.ndarray:
    """Unit-variance columns: our `kl` rescales columns first, NPEET does not; now they agree."""
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.mark.parametrize("d", [1, 3])
def test_kozachenko_leonenko_entropy_matches_npeet(d: int) -> None:
    X = np.random.default_rng(d).standard_normal((1500, d))
    np.random.seed(0)
    theirs = ee.entropy(X, k=3, base=2) * LN2
    assert kl_entropy(X, k=3) == pytest.approx(theirs, rel=1e-6)
    # ... and both are near the true entropy of N(0, I_d), d/2 log(2 pi e).
    assert theirs == pytest.approx(0.5 * d * math.log(2 * math.pi * math.e), abs=0.1 * d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_method_matches_npeet_tc(seed: int) -> None:
    task = GaussianTask(random_correlation(4, np.random.default_rng(10), nats=0.5))
    X = standardised(task.sample(1500, np.random.default_rng(seed)))
    np.random.seed(seed)
    theirs = ee.tc(X, k=3, base=2) * LN2
    ours = theory.multiinformation(X, method="kl", k=3, seed=seed)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert theory.multiinformation(X, method="kl", k=3, seed=seed, base=2) == pytest.approx(
        theirs / LN2, abs=1e-6
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ksg_agrees_with_npeet_mi_for_two_variables(seed: int) -> None:
    """Two scalar variables: KSG multiinformation is KSG mutual information (NPEET `mi`).

    Ours rank-transforms first (M is invariant), so the two differ by estimator noise only.
    Margins: 4x the largest difference between the two (0.017 nats) and 2x the largest error of
    ours (0.047) seen on seeds 10..19.
    """
    task = GaussianTask(ar1(2, 0.6))
    X = task.sample(1500, np.random.default_rng(seed))
    np.random.seed(seed)
    theirs = ee.mi(X[:, :1], X[:, 1:], k=3, base=2) * LN2
    ours = theory.multiinformation(X, method="ksg", k=3, seed=seed)
    assert ours == pytest.approx(theirs, abs=0.07)
    assert ours == pytest.approx(task.true_value, abs=0.1)


@pytest.mark.parametrize(
    "task,n",
    [
        (
            TransformedTask(GaussianTask(random_correlation(4, np.random.default_rng(4), 0.22))),
            1000,
        ),
        (GaussianTask(random_correlation(16, np.random.default_rng(16), 0.88)), 1000),
    ],
    ids=["copula-4", "gaussian-16"],
)
def test_ksg_error_below_npeet_tc(task, n: int) -> None:
    """d >= 4: NPEET's tc (separate Kozachenko-Leonenko entropies) is far off on monotone-
    transformed and on 16-dim data (benchmark, seed 0: 3.1 and 1.5 relative error), our ksg much
    less (0.12, 0.46)."""
    for seed in range(2):
        X = task.sample(n, np.random.default_rng(seed))
        np.random.seed(seed)
        theirs = abs(ee.tc(X, k=3, base=2) * LN2 - task.true_value)
        with warnings.catch_warnings():  # d = 16: ksg warns that plain kNN collapses there
            warnings.simplefilter("ignore", UserWarning)
            ours = abs(theory.multiinformation(X, method="ksg", seed=seed) - task.true_value)
        assert ours < 0.5 * theirs, (ours, theirs)


def test_ksg_beats_npeet_tc_on_student_t() -> None:
    """Heavy tails (nu = 3, d = 6, 0.40 nats, N = 5000): the issue's target is a lower error than
    NPEET's tc. Compared on the mean over three seeds: per seed the two are close (seed 0:
    0.165 vs 0.159 nats), over seeds 0..4 ksg is 0.16 off on average and tc 0.19."""
    task = StudentTTask(np.eye(6), nu=3.0)
    ours, theirs = [], []
    for seed in range(3):
        X = task.sample(5000, np.random.default_rng(seed))
        np.random.seed(seed)
        theirs.append(abs(ee.tc(X, k=3, base=2) * LN2 - task.true_value))
        ours.append(abs(theory.multiinformation(X, method="ksg", seed=seed) - task.true_value))
    assert np.mean(ours) < np.mean(theirs), (ours, theirs)
