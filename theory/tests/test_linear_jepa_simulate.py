"""Full-matrix GD against the scalar theory: balancedness, trajectories, fixed points, samples."""

import numpy as np
import pytest

from theory.linear_jepa import (
    critical_time,
    empirical_covariances,
    encoder_trajectory,
    fixed_point,
    gd_step,
    initial_factors,
    population_covariances,
    sample_dynamic_two_view,
    sample_static_two_view,
    simulate,
    two_view_parameters,
)

LAM = np.array([1.0, 0.6, 0.8])
RHO = np.array([0.9, 1.3, 0.7])


def _horizon(depth, objective, eps, factor=3.0):
    return factor * max(
        critical_time(lam, rho, depth, objective, eps) for lam, rho in zip(LAM, RHO, strict=True)
    )


def _relative_trajectory_error(depth, objective, lr, eps=0.05):
    sigma_xx, sigma_yx = population_covariances(LAM, RHO)
    steps = int(_horizon(depth, objective, eps) / lr)
    sim = simulate(
        sigma_xx, sigma_yx, depth, objective, lr, steps, eps=eps, record_every=max(1, steps // 100)
    )
    off_diagonal = sim.encoder - np.einsum("tii->ti", sim.encoder)[:, :, None] * np.eye(3)
    assert np.abs(off_diagonal).max() == 0.0  # aligned init stays diagonal
    ode = encoder_trajectory(LAM, RHO, depth, objective, eps, sim.times)  # gd-time convention
    gd = np.einsum("tii->ti", sim.encoder)
    return np.abs(gd - ode).max() / np.abs(ode).max()


@pytest.mark.parametrize(
    "objective,depth", [("jepa", 1), ("jepa", 2), ("jepa", 3), ("mae", 1), ("mae", 2), ("mae", 3)]
)
def test_full_matrix_gd_matches_scalar_ode(objective, depth):
    assert _relative_trajectory_error(depth, objective, lr=0.02) < 0.015


def test_gd_error_is_first_order_in_lr():
    coarse = _relative_trajectory_error(2, "jepa", lr=0.04)
    fine = _relative_trajectory_error(2, "jepa", lr=0.02)
    assert 1.6 < coarse / fine < 2.4


def test_balancedness_conserved_to_order_of_step_size():
    sigma_xx, sigma_yx = population_covariances(LAM, RHO)
    for objective in ("jepa", "mae"):
        drifts = []
        for lr in (0.04, 0.02):
            sim = simulate(
                sigma_xx,
                sigma_yx,
                2,
                objective,
                lr,
                int(40 / lr),
                eps=0.3,
                init="orthogonal",
                rng=np.random.default_rng(1),
                record_every=50,
            )
            drifts.append(sim.balancedness_drift.max())
            assert np.abs(sim.encoder[-1]).max() > 0.1  # it did learn something
        assert drifts[1] < 5e-3
        assert 1.7 < drifts[0] / drifts[1] < 2.3  # drift = O(lr)
        aligned = simulate(sigma_xx, sigma_yx, 3, objective, 0.04, 1000, eps=0.3)
        assert aligned.balancedness_drift.max() < 1e-12


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_gd_fixed_points(depth):
    sigma_xx, sigma_yx = population_covariances(LAM, RHO)
    for objective in ("jepa", "mae"):
        steps = int(_horizon(depth, objective, 0.1, factor=8.0) / 0.1)
        sim = simulate(
            sigma_xx, sigma_yx, depth, objective, 0.1, steps, eps=0.1, record_every=steps
        )
        encoder, head = sim.encoder[-1], sim.head[-1]
        points = [fixed_point(rho, depth, objective) for rho in RHO]
        np.testing.assert_allclose(np.diag(encoder), [fp.encoder for fp in points], rtol=1e-6)
        if objective == "jepa":
            np.testing.assert_allclose(np.diag(head), RHO, rtol=1e-6)  # predictor -> rho
        else:
            np.testing.assert_allclose(np.diag(head @ encoder), RHO, rtol=1e-6)  # V W -> rho


def test_general_covariance_is_rotation_equivariant():
    # aligned init is a multiple of I, so rotated covariances give the rotated trajectory
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))
    sigma_xx, sigma_yx = population_covariances(LAM, RHO)
    rotated = simulate(
        rotation @ sigma_xx @ rotation.T,
        rotation @ sigma_yx @ rotation.T,
        2,
        "jepa",
        0.05,
        2000,
        eps=0.05,
        record_every=500,
    )
    plain = simulate(sigma_xx, sigma_yx, 2, "jepa", 0.05, 2000, eps=0.05, record_every=500)
    np.testing.assert_allclose(rotated.encoder, rotation @ plain.encoder @ rotation.T, atol=1e-10)


@pytest.mark.parametrize("model", ["static", "dynamic"])
def test_sampled_data_jepa_encoder_converges_to_rho_power(model):
    signal, noise, gamma = np.ones(3), np.array([0.3, 0.6, 1.0]), np.array([0.95, 0.9, 0.97])
    rng = np.random.default_rng(0)
    if model == "static":
        lam, rho = two_view_parameters(signal, noise)
        x, y = sample_static_two_view(1_000_000, signal, noise, rng)
    else:
        lam, rho = two_view_parameters(signal, noise, gamma)
        x, y = sample_dynamic_two_view(1_000_000, signal, noise, gamma, rng)
    sigma_xx, sigma_yx = empirical_covariances(x, y)
    depth, lr, eps = 2, 0.2, 0.02
    t_end = 3 * max(critical_time(a, b, depth, "jepa", eps) for a, b in zip(lam, rho, strict=True))
    steps = int(t_end / lr)
    encoder = simulate(
        sigma_xx, sigma_yx, depth, "jepa", lr, steps, eps=eps, record_every=steps
    ).encoder[-1]
    target = np.diag(rho**depth)
    assert np.abs(encoder - target).max() / target.max() < 0.01  # measured 0.6% (static)
    np.testing.assert_allclose(np.diag(encoder), rho**depth, rtol=0.01)


def test_inputs_are_not_mutated_and_bad_input_raises():
    factors = initial_factors(3, 2, 0.1, "orthogonal", np.random.default_rng(0))
    before = [f.copy() for f in factors]
    sigma_xx, sigma_yx = population_covariances(LAM, RHO)
    cov_before = sigma_xx.copy(), sigma_yx.copy()
    gd_step(factors, sigma_xx, sigma_yx, "jepa", 0.1)
    simulate(sigma_xx, sigma_yx, 2, "mae", 0.1, 10)
    assert all(np.array_equal(a, b) for a, b in zip(factors, before, strict=True))
    assert np.array_equal(sigma_xx, cov_before[0]) and np.array_equal(sigma_yx, cov_before[1])
    with pytest.raises(ValueError, match="square"):
        simulate(sigma_xx, sigma_yx[:2], 2, "jepa", 0.1, 10)
    with pytest.raises(ValueError, match="NaN"):
        simulate(sigma_xx * np.nan, sigma_yx, 2, "jepa", 0.1, 10)
    with pytest.raises(ValueError, match="objective"):
        simulate(sigma_xx, sigma_yx, 2, "simclr", 0.1, 10)
    with pytest.raises(ValueError, match="init"):
        simulate(sigma_xx, sigma_yx, 2, "jepa", 0.1, 10, init="xavier")
    with pytest.raises(TypeError, match="Generator"):
        simulate(sigma_xx, sigma_yx, 2, "jepa", 0.1, 10, init="orthogonal", rng=0)
    with pytest.raises(FloatingPointError, match="lower lr"):
        simulate(sigma_xx, sigma_yx, 2, "jepa", 50.0, 200, eps=0.5)
    with pytest.raises(ValueError, match="gamma"):
        sample_dynamic_two_view(10, [1.0], [0.5], [1.2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="equal shape"):
        empirical_covariances(np.ones((4, 2)), np.ones((4, 3)))
