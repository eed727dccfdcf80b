"""Var-JEPA in the image core: config, the deterministic JEPA limit, padding, training, resume."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from test_checkpoint import _weights
from test_train import tiny_config, tiny_dataset

from sparsejepa.config import ConfigError, from_dict, to_dict
from sparsejepa.state import build
from sparsejepa.student import Student
from sparsejepa.train import sample_batch, train, train_step
from sparsejepa.var_jepa import VarJEPA, kl_weight, patchify
from sparsejepa.vit import gather_tokens


def var_config(var: dict | None = None, **sections):
    values = to_dict(tiny_config(sparsity={"enabled": False}, **sections))
    values.update(method="var_jepa", var={"latent_dim": 16, "z_dim": 8, **(var or {})})
    return from_dict(values)


def padded_batch(state):
    """The first step whose context is padded (context_valid has False entries)."""
    for step in range(50):
        batch = sample_batch(state, step)
        if batch.context_valid is not None and not batch.context_valid.all():
            return batch
    raise AssertionError("no padded context in 50 steps")


def test_method_defaults_to_jepa_and_bad_var_configs_are_clear_errors():
    assert tiny_config().method == "jepa"
    assert isinstance(build(tiny_config(), tiny_dataset()).student, Student)
    values = to_dict(tiny_config(sparsity={"enabled": False}))
    with pytest.raises(ConfigError, match="method: must be one of"):
        from_dict({**values, "method": "vjepa"})
    with pytest.raises(ConfigError, match="sparsity.enabled"):
        from_dict({**to_dict(tiny_config()), "method": "var_jepa"})
    with pytest.raises(ConfigError, match="w_kl_sy"):
        var_config({"w_kl_sy": -1.0})
    with pytest.raises(ConfigError, match="latent_dim"):
        var_config({"latent_dim": 0})


def test_kl_weight_anneals_linearly_then_stays_at_one():
    assert [kl_weight(s, 4) for s in (0, 1, 4, 9)] == [0.0, 0.25, 1.0, 1.0]
    assert kl_weight(0, 0) == 1.0


def test_patchify_matches_the_encoder_token_order():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    p = patchify(images, 4)  # token 1 = row 0, column 1 of the 2 x 2 grid
    assert p.shape == (2, 4, 48)
    torch.testing.assert_close(p[:, 1], images[:, :, :4, 4:].reshape(2, -1))


@pytest.mark.parametrize("seed", [0, 1])
def test_deterministic_limit_is_the_jepa_squared_error_plus_a_constant(seed):
    """Point-mass q (lv = -30), fixed prior lv_p = 0, decoders and the s_x, z KLs dropped:
    loss * 3HW = 0.5 mean_m ||mu_q - mu_p||^2 + 0.5 k Lt (30 - 1 + e^-30), the JEPA squared
    error between the predictor and the student's own encoder on the full image, and the
    gradients agree too (no stop-gradient on the target side)."""
    zero = {"w_recon_x": 0.0, "w_recon_y": 0.0, "w_kl_sx": 0.0, "w_kl_z": 0.0}
    cfg = var_config({**zero, "posterior_logvar": -30.0, "prior_logvar": 0.0}, train={"seed": seed})
    state = build(cfg, tiny_dataset(seed=seed))
    model, batch = state.student, padded_batch(state)
    b, m, lt = batch.target_idx.shape
    args = (batch.images, batch.context_idx, batch.target_idx, batch.context_valid)

    def encoder_grads(loss):
        model.zero_grad()
        loss.backward(retain_graph=True)
        return [p.grad.clone() for p in model.encoder.parameters()]

    loss = model(*args, torch.Generator().manual_seed(seed))["loss"]
    got = encoder_grads(loss)

    mu_sx = model.posterior(model.encoder(batch.images, batch.context_idx, batch.context_valid))[0]
    mu_z = model.posterior_z(mu_sx, batch.context_valid)[0]
    pred = model.prior(mu_sx, mu_z, batch.context_idx, batch.target_idx, batch.context_valid)[0]
    full = gather_tokens(model.encoder(batch.images), batch.target_idx.reshape(b, m * lt))
    target = model.posterior(full.reshape(b * m, lt, -1))[0]
    k, pixels = pred.shape[-1], batch.images[0].numel()
    const = 0.5 * k * lt * (29.0 + math.exp(-30.0))
    expected = (0.5 * (pred - target).square().sum(-1).sum(1).mean() + const) / pixels
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    want = encoder_grads(expected)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-7)
    detached = (pred - target.detach()).square().sum(-1).sum(1).mean() / (2 * pixels)
    assert any(
        not torch.allclose(g, d, rtol=1e-3, atol=1e-7)
        for g, d in zip(got, encoder_grads(detached), strict=True)
    )


def test_padded_context_tokens_do_not_change_the_elbo():
    state = build(var_config(), tiny_dataset())
    batch = padded_batch(state)
    moved = batch.context_idx.masked_fill(~batch.context_valid, 5)  # other padding positions

    def terms(ctx):
        out = state.student(
            batch.images,
            ctx,
            batch.target_idx,
            batch.context_valid,
            torch.Generator().manual_seed(0),
        )
        return {k: v.detach() for k, v in out.items()}

    a, b = terms(batch.context_idx), terms(moved)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5, msg=key)
    # q(z|s_x) pools the real tokens only: a padded row equals the same row cut to its length
    row = int((~batch.context_valid).any(1).nonzero()[0])
    n = int(batch.context_valid[row].sum())
    s_x = torch.randn(1, batch.context_idx.shape[1], 16)
    padded = state.student.posterior_z(s_x, batch.context_valid[row : row + 1])
    for got, want in zip(padded, state.student.posterior_z(s_x[:, :n], None), strict=True):
        torch.testing.assert_close(got, want)


def test_train_steps_lower_the_loss_on_a_fixed_batch_with_finite_metrics():
    """Single-colour images: their patches are predictable, so the ELBO can improve fast."""
    data = tiny_dataset()
    colours = np.random.default_rng(0).integers(0, 256, (len(data.x_train), 1, 1, 3))
    flat = dataclasses.replace(
        data, x_train=np.broadcast_to(colours, data.x_train.shape).astype(np.uint8)
    )
    cfg = var_config(
        {"anneal_epochs": 0.0}, train={"epochs": 20}, optim={"lr": 1e-2, "warmup_epochs": 0}
    )
    state = build(cfg, flat)
    batch = sample_batch(state, 0)

    def loss():
        with torch.no_grad():
            out = state.student(
                batch.images,
                batch.context_idx,
                batch.target_idx,
                batch.context_valid,
                torch.Generator().manual_seed(0),
            )
        return float(out["loss"])

    before = loss()
    for _ in range(12):
        metrics = train_step(state, batch)
    assert loss() < 0.7 * before
    for key in (
        "loss",
        "elbo",
        "recon_x",
        "recon_y",
        "kl_sx",
        "kl_z",
        "kl_sy",
        "sigma_sy",
        "kl_weight",
        "grad_norm",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["kl_sx"] >= 0 and metrics["kl_z"] >= 0 and metrics["kl_sy"] >= 0
    assert "momentum" not in metrics


def test_no_ema_target_is_the_students_encoder_and_all_parts_get_gradients():
    state = build(var_config({"anneal_epochs": 0.0}), tiny_dataset())  # KL weight 1 at step 0
    assert isinstance(state.student, VarJEPA) and state.target is state.student.encoder
    assert state.sgd is None
    before = [p.detach().clone() for p in state.target.parameters()]
    state.cfg.optim.clip_grad = 0.0  # keep the gradients as computed
    state.adamw.step = lambda: None  # inspect gradients without updating
    train_step(state, sample_batch(state, 3))
    for name, p in state.student.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(torch.equal(a, b) for a, b in zip(before, state.target.parameters(), strict=True))


def test_training_loop_logs_elbo_terms_and_rankme(tmp_path):
    state = train(var_config(), tmp_path, dataset=tiny_dataset(), progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6, 8, 9]
    for r in lines:
        assert r["rankme"] > 1 and r["rankme_posterior"] > 1
        assert {"elbo", "recon_x", "recon_y", "kl_sx", "kl_z", "kl_sy", "kl_weight"} <= set(r)
    assert [r["kl_weight"] for r in lines[:2]] == [1 / 3, 1.0]  # anneal_epochs=1: 3 steps
    assert state.target is state.student.encoder


def test_resume_after_stop_equals_uninterrupted_run(tmp_path):
    cfg, data = var_config(), tiny_dataset()
    full = train(cfg, tmp_path / "full", dataset=data, progress=False)
    train(cfg, tmp_path / "split", dataset=data, progress=False, stop_at=5)
    resumed = train(cfg, tmp_path / "split", dataset=data, progress=False)
    assert resumed.step == full.step == 9
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = full.adamw.state_dict()["state"], resumed.adamw.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    logs = {
        d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
        for d in ("full", "split")
    }
    split = {r["step"]: r for r in logs["split"]}  # also logs the stop step 5
    for r in logs["full"]:
        for key in ("loss", "elbo", "kl_sy", "rankme"):
            assert r[key] == split[r["step"]][key], (r["step"], key)
