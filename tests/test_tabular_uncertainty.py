"""Var-T-JEPA's predictive uncertainty (`evaluate.predictive`) against a direct Monte Carlo
estimate of the model's predictive distribution p(x_j | x_-j)."""

import dataclasses
import math

import torch
from test_tabular_train import tiny

from sparsejepa.tabular.data import load_table
from sparsejepa.tabular.evaluate import predictive
from sparsejepa.tabular.train import build


def _direct_std(model, table, draws: int, seed: int = 1) -> torch.Tensor:
    """Sample x_j ~ p(x_j | x_-j) = s_x ~ q(s_x | x_-j), z ~ q(z | s_x), s_y ~ p(s_y | s_x, z),
    x_j ~ p(x_j | s_y) for every numeric j; the std over draws per row, averaged over j."""
    gen = torch.Generator().manual_seed(seed)
    x_num = torch.as_tensor(table.x_num_test).repeat(draws, 1)
    x_cat = torch.as_tensor(table.x_cat_test).repeat(draws, 1)
    n, d, dec = len(table.y_test), model.backbone.n_tokens - 1, model.decoder
    noise = lambda t: torch.randn(t.shape, generator=gen)  # noqa: E731
    out = torch.zeros(n)
    for j in range(dec.n_num):
        ctx = torch.tensor([0] + [i + 1 for i in range(d) if i != j]).expand(len(x_num), -1)
        tgt = torch.full((len(x_num), 1, 1), j + 1)
        mu, lv = model.posterior_sx(x_num, x_cat, ctx)
        s_x = mu + (0.5 * lv).exp() * noise(mu)
        mu_z, lv_z = model.posterior_z(s_x)
        mu_p, lv_p = (
            t[:, 0] for t in model.prior_sy(s_x, ctx, tgt, mu_z + (0.5 * lv_z).exp() * noise(mu_z))
        )
        s_y = mu_p + (0.5 * lv_p).exp() * noise(mu_p)
        x = s_y @ dec.num_w[j, :, 0] + dec.num_b[j, 0]
        x = x + math.exp(0.5 * dec.fixed_logvar) * noise(x)
        out += x.reshape(draws, n).std(0) / dec.n_num
    return out


@torch.no_grad()
def test_predictive_std_is_the_std_of_the_models_predictive_distribution():
    cfg = tiny("var_t_jepa")
    table = load_table(cfg.data)
    state = build(cfg, table)
    rows = slice(0, 8)  # a few test rows keep the direct estimate cheap
    table = dataclasses.replace(
        table,
        x_num_test=table.x_num_test[rows],
        x_cat_test=table.x_cat_test[rows],
        y_test=table.y_test[rows],
    )
    model = state.model.eval()
    # make the predicted mean depend strongly on s_x, so that the between-sample term matters
    model.predictor.embed.weight.mul_(40)
    std, r2 = predictive(state, table, "test", samples=300)
    direct = _direct_std(model, table, draws=2000)
    assert std.shape == direct.shape == table.y_test.shape and r2.shape == (1,)
    torch.testing.assert_close(std, direct, rtol=0.05, atol=0)


@torch.no_grad()
def test_predictive_std_has_all_three_variance_terms():
    """A predictor whose mean is c times the mean context latent and whose log-variance is L:
    Var x_j = e^decoder + e^L sum_k a_k^2 + c^2 / T^2 sum_k a_k^2 sum_t e^lv_tk (T context tokens,
    lv of q(s_x | x_-j)), in closed form; each term is a sizeable part of the total."""
    cfg = tiny("var_t_jepa")
    table = load_table(cfg.data)
    state = build(cfg, table)
    model, c, big_l = state.model.eval(), 3.0, -1.0
    model.prior_sy = lambda s_x, ctx, tgt, z: (
        c * s_x.mean(1, keepdim=True),
        torch.full_like(s_x[:, :1], big_l),
    )
    std = predictive(state, table, "test", samples=3000)[0]
    x_num, x_cat = torch.as_tensor(table.x_num_test), torch.as_tensor(table.x_cat_test)
    n, d, dec = len(x_num), model.backbone.n_tokens - 1, model.decoder
    exact = torch.zeros(n)
    for j in range(dec.n_num):
        ctx = torch.tensor([0] + [i + 1 for i in range(d) if i != j]).expand(n, -1)
        lv = model.posterior_sx(x_num, x_cat, ctx)[1]
        a2 = dec.num_w[j, :, 0].square()
        spread = c**2 * (a2 * lv.exp().sum(1)).sum(-1) / ctx.shape[1] ** 2
        exact += (math.exp(dec.fixed_logvar) + math.exp(big_l) * a2.sum() + spread).sqrt()
    torch.testing.assert_close(std, exact / dec.n_num, rtol=0.03, atol=0)


@torch.no_grad()
def test_predictor_r2_leaves_out_a_constant_feature():
    """A feature constant on the split (an MNIST border pixel) has no R^2; dividing by its zero
    variance made the average about -4e7 on MNIST-5k."""
    cfg = tiny("var_t_jepa")
    table = load_table(cfg.data)
    state = build(cfg, table)
    x_num = table.x_num_test.copy()
    x_num[:, 0] = 0.0
    r2 = predictive(state, dataclasses.replace(table, x_num_test=x_num), "test", samples=4)[1]
    assert r2.shape == (1,) and -10 < r2.item() <= 1
