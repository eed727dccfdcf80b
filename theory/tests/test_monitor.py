"""theory.monitor: the training monitor (total and between-group M by the bias-corrected copula)."""

import math

import numpy as np
import pytest
import torch

import theory
from theory.tasks import GaussianTask, block_correlation, blocks

SIZES = [4] * 4
TASK = GaussianTask(block_correlation(SIZES, 0.5, 0.2), groups=blocks(SIZES))


def test_monitor_matches_copula_and_closed_form():
    X = TASK.sample(4000, np.random.default_rng(0))
    out = theory.monitor(X, TASK.groups)
    assert out["method"] == "copula" and (out["N"], out["d"], out["groups"]) == (4000, 16, 4)
    assert out["total"] == pytest.approx(theory.multiinformation(X, method="copula"), abs=1e-12)
    assert out["between"] == pytest.approx(
        theory.multiinformation(X, method="copula", groups=TASK.groups), abs=1e-12
    )
    assert out["within"] == pytest.approx(out["total"] - out["between"], abs=1e-12)
    assert out["total"] == pytest.approx(TASK.total_value, rel=0.05)
    assert out["between"] == pytest.approx(TASK.true_value, rel=0.05)
    bits = theory.monitor(X, TASK.groups, base=2)
    assert bits["total"] == pytest.approx(out["total"] / math.log(2))


def test_monitor_is_unbiased_at_small_n():
    # N = 160, d = 16: the plug-in total errs high by about d^2/(4N) = 0.4 nats; the monitor not
    values = [
        theory.monitor(TASK.sample(160, np.random.default_rng(s)), TASK.groups)["total"]
        for s in range(40)
    ]
    assert np.mean(values) == pytest.approx(TASK.total_value, abs=3 * np.std(values) / 6)


def test_monitor_torch_input_not_mutated_and_deterministic():
    X = torch.from_numpy(TASK.sample(500, np.random.default_rng(1))).to(torch.bfloat16)
    before = X.clone()
    a, b = theory.monitor(X, TASK.groups), theory.monitor(X, TASK.groups)
    assert a == b and torch.equal(X, before)


def test_monitor_edge_cases():
    X = TASK.sample(300, np.random.default_rng(2))
    dup = np.column_stack([X, np.exp(X[:, 0])])  # a monotone copy: M is infinite
    out = theory.monitor(dup, [*TASK.groups, [16]])
    assert out["total"] == math.inf and out["between"] == math.inf
    with pytest.warns(UserWarning, match="constant"):
        out = theory.monitor(np.column_stack([X, np.ones(300)]), [*TASK.groups, [16]])
    assert out["dropped"] == 1 and out["groups"] == 4
    with pytest.raises(ValueError, match="more rows than channels"):
        theory.monitor(X[:10], TASK.groups)
