import pytest
import torch

from sparsejepa.config import SparsityConfig
from sparsejepa.sparsity import (
    GroupSparseHead,
    gaussian_kl,
    head_encoder_grad,
    prox_group_lasso,
    w_learning_rate,
)


def test_prox_closed_form():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 5)
    t = 0.7
    norms = w.norm(dim=1)
    out = w.clone()
    prox_group_lasso(out, t)
    new_norms = out.norm(dim=1)
    alive = norms > t
    # Surviving columns shrink by exactly t and keep their direction; the others become zero.
    assert torch.allclose(new_norms[alive], norms[alive] - t, atol=1e-6)
    assert (new_norms[~alive] == 0).all()
    cos = torch.nn.functional.cosine_similarity(out, w, dim=1)
    assert torch.allclose(cos[alive], torch.ones_like(cos[alive]), atol=1e-6)


def test_prox_fixed_points_and_identity():
    torch.manual_seed(1)
    w = torch.randn(2, 3, 4)
    same = w.clone()
    prox_group_lasso(same, 0.0)
    assert torch.equal(same, w)
    w[0, :, 1] = 0.0
    prox_group_lasso(w, 0.3)
    assert (w[0, :, 1] == 0).all() and torch.isfinite(w).all()
    with pytest.raises(ValueError):
        prox_group_lasso(w, -1.0)


def test_kl_closed_form_and_monte_carlo():
    mu = torch.tensor([[0.5, -1.0, 0.0]])
    logvar = torch.tensor([[0.2, -0.5, 1.0]])
    var = logvar.exp()
    closed = 0.5 * (mu**2 + var - 1 - logvar).sum()
    assert torch.allclose(gaussian_kl(mu, logvar), closed.view(1))
    assert torch.allclose(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)), torch.zeros(1))
    # Monte Carlo: E_q[log q(z) - log p(z)].
    g = torch.Generator().manual_seed(0)
    z = mu + var.sqrt() * torch.randn(400_000, 3, generator=g)
    log_q = -0.5 * ((z - mu) ** 2 / var + logvar).sum(-1)
    log_p = -0.5 * (z**2).sum(-1)
    assert abs(float((log_q - log_p).mean()) - float(closed)) < 0.02


def test_head_grouped_decoder_matches_per_group_loop():
    torch.manual_seed(0)
    head = GroupSparseHead(dim=12, latent_dim=5, groups=3, group_latent=2, hidden=7)
    z = torch.randn(6, 5)
    out = head.decode(z)
    for g in range(3):
        a = z @ head.W[g].T
        hid = torch.nn.functional.gelu(a @ head.gen_w1[g] + head.gen_b1[g])
        ref = hid @ head.gen_w2[g] + head.gen_b2[g]
        assert torch.allclose(out[:, 4 * g : 4 * g + 4], ref, atol=1e-5)


def test_zeroed_column_cuts_latent_from_group():
    torch.manual_seed(0)
    head = GroupSparseHead(dim=8, latent_dim=3, groups=2, group_latent=2, hidden=4)
    with torch.no_grad():
        head.W[0, :, 2] = 0.0
    z = torch.randn(5, 3)
    z2 = z.clone()
    z2[:, 2] += 10.0
    a, b = head.decode(z), head.decode(z2)
    assert torch.allclose(a[:, :4], b[:, :4])  # group 0 ignores latent 2
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    assert head.column_norms().shape == (2, 3) and head.column_norms()[0, 2] == 0


def test_head_losses_finite_and_give_encoder_gradients():
    torch.manual_seed(0)
    head = GroupSparseHead(dim=16, latent_dim=4, groups=4, group_latent=2, hidden=8)
    h = torch.randn(2, 5, 16, requires_grad=True)
    terms = head(h, torch.randn(10, 4))
    assert set(terms) == {"recon", "kl", "gen_prior"}
    assert all(torch.isfinite(v) for v in terms.values())
    (terms["recon"] + terms["kl"]).backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="groups"):
        GroupSparseHead(dim=10, groups=3)


def test_zero_init_generator_starts_at_the_mean_predictor_with_no_encoder_gradient():
    """A zero last generator layer: the first reconstruction of the standardised target is the
    mean predictor's (recon = 1 up to eps) and no gradient reaches h through it."""
    torch.manual_seed(0)
    head = GroupSparseHead(dim=16, latent_dim=4, groups=4, group_latent=2, hidden=8,
                           zero_init_generator=True)  # fmt: skip
    h = torch.randn(40, 16, requires_grad=True)
    terms = head(h, torch.randn(40, 4))
    assert abs(terms["recon"].item() - 1.0) < 1e-3
    terms["recon"].backward()
    assert h.grad.abs().max() < 1e-4
    assert head.gen_w2.grad.abs().sum() > 0  # the generators learn from the first step


def test_unstandardised_target_is_the_layer_normed_tokens():
    torch.manual_seed(0)
    kw = dict(dim=16, latent_dim=4, groups=4, group_latent=2, hidden=8, zero_init_generator=True)
    h = torch.randn(30, 16) * torch.linspace(0.01, 3, 16) + 2.0  # channels of unequal scale
    plain = GroupSparseHead(**kw, standardize_target=False)(h, torch.randn(30, 4))
    ln = torch.nn.functional.layer_norm(h, (16,))
    assert torch.allclose(plain["recon"], ln.square().mean(), atol=1e-6)  # zero output vs LN(h)


def test_w_learning_rate_per_token_is_oivae_ratio():
    """lam_per="token": W steps on a token's summed reconstruction (D x the mean's step) against
    the same threshold w_lr * lam, oi-VAE's ratio of penalty to data term."""
    s = SparsityConfig(lam=2.0, w_lr=1e-3)
    assert w_learning_rate(s, 128) == pytest.approx(1e-3)
    s.lam_per = "token"
    assert w_learning_rate(s, 128) == pytest.approx(0.128)


def test_encoder_grad_ramp():
    s = SparsityConfig(encoder_grad=1e-2)
    assert head_encoder_grad(s, 0, 100) == 1e-2  # (0, 0): constant, exactly the configured scale
    s.encoder_grad_ramp = (0.2, 0.6)
    got = [head_encoder_grad(s, step, 100) for step in (0, 20, 40, 60, 99)]
    assert got == pytest.approx([0.0, 0.0, 5e-3, 1e-2, 1e-2])
    s.encoder_grad_ramp = (0.67, 0.67)  # a switch: off for two thirds, then on
    assert [head_encoder_grad(s, step, 100) for step in (66, 67)] == [0.0, 1e-2]
