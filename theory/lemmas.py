"""The paper's lemmas, numerically: exact values wherever a closed form or an enumeration exists.

- Lemma A (data processing): a component-wise channel K(y|x) = prod_i K_i(y_i | x_i) never raises
  multiinformation, M(Y) <= M(X). `dpi_experiment` checks it on random channels, Gaussian (added
  noise per coordinate) and discrete (random stochastic or deterministic maps per coordinate).
- Its scope: a map that mixes coordinates can raise M (`mixing_counterexample`).
- Lemma B (grouping): M = M(between groups) + sum_g M(within g) (`grouping_identity`).

Pure numpy: randomness comes from the Generator passed in, results are in nats. Notebook 05
draws them (`sparsejepa.figures.lemmas`); theory/tests/test_dpi.py uses `push_forward` and
`tensor_multiinformation`.
"""

from __future__ import annotations

import math

import numpy as np

from theory.closed_forms import gaussian_multiinformation
from theory.estimators import decompose, multiinformation
from theory.tasks import (
    DiscreteTask,
    bits,
    block_correlation,
    blocks,
    discrete_multiinformation,
    duplicated_bit,
    random_correlation,
)

GROUPING_CASES = (  # (block sizes, correlation within a block, correlation between blocks)
    ((2, 2, 2), 0.6, 0.1),
    ((3, 3), 0.5, 0.3),
    ((4, 2, 2), 0.5, 0.0),
    ((2, 2, 2, 2), 0.2, 0.15),
)


def push_forward(joint: np.ndarray, channels: list[np.ndarray]) -> np.ndarray:
    """P_Y(y) = sum_x P_X(x) prod_i K_i[x_i, y_i]: a joint pmf tensor through a product channel of
    row-stochastic matrices K_i (one per axis)."""
    for axis, kernel in enumerate(channels):
        joint = np.moveaxis(np.tensordot(joint, kernel, axes=([axis], [0])), -1, axis)
    return joint


def tensor_multiinformation(joint: np.ndarray, groups=None) -> float:
    """Exact M (nats) of a joint pmf tensor, one variable per axis (or per group of axes)."""
    outcomes = np.indices(joint.shape).reshape(joint.ndim, -1).T
    return discrete_multiinformation(outcomes, joint.ravel(), groups)


def dpi_experiment(rng: np.random.Generator, n_channels: int = 200) -> dict[str, np.ndarray]:
    """Lemma A on random component-wise channels, exact values (no estimator):
    "gaussian": X Gaussian with a random correlation, Y = X + independent noise per coordinate;
    "discrete": a random pmf on small alphabets through random stochastic (odd trials) or
    deterministic (even trials) maps per coordinate. Each value is an (n_channels, 2) array of
    (M(X), M(Y)) in nats."""
    gaussian, discrete = [], []
    for i in range(n_channels):
        d = int(rng.integers(2, 10))
        corr = random_correlation(d, rng, nats=float(rng.uniform(0.05, 3.0)))
        noise = rng.exponential(1.0, size=d) * rng.choice([0.01, 0.1, 1.0, 10.0])
        gaussian.append(
            (gaussian_multiinformation(corr), gaussian_multiinformation(corr + np.diag(noise)))
        )
        sizes = tuple(int(s) for s in rng.integers(2, 5, size=int(rng.integers(2, 4))))
        joint = rng.dirichlet(np.full(math.prod(sizes), 0.3)).reshape(sizes)
        if i % 2:
            channels = [rng.dirichlet(np.ones(int(rng.integers(2, 5))), size=s) for s in sizes]
        else:
            channels = [np.eye(s)[rng.integers(0, s, size=s)] for s in sizes]
        discrete.append(
            (tensor_multiinformation(joint), tensor_multiinformation(push_forward(joint, channels)))
        )
    return {"gaussian": np.array(gaussian), "discrete": np.array(discrete)}


def mixing_counterexample(rng: np.random.Generator, n: int = 20000) -> dict[str, float]:
    """X1, X2 iid fair bits (M = 0) mapped by the mixing map (x1, x2) -> (x1, x1) (M = log 2):
    exact values and the plug-in ("binned", deterministic) estimates from n samples."""
    independent = DiscreteTask(bits(2), np.full(4, 0.25))
    x = independent.sample(n, rng)
    y = x[:, [0, 0]]
    return {
        "exact_before": independent.true_value, "exact_after": duplicated_bit().true_value,
        "estimate_before": multiinformation(x, method="binned"),
        "estimate_after": multiinformation(y, method="binned"),
    }  # fmt: skip


def grouping_identity(rng: np.random.Generator, n: int = 5000) -> list[dict]:
    """Lemma B (total = between + sum within) on the block-correlated Gaussians of GROUPING_CASES:
    exact terms from the correlation matrix and `decompose(method="gaussian")` (deterministic)
    estimates from n samples."""
    rows = []
    for sizes, within, between in GROUPING_CASES:
        corr = block_correlation(sizes, within, between)
        groups = blocks(sizes)
        exact_within = sum(gaussian_multiinformation(corr[np.ix_(g, g)]) for g in groups)
        x = rng.multivariate_normal(np.zeros(len(corr)), corr, size=n)
        est = decompose(x, groups, method="gaussian")
        rows.append({
            "blocks": sizes, "within_corr": within, "between_corr": between,
            "exact_total": gaussian_multiinformation(corr),
            "exact_between": gaussian_multiinformation(corr, groups),
            "exact_within": exact_within,
            "est_total": est.total, "est_between": est.between, "est_within": sum(est.within),
            "est_residual": est.residual,
        })  # fmt: skip
    return rows
