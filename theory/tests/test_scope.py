"""The scope of Lemma A: it holds for component-wise processing only; mixing maps can raise M.

Why the lemma needs component-wise processing: the DPI argument pushes P_X and prod_i P_{X_i}
through the same channel, and only a product channel K = prod_i K_i maps a product of marginals to
a product of marginals. A map that mixes coordinates sends prod_i P_{X_i} to something that is no
longer the product of the output marginals, so nothing bounds M(Y) by M(X):
- X_1, X_2 iid fair bits have M = 0, while Y = (X_1, X_1) has M = log 2 (exact, by enumeration);
- two independent Gaussians of unequal variance (M = 0) rotated by 45 degrees become correlated,
  M = -1/2 log(1 - rho^2) with rho = (l1 - l2)/(l1 + l2); a linear layer W gives M = M(corr(W W^T)).
Linear layers and attention mix coordinates, so the lemma does not bound M across them.
"""

import math

import numpy as np
import pytest

import theory
from theory.closed_forms import gaussian_multiinformation
from theory.tasks import DiscreteTask, bits, discrete_multiinformation, duplicated_bit, xor_bits


def push_forward_map(task: DiscreteTask, f) -> tuple[np.ndarray, np.ndarray]:
    """Exact pmf of Y = f(X) (f acts on a whole outcome row) by enumeration."""
    images = np.array([f(x) for x in task.outcomes])
    outcomes, inverse = np.unique(images, axis=0, return_inverse=True)
    return outcomes, np.bincount(inverse.ravel(), weights=task.probs)


def test_duplicating_a_coordinate_raises_m_from_zero_to_log2() -> None:
    independent = DiscreteTask(bits(2), np.full(4, 0.25))
    assert independent.true_value == pytest.approx(0.0, abs=1e-12)
    outcomes, probs = push_forward_map(independent, lambda x: (x[0], x[0]))
    assert discrete_multiinformation(outcomes, probs) == pytest.approx(math.log(2))
    assert duplicated_bit().true_value == pytest.approx(math.log(2))


def test_mixing_bijection_raises_m_while_component_wise_maps_cannot() -> None:
    """(X1, X2, X3) iid bits -> (X1, X2, X1 xor X2 xor X3) is a bijection with M = 0 -> 0, but
    (X1, X2, X3) -> (X1, X2, X1 xor X2) mixes and raises M to log 2; no map acting on each bit alone
    can leave M = 0 (a product of independent channels keeps independence)."""
    independent = DiscreteTask(bits(3), np.full(8, 1 / 8))
    outcomes, probs = push_forward_map(independent, lambda x: (x[0], x[1], x[0] ^ x[1] ^ x[2]))
    assert discrete_multiinformation(outcomes, probs) == pytest.approx(0.0, abs=1e-12)
    outcomes, probs = push_forward_map(independent, lambda x: (x[0], x[1], x[0] ^ x[1]))
    assert discrete_multiinformation(outcomes, probs) == pytest.approx(xor_bits().true_value)
    for flips in bits(3):  # every component-wise bijection of bits: still independent
        outcomes, probs = push_forward_map(independent, lambda x, f=flips: x ^ f)
        assert discrete_multiinformation(outcomes, probs) == pytest.approx(0.0, abs=1e-12)


def test_gaussian_rotation_raises_m() -> None:
    l1, l2 = 4.0, 1.0
    cov = np.diag([l1, l2])
    assert gaussian_multiinformation(cov) == pytest.approx(0.0, abs=1e-12)
    c = s = math.sqrt(0.5)
    Q = np.array([[c, -s], [s, c]])
    rho = (l1 - l2) / (l1 + l2)
    assert gaussian_multiinformation(Q @ cov @ Q.T) == pytest.approx(-0.5 * math.log(1 - rho**2))
    # The Gaussian estimator sees the same increase on samples.
    X = np.random.default_rng(0).standard_normal((20_000, 2)) * np.sqrt([l1, l2])
    assert theory.multiinformation(X, method="gaussian") < 0.01
    assert theory.multiinformation(X @ Q.T, method="gaussian") == pytest.approx(
        -0.5 * math.log(1 - rho**2), abs=0.02
    )


def test_linear_layer_can_create_any_amount_of_m() -> None:
    """Y = W X, X ~ N(0, I) (M = 0): M(Y) = M(corr(W W^T)), arbitrarily large as W degenerates."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((8, 8))
    values = [
        gaussian_multiinformation((W + t * np.ones((8, 8))) @ (W + t * np.ones((8, 8))).T)
        for t in (0.0, 1.0, 10.0, 100.0)
    ]
    assert values[0] > 0 and all(b > a for a, b in zip(values, values[1:], strict=False))
