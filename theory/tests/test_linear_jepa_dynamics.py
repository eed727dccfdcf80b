"""Per-feature ODEs, fixed points, critical times and learning order (REFERENCE section 6)."""

import numpy as np
import pytest

from theory.linear_jepa import (
    critical_time,
    critical_time_series,
    encoder_rhs,
    encoder_trajectory,
    fixed_point,
    inversion_depth,
    learned_first,
    order_survey,
    sample_feature_pairs,
)

FEATURE_A = (1.0, 0.5)  # (lambda, rho): high covariance, low regression coefficient
FEATURE_B = (0.6, 2.0)
# REFERENCE section 6 half-times (eps = 0.01, p = 0.5, plain GD time): depth -> (A, B)
REFERENCE_HALF_TIMES = {
    "jepa": {1: (103.8, 169.4), 2: (464.6, 601.5), 3: (881.2, 831.4), 4: (1351.5, 924.8)},
    "mae": {1: (3.7, 7.3), 2: (8.6, 15.2), 3: (10.1, 17.4)},
}
DEPTHS = [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_reference_half_times(objective):
    for depth, expected in REFERENCE_HALF_TIMES[objective].items():
        got = [critical_time(*f, depth, objective, eps=0.01, p=0.5) for f in (FEATURE_A, FEATURE_B)]
        np.testing.assert_allclose(got, expected, atol=0.051)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_exact_critical_time_matches_ode_hitting_time(objective, depth):
    for lam, rho in [FEATURE_A, FEATURE_B, (0.3, 1.1)]:
        closed = critical_time(lam, rho, depth, objective, eps=0.01, p=0.5)
        quad = critical_time(lam, rho, depth, objective, eps=0.01, p=0.5, method="quad")
        ode = critical_time(lam, rho, depth, objective, eps=0.01, p=0.5, method="ode")
        assert abs(quad / closed - 1) < 1e-9
        assert abs(ode / closed - 1) < 1e-6


def test_paper_time_is_depth_times_gd_time():
    for depth in (1, 3):
        gd = critical_time(*FEATURE_B, depth, "jepa", eps=0.01)
        paper = critical_time(*FEATURE_B, depth, "jepa", eps=0.01, convention="paper")
        assert paper == pytest.approx(depth * gd, rel=1e-12)
        times = np.linspace(0.0, gd, 5)
        w_gd = encoder_trajectory([0.6], [2.0], depth, "mae", 0.01, times)
        w_paper = encoder_trajectory(
            [0.6], [2.0], depth, "mae", 0.01, depth * times, convention="paper"
        )
        np.testing.assert_allclose(w_gd, w_paper, rtol=1e-7)
        w = np.array([0.05, 0.3])
        np.testing.assert_allclose(
            encoder_rhs(w, 0.6, 2.0, depth, "jepa", "gd"),
            depth * encoder_rhs(w, 0.6, 2.0, depth, "jepa", "paper"),
        )


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_fixed_points(depth):
    rho = 1.3
    jepa, mae = fixed_point(rho, depth, "jepa"), fixed_point(rho, depth, "mae")
    assert jepa.encoder == pytest.approx(rho**depth) and jepa.head == pytest.approx(rho)
    assert mae.encoder == pytest.approx(rho ** (depth / (depth + 1)))
    assert mae.prediction == pytest.approx(rho)
    for objective, fp in (("jepa", jepa), ("mae", mae)):
        assert encoder_rhs(fp.encoder, 0.7, rho, depth, objective) == pytest.approx(0, abs=1e-12)
        t_end = 20 * critical_time(0.7, rho, depth, objective, eps=0.01)
        w_end = encoder_trajectory([0.7], [rho], depth, objective, 0.01, [0.0, t_end])[-1, 0]
        assert w_end == pytest.approx(fp.encoder, rel=1e-6)


@pytest.mark.parametrize(
    "objective,depth", [("jepa", 1), ("jepa", 2), ("jepa", 4), ("mae", 2), ("mae", 3), ("mae", 4)]
)
def test_series_agrees_to_leading_order(objective, depth):
    for rho in (0.5, 2.0):
        errors = []
        for k in (1, 2, 3):  # eps^(1/L) = 10^-k
            eps = 10.0 ** (-k * depth)
            exact = critical_time(1.0, rho, depth, objective, eps)
            errors.append(abs(critical_time_series(1.0, rho, depth, objective, eps) / exact - 1))
        assert errors[0] > errors[1] > errors[2] or errors[0] < 1e-12
        assert errors[2] < 1e-2  # JEPA L = 1: eps ln(1/eps) / rho relative remainder


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_mae_rho_agnostic_at_leading_order(depth):
    gaps = []
    for eps in (10.0 ** (-depth), 10.0 ** (-3 * depth)):
        low, high = (critical_time(1.0, rho, depth, "mae", eps) for rho in (0.5, 2.0))
        gaps.append(abs(low / high - 1))
    assert gaps[1] < gaps[0] and gaps[1] < 1e-3
    series = [critical_time_series(1.0, rho, depth, "mae", 0.01) for rho in (0.5, 2.0)]
    assert series[0] == series[1]


def test_jepa_critical_time_decreases_in_rho_and_ratio_grows_with_depth():
    rhos = np.linspace(0.6, 3.0, 9)
    ratios = []
    for depth in DEPTHS:
        times = np.array([critical_time(1.0, r, depth, "jepa", eps=0.01) for r in rhos])
        assert np.all(np.diff(times) < 0)
        ratios.append(times[0] / times[-1])
    assert np.all(np.diff(ratios) > 0)
    assert ratios[0] < 1.05  # L = 1: rho enters at O(log eps) only, lambda decides
    assert ratios[-1] > 3.0


def test_reference_order_inversion():
    assert [learned_first(FEATURE_A, FEATURE_B, d, "jepa", 0.01) for d in (1, 2, 3, 4, 5)] == [
        0,
        0,
        1,
        1,
        1,
    ]
    assert inversion_depth(FEATURE_A, FEATURE_B, "jepa", eps=0.01, max_depth=5) == 3
    assert inversion_depth(FEATURE_A, FEATURE_B, "mae", eps=0.01, max_depth=8) is None
    with pytest.raises(ValueError, match="choose eps"):  # p rho_A^6 < eps at L = 6
        critical_time(*FEATURE_A, 6, "jepa", eps=0.01)


def test_random_pair_search_lambda_ratio_at_least_1_5():
    # rho log-uniform on [0.6, 3] keeps eps = 0.01 < p rho^L for every L <= 6
    pairs = sample_feature_pairs(np.random.default_rng(0), 1000, (1.5, 3.0), (0.6, 3.0))
    mae = order_survey(pairs, DEPTHS, "mae", eps=0.01)
    jepa = order_survey(pairs, DEPTHS, "jepa", eps=0.01)
    assert not mae.any()  # MAE always learns the higher-lambda feature first
    assert not jepa[:, 0].any()  # L = 1 JEPA is lambda-greedy
    assert jepa.any(axis=1).mean() > 0.05  # measured 0.105 (2000 pairs, seed 0)
    assert np.all(np.diff(jepa.mean(axis=0)) >= 0)  # inversions grow with depth


def test_mae_reorders_close_lambdas_at_finite_eps():
    pairs = sample_feature_pairs(np.random.default_rng(1), 1000, (1.2, 1.2), (0.25, 4.0))
    at_01 = order_survey(pairs, DEPTHS, "mae", eps=0.01)
    rate = at_01.any(axis=1).mean()
    assert 0.03 < rate < 0.25  # measured 0.11 (2000 pairs), about 1 in 9
    assert not at_01[:, 2:].any()  # the rho-correction is too small from L = 3 on
    assert not order_survey(pairs, DEPTHS, "mae", eps=1e-4).any()  # and it vanishes as eps -> 0


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="objective"):
        critical_time(1.0, 0.5, 2, "byol", 0.01)
    with pytest.raises(ValueError, match="choose eps"):
        critical_time(1.0, 0.1, 2, "jepa", 0.01)
    with pytest.raises(ValueError, match="p must"):
        critical_time(1.0, 0.5, 2, "jepa", 0.01, p=1.5)
    with pytest.raises(ValueError, match="depth"):
        critical_time(1.0, 0.5, 0, "jepa", 0.01)
    with pytest.raises(ValueError, match="rho"):
        critical_time(1.0, float("nan"), 2, "jepa", 0.01)
    with pytest.raises(ValueError, match="method"):
        critical_time(1.0, 0.5, 2, "jepa", 0.01, method="euler")
    with pytest.raises(ValueError, match="convention"):
        critical_time(1.0, 0.5, 2, "jepa", 0.01, convention="seconds")
    with pytest.raises(TypeError, match="Generator"):
        sample_feature_pairs(0, 3, (1.5, 2), (0.5, 2))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        order_survey(np.ones((3, 3)), [1], "jepa", 0.01)
