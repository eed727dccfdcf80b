"""Var-T-JEPA ELBO pieces: closed-form KLs against Monte Carlo, likelihoods, the JEPA limit."""

import math

import pytest
import torch

from sparsejepa.gaussian import gaussian_kl, gaussian_kl_diag, gaussian_log_prob, reparameterise
from sparsejepa.tabular.config import from_dict
from sparsejepa.tabular.data import load_table
from sparsejepa.tabular.masks import sample_feature_masks
from sparsejepa.tabular.models import VarTJEPA, categorical_log_prob, elbo_loss


def test_diagonal_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p, lv_q, lv_p = torch.randn(4, 5, generator=g, dtype=torch.float64).unbind(0)
    n = 400_000
    s = reparameterise(mu_q.expand(n, -1), lv_q.expand(n, -1), g)
    log_ratio = (gaussian_log_prob(s, mu_q, lv_q) - gaussian_log_prob(s, mu_p, lv_p)).sum(1)
    mc, se = log_ratio.mean(), log_ratio.std() / math.sqrt(n)
    exact = gaussian_kl_diag(mu_q, lv_q, mu_p, lv_p)
    assert exact > 0
    assert abs(mc - exact) < 4 * se, (float(mc), float(exact), float(se))


def test_standard_normal_kl_is_the_special_case_and_zero_at_equality():
    g = torch.Generator().manual_seed(1)
    mu, lv = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(gaussian_kl(mu, lv), gaussian_kl_diag(mu, lv, zeros, zeros))
    torch.testing.assert_close(gaussian_kl_diag(mu, lv, mu, lv), torch.zeros(3))


def test_log_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(2)
    x, mu, lv = torch.randn(3, 10, generator=g).unbind(0)
    expected = torch.distributions.Normal(mu, (0.5 * lv).exp()).log_prob(x)
    torch.testing.assert_close(gaussian_log_prob(x, mu, lv), expected)
    logits, labels = torch.randn(10, 4, generator=g), torch.randint(4, (10,), generator=g)
    expected = torch.distributions.Categorical(logits=logits).log_prob(labels)
    torch.testing.assert_close(categorical_log_prob(logits, labels), expected)


POINT_MASS = -30.0  # posterior log-variance: std e^-15, a point mass for float32 purposes


def _limit_model(seed: int, target_posterior: str):
    cfg = from_dict(
        {
            "data": {"name": "mixture", "mixture_rows": 200},
            "model": {
                "width": 16,
                "depth": 1,
                "heads": 2,
                "pred_width": 16,
                "pred_depth": 1,
                "pred_heads": 2,
                "latent_dim": 4,
                "z_dim": 3,
            },
            "var": {
                "w_recon": 0,
                "w_gen": 0,
                "w_kl_sx": 0,
                "w_kl_z": 0,
                "w_kl_sy": 1,
                "posterior_logvar": POINT_MASS,
                "prior_logvar": 0.0,
                "target_posterior": target_posterior,
            },
        }
    )
    table = load_table(cfg.data)
    torch.manual_seed(seed)
    model = VarTJEPA(table.x_num_train.shape[1], table.cardinalities, cfg.model, cfg.var)
    x_num = torch.as_tensor(table.x_num_train[:32])
    x_cat = torch.as_tensor(table.x_cat_train[:32])
    masks = sample_feature_masks(32, table.n_features, torch.Generator().manual_seed(seed))
    return cfg, model, x_num, x_cat, masks


@pytest.mark.parametrize("seed,target_posterior", [(0, "joint"), (1, "target")])
def test_deterministic_limit_is_jepa_squared_error_plus_constant(seed, target_posterior):
    """Point-mass q(s_x), q(z), q(s_y); p(s_y|s_x,z) with fixed variance 1; decoder and s_x, z KL
    weights 0: D * loss = 0.5 * sum ||mu_q(y) - predictor(mu_sx, mu_z)||^2 / B + C, with
    C = (tokens per row) * k * 0.5 * (e^a - 1 - a), a = POINT_MASS - 0 (the log-variance ratio)."""
    cfg, model, x_num, x_cat, masks = _limit_model(seed, target_posterior)
    ctx, tgt = masks.context, masks.targets
    d = model.backbone.n_tokens - 1
    terms = model(x_num, x_cat, ctx, tgt, torch.Generator().manual_seed(seed))
    loss = elbo_loss(terms, cfg.var, beta=1.0, n_features=d) * d

    mu_sx = model.posterior_sx(x_num, x_cat, ctx)[0]
    mu_z = model.posterior_z(mu_sx)[0]
    pred = model.prior_sy(mu_sx, ctx, tgt, mu_z)[0]
    target = model.posterior_sy(x_num, x_cat, ctx, tgt)[0]
    jepa = 0.5 * (pred - target).square().sum() / len(x_num)
    a = POINT_MASS
    const = tgt.shape[1] * tgt.shape[2] * cfg.model.latent_dim * 0.5 * (math.exp(a) - 1 - a)
    torch.testing.assert_close(loss, jepa + const, rtol=1e-5, atol=1e-4)
    assert jepa > 1e-3  # the comparison is not between two constants

    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    ref = torch.autograd.grad(jepa, list(model.parameters()), allow_unused=True)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref, strict=True):
        if r is None:  # decoder parameters: weight 0, no gradient in either
            assert g is None or torch.count_nonzero(g) == 0, name
            continue
        torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-5, msg=name)


def test_learned_variances_change_the_loss_beyond_the_squared_error():
    """Sanity of the limit test: with learned posterior variances the entropy term is back and
    D * loss is no longer the JEPA error plus the constant above."""
    cfg, model, x_num, x_cat, masks = _limit_model(0, "joint")
    cfg.var.posterior_logvar = None
    model.var = cfg.var
    d = model.backbone.n_tokens - 1
    terms = model(x_num, x_cat, masks.context, masks.targets, torch.Generator().manual_seed(0))
    loss = float(elbo_loss(terms, cfg.var, beta=1.0, n_features=d).detach()) * d
    mu_sx = model.posterior_sx(x_num, x_cat, masks.context)[0]
    pred = model.prior_sy(mu_sx, masks.context, masks.targets, model.posterior_z(mu_sx)[0])[0]
    target = model.posterior_sy(x_num, x_cat, masks.context, masks.targets)[0]
    jepa = float(0.5 * (pred - target).square().sum().detach() / len(x_num))
    a = POINT_MASS
    const = masks.targets.shape[1] * masks.targets.shape[2] * 4 * 0.5 * (math.exp(a) - 1 - a)
    assert abs(loss - (jepa + const)) > 10
