import json
import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sparsejepa import train as train_mod
from sparsejepa.config import from_dict, to_dict
from sparsejepa.data import ImageDataset
from sparsejepa.features import head_features
from sparsejepa.runtime import NonFiniteLoss, use_bf16
from sparsejepa.state import build
from sparsejepa.train import jepa_loss, read_metrics, sample_batch, train, train_step


def tiny_config(**sections) -> "from_dict":
    values = {
        "model": {
            "img_size": 16,
            "patch": 4,
            "width": 32,
            "depth": 2,
            "heads": 2,
            "pred_width": 16,
            "pred_depth": 1,
            "pred_heads": 2,
        },
        "mask": {"min_keep": 2},
        "sparsity": {
            "enabled": True,
            "latent_dim": 4,
            "groups": 4,
            "group_latent": 2,
            "hidden": 8,
            "w_lr": 0.05,
            "lam": 1.0,
        },
        "optim": {"warmup_epochs": 1},
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "device": "cpu",
            "precision": "fp32",
            "log_every": 2,
            "rankme_every": 2,
            "ckpt_every": 4,
        },
    }
    for key, extra in sections.items():
        values.setdefault(key, {}).update(extra)
    return from_dict(values)


def tiny_dataset(n_train: int = 48, n_test: int = 16, seed: int = 0) -> ImageDataset:
    """Random 16x16 images with two labels: enough to exercise the training code quickly."""
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, (n_train, 16, 16, 3), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, 16, 16, 3), dtype=np.uint8)
    y_tr, y_te = rng.integers(0, 3, n_train), rng.integers(0, 3, n_test)
    return ImageDataset(
        "tiny", x_tr, x_te, {"a": y_tr}, {"a": y_te}, {"a": 3}, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    )


def test_train_step_updates_weights_ema_and_w_prox():
    cfg = tiny_config()
    state = build(cfg, tiny_dataset())
    enc_before = [p.detach().clone() for p in state.student.encoder.parameters()]
    tgt_before = [p.detach().clone() for p in state.target.parameters()]
    metrics = train_step(state, sample_batch(state, 0))
    assert state.step == 1
    for key in ("loss", "jepa", "recon", "kl", "gen_prior", "lr", "wd", "momentum"):
        assert math.isfinite(metrics[key])
    assert metrics["loss"] > metrics["jepa"] > 0
    assert any(
        not torch.equal(a, b)
        for a, b in zip(enc_before, state.student.encoder.parameters(), strict=True)
    )
    # EMA: target moved towards the new encoder by (1 - momentum) of the gap.
    m = metrics["momentum"]
    encoder = state.student.encoder.parameters()
    for t0, t1, s in zip(tgt_before, state.target.parameters(), encoder, strict=True):
        assert torch.allclose(t1, m * t0 + (1 - m) * s, atol=1e-6)


def test_target_encoder_gets_no_gradient_and_baseline_has_no_head():
    state = build(tiny_config(sparsity={"enabled": False}), tiny_dataset())
    assert state.student.head is None and state.sgd is None
    metrics = train_step(state, sample_batch(state, 0))
    assert set(metrics) >= {"loss", "jepa"} and metrics["loss"] == metrics["jepa"]
    assert all(p.grad is None for p in state.target.parameters())


def test_weight_decay_groups_and_w_in_plain_sgd():
    state = build(tiny_config(), tiny_dataset())
    decay, no_decay = state.adamw.param_groups
    names = {id(p): n for n, p in state.student.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert any("mask_token" in names[id(p)] for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    (w_group,) = state.sgd.param_groups
    assert w_group["params"][0] is state.student.head.W
    assert w_group["momentum"] == 0 and w_group["weight_decay"] == 0


def test_lambda_kills_connections_and_zero_lambda_keeps_them():
    def active(lam):
        cfg = tiny_config(sparsity={"lam": lam, "w_lr": 1.0, "w_init_std": 0.3})
        state = build(cfg, tiny_dataset())
        for step in range(3):
            train_step(state, sample_batch(state, step))
        return int((state.student.head.column_norms() > 0).sum())

    assert active(0.0) == 16
    assert active(1.0) < 16


def test_sample_batch_is_pure_in_step():
    state = build(tiny_config(), tiny_dataset())
    a, b, c = sample_batch(state, 5), sample_batch(state, 5), sample_batch(state, 6)
    assert torch.equal(a.images, b.images) and torch.equal(a.context_idx, b.context_idx)
    assert torch.equal(a.noise, b.noise)
    assert not torch.equal(a.images, c.images)


def test_l2_loss_option():
    state = build(tiny_config(optim={"loss": "l2"}, sparsity={"enabled": False}), tiny_dataset())
    assert train_step(state, sample_batch(state, 0))["jepa"] > 0


def test_training_loop_writes_metrics_and_checkpoint(tmp_path):
    cfg = tiny_config()
    state = train(cfg, tmp_path, dataset=tiny_dataset(), progress=False)
    assert state.step == state.total_steps == 9
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6, 8, 9]
    assert all("rankme" in r and r["rankme"] > 1 for r in lines)
    assert lines[-1]["total_connections"] == 16
    matrix = np.array(lines[-1]["group_matrix"])  # groups x latents ||w_j^(g)||
    assert matrix.shape == (4, 4) and (matrix > 0).sum() == lines[-1]["active_connections"]
    # Multiinformation monitor of the pooled target features (Lemma B: between <= total).
    assert all(r["mi_between"] <= r["mi_total"] + 1e-9 for r in lines)
    assert (tmp_path / "ckpt.pt").is_file() and (tmp_path / "config.json").is_file()


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config()
    data = tiny_dataset()
    real = train_mod.sample_batch

    def poisoned(state, step):
        batch = real(state, step)
        if step == 5:
            batch.images[:] = float("nan")
        return batch

    monkeypatch.setattr(train_mod, "sample_batch", poisoned)
    with pytest.raises(NonFiniteLoss, match="last good checkpoint"):
        train(cfg, tmp_path, dataset=data, progress=False)
    payload = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert payload["step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["student"].values())


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_encoder_grad_scales_only_the_heads_gradient_into_the_encoder(scale):
    """encoder grad = grad(JEPA) + scale * grad(alpha recon + beta KL), values unchanged."""
    state = build(tiny_config(sparsity={"encoder_grad": scale}), tiny_dataset())
    batch = sample_batch(state, 0)
    student = state.student

    def encoder_grads(term: str) -> list[torch.Tensor]:
        student.zero_grad()
        out = jepa_loss(state, batch)
        loss = out["loss"] - out["jepa"] if term == "head" else out[term]
        loss.backward()
        return [p.grad.clone() for p in student.encoder.parameters()]

    jepa, head = encoder_grads("jepa"), encoder_grads("head")
    full = encoder_grads("loss")
    state.cfg.sparsity.encoder_grad = 1.0
    head_unscaled = encoder_grads("head")
    for g_full, g_jepa, g_head, g_one in zip(full, jepa, head, head_unscaled, strict=True):
        torch.testing.assert_close(g_full, g_jepa + g_head, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(g_head, scale * g_one, rtol=1e-4, atol=1e-7)


def test_head_with_no_encoder_gradient_leaves_the_jepa_trajectory_unchanged():
    """Clipping is per part: a head that sends no gradient into the encoder (encoder_grad=0) must
    not alter the encoder's updates, even when clipping is active (it did with one global norm)."""
    dataset = tiny_dataset()
    runs = {}
    for enabled in (False, True):
        cfg = tiny_config(
            sparsity={"enabled": enabled, "encoder_grad": 0.0}, optim={"clip_grad": 1e-3}
        )
        state = build(cfg, dataset)
        for step in range(3):
            metrics = train_step(state, sample_batch(state, step))
        assert metrics["grad_norm"] > 1e-3  # clipping was active
        runs[enabled] = state.student.encoder.state_dict()
    for name, weight in runs[False].items():
        torch.testing.assert_close(runs[True][name], weight, rtol=0, atol=0, msg=name)


def test_pooled_head_reads_one_mean_context_vector_per_image():
    state = build(tiny_config(sparsity={"pool": True}), tiny_dataset())
    batch = sample_batch(state, 0)
    assert batch.noise.shape == (16, 4)  # one latent sample per image, not per token
    metrics = train_step(state, batch)
    assert math.isfinite(metrics["recon"]) and math.isfinite(metrics["kl"])
    assert state.student.head.encoder[0].weight.grad is not None


def test_head_can_reconstruct_the_ema_tokens_instead_of_its_own_input():
    state = build(tiny_config(sparsity={"recon_target": "ema"}), tiny_dataset())
    batch = sample_batch(state, 0)
    student = state.student
    torch.manual_seed(0)
    args = (
        batch.images,
        batch.context_idx,
        batch.target_idx,
        torch.zeros(64, 4, 32),
        batch.noise,
        batch.context_valid,
    )  # targets unused by recon
    own = student(*args)["recon"]
    h = student.encoder(batch.images, batch.context_idx, batch.context_valid)
    assert torch.allclose(student(*args, h.detach())["recon"], own)  # "ema" = h: same loss
    other = torch.randn_like(h)
    assert not torch.allclose(student(*args, other)["recon"], own)
    metrics = train_step(state, batch)  # the loop gathers the EMA tokens at the context positions
    assert math.isfinite(metrics["recon"])
    assert all(p.grad is None for p in state.target.parameters())


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_auto_precision_is_bf16_where_the_cpu_has_bf16_matmuls(
    monkeypatch, amx, avx512_bf16, expected
):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    cpu = torch.device("cpu")
    assert use_bf16("auto", cpu) is expected
    assert use_bf16("fp32", cpu) is False and use_bf16("bf16", cpu) is True


class HostWaits(TorchDispatchMode):
    """Records the ops that make the host wait for the device on a GPU: reading a value (.item(),
    float(), bool(): aten._local_scalar_dense) or an output whose shape depends on the values
    (nonzero, masked_select, unique, indexing with a bool mask)."""

    WAITING = {
        "_local_scalar_dense",
        "nonzero",
        "masked_select",
        "_unique2",
        "unique_dim",
        "unique_consecutive",
        "_assert_async",
    }

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        )
        if name in self.WAITING or bool_index:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["jepa", "sparsejepa", "var_jepa"])
def test_a_train_step_never_waits_for_the_device(method):
    """No host sync inside the step: the metrics are read (one sync) every log_every steps."""
    cfg = tiny_config(sparsity={"enabled": method == "sparsejepa"})
    if method == "var_jepa":
        cfg = from_dict({**to_dict(cfg), "method": "var_jepa", "var": {"latent_dim": 16}})
    state = build(cfg, tiny_dataset())
    batch = sample_batch(state, 0)
    with HostWaits() as waits:
        metrics = train_step(state, batch)
    assert waits.ops == []
    read = read_metrics(state, metrics)
    assert all(isinstance(v, float) for v in read.values()) and math.isfinite(read["loss"])


def test_a_nonfinite_loss_is_recorded_in_the_step_and_raised_when_read():
    state = build(tiny_config(), tiny_dataset())
    read_metrics(state, train_step(state, sample_batch(state, 0)))
    batch = sample_batch(state, 1)
    batch.images[:] = float("nan")
    metrics = train_step(state, batch)  # no raise: raising would need the loss on the host
    train_step(state, sample_batch(state, 2))
    with pytest.raises(NonFiniteLoss, match="the loss became nan / inf at step 1"):
        read_metrics(state, metrics)


@pytest.mark.parametrize("pool", [False, True])
def test_audit_switches_train_and_head_features_read_the_head(pool):
    """The audit's switches together (no target standardisation, W stepping on the token-summed
    reconstruction, zero-initialised generators, the encoder gradient switched on halfway):
    the head sends no gradient into the encoder before the switch, and `head_features` reads
    (N, K) posterior means and (N, D) generator outputs through the trained head."""
    sparsity = {"standardize_target": False, "lam_per": "token", "zero_init_generator": True,
                "encoder_grad_ramp": (0.5, 0.5), "encoder_grad": 1.0, "pool": pool}  # fmt: skip
    cfg, dataset = tiny_config(sparsity=sparsity), tiny_dataset()
    state = build(cfg, dataset)
    assert state.sgd.param_groups[0]["lr"] == pytest.approx(0.05 * 32)
    jepa_only = build(tiny_config(sparsity={**sparsity, "encoder_grad": 0.0}), dataset)
    for step in range(2):  # of 9: before the switch the encoder follows JEPA's trajectory
        train_step(state, sample_batch(state, step))
        train_step(jepa_only, sample_batch(jepa_only, step))
    encoders = state.student.encoder.parameters(), jepa_only.student.encoder.parameters()
    for a, b in zip(*encoders, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    state.step = 5
    train_step(state, sample_batch(state, 5))
    feats = head_features(state.target, state.student.head, dataset.x_test, dataset.mean,
                          dataset.std, pool=pool, device="cpu")  # fmt: skip
    assert feats["z"].shape == (16, 4) and feats["generated"].shape == (16, 32)
    assert np.isfinite(feats["z"]).all() and feats["generated"].std() > 0
