"""EC-IJEPA (model.conditioning=ec): the encoders see the other window's positions and nothing else
of it, the probe needs no conditioning, and with conditioning off training is unchanged."""

import json
from types import SimpleNamespace

import pytest
import torch
from test_train import tiny_config, tiny_dataset

from sparsejepa import checkpoint, release
from sparsejepa.config import ConfigError, from_dict, to_dict
from sparsejepa.figures import ec
from sparsejepa.probe import extract_features
from sparsejepa.state import build
from sparsejepa.train import jepa_loss, sample_batch, train, train_step
from sparsejepa.vit import Encoder


def ec_state(**model):
    cfg = tiny_config(model={"conditioning": "ec", **model}, sparsity={"enabled": False})
    return build(cfg, tiny_dataset())


@pytest.mark.parametrize("enabled", [False, True])
def test_conditioning_off_trains_as_before(enabled):
    """Losses of 4 fp32 steps and the target's weight sum, recorded before conditioning existed
    (2026-12-04); a changed construction (an extra parameter, an extra random draw) moves them by
    ~1e-2, float kernels of another CPU by ~1e-7."""
    recorded = {
        False: ([0.479622483, 0.473444819, 0.470184952, 0.459723681], 156.684148562),
        True: ([4.473326206, 5.255785942, 3.617005348, 3.311276913], 156.689120234),
    }
    state = build(tiny_config(sparsity={"enabled": enabled}), tiny_dataset())
    assert state.student.encoder.cond_token is None and state.target.cond_token is None
    losses = [float(train_step(state, sample_batch(state, s))["loss"]) for s in range(4)]
    weight_sum = sum(float(p.double().sum()) for p in state.target.parameters())
    assert losses == pytest.approx(recorded[enabled][0], rel=1e-5)
    assert weight_sum == pytest.approx(recorded[enabled][1], rel=1e-6)


def test_context_encoder_sees_where_the_targets_are_not_what():
    state = ec_state()
    batch = sample_batch(state, 0)
    enc = state.student.encoder
    cond = enc.window_positions(batch.target_idx)
    assert cond.shape == (16, 4, 32)
    h = enc(batch.images, batch.context_idx, batch.context_valid, cond)
    # new pixels everywhere outside the context: the context tokens do not move
    outside = torch.ones(16, enc.grid * enc.grid, dtype=torch.bool)
    outside[torch.arange(16)[:, None], batch.context_idx] = False
    pixels = outside.view(16, 1, enc.grid, 1, enc.grid, 1).expand(-1, 3, -1, 4, -1, 4)
    noisy = torch.where(pixels.reshape(16, 3, 16, 16), torch.randn_like(batch.images), batch.images)
    torch.testing.assert_close(enc(noisy, batch.context_idx, batch.context_valid, cond), h)
    # other target positions: they do
    moved = enc.window_positions(batch.target_idx.flip(0))
    assert not torch.allclose(enc(batch.images, batch.context_idx, batch.context_valid, moved), h)
    # and without conditioning the encoder is the plain ViT on the context
    assert not torch.allclose(enc(batch.images, batch.context_idx, batch.context_valid), h)


def test_target_encoder_is_told_the_context_window_and_keeps_its_tokens():
    state = ec_state()
    batch = sample_batch(state, 0)
    target = state.target
    here = target.window_positions(batch.context_idx[:, None])
    there = target.window_positions(batch.context_idx.flip(0)[:, None])
    t_here, t_there = target(batch.images, cond=here), target(batch.images, cond=there)
    assert t_here.shape == (16, 16, 32)  # the condition token is dropped from the output
    assert not torch.allclose(t_here, t_there)
    # the window's position is the mean sin-cos embedding of its patches
    b0 = batch.context_idx[0]
    torch.testing.assert_close(here[0, 0], target.pos[0, b0].mean(0))


def test_ec_step_trains_the_condition_token_and_the_ema_follows():
    state = ec_state()
    before = state.target.cond_token.detach().clone()
    train_step(state, sample_batch(state, 0))
    assert state.student.encoder.cond_token.grad is not None
    assert state.student.encoder.cond_token.grad.abs().sum() > 0
    assert not torch.equal(state.target.cond_token, before)


def test_jepa_loss_passes_the_context_window_to_the_target_encoder():
    state = ec_state()
    batch = sample_batch(state, 0)
    with torch.no_grad():
        conditioned = float(jepa_loss(state, batch)["jepa"])
        state.target.cond_token.normal_(generator=torch.Generator().manual_seed(0))
        assert float(jepa_loss(state, batch)["jepa"]) != conditioned


def test_probe_features_need_no_conditioning(tmp_path):
    """A released EC encoder is probed on the whole image with no condition token: its features
    equal those of the plain ViT holding the same weights."""
    cfg = tiny_config(model={"conditioning": "ec"}, sparsity={"enabled": False})
    cfg.train.epochs = 1
    train(cfg, tmp_path, progress=False, dataset=tiny_dataset())
    encoder, loaded_cfg = checkpoint.load_target_encoder(tmp_path / "ckpt.pt")
    assert loaded_cfg.model.conditioning == "ec" and encoder.cond_token is not None
    plain = Encoder.from_config(tiny_config().model)
    weights = {k: v for k, v in encoder.state_dict().items() if k != "cond_token"}
    plain.load_state_dict(weights)
    x = tiny_dataset().x_test
    ours = extract_features(encoder, x, (0.5,) * 3, (0.25,) * 3, device="cpu")
    ref = extract_features(plain, x, (0.5,) * 3, (0.25,) * 3, device="cpu")
    for key in ours:
        torch.testing.assert_close(torch.from_numpy(ours[key]), torch.from_numpy(ref[key]))
    assert release.method_of(loaded_cfg) == "EC-IJEPA"


def test_conditioning_choices_are_checked():
    with pytest.raises(ConfigError, match="model.conditioning"):
        tiny_config(model={"conditioning": "yes"})
    with pytest.raises(ConfigError, match="model.conditioning"):
        values = to_dict(tiny_config(sparsity={"enabled": False}))
        from_dict(
            {**values, "method": "var_jepa", "model": {**values["model"], "conditioning": "ec"}}
        )
    with pytest.raises(ValueError, match="conditioning=none"):
        Encoder(img_size=16, patch=4, width=32, depth=1, heads=2)(
            torch.zeros(1, 3, 16, 16), cond=torch.zeros(1, 1, 32)
        )


def test_ec_results_table_and_figure_from_probe_rows(tmp_path):
    def row(run, step, probes, total=8):
        return {"run": run, "step": step, "total_steps": total, "images_seen": step * 4,
                "epochs": 1, "probes": probes, "rankme": 5.0, "train_s_so_far": 60}  # fmt: skip

    def cell(top1):
        return {"best_by_val": top1, "knn": top1 / 2, "probe": "last4/linear"}

    full = {"full:cifar100/fine": cell(30.0), "full:cifar100/coarse": cell(40.0)}
    rows = [
        row("ijepa_s0", 4, {"cifar100/fine": cell(10.0)}),
        row("ijepa_s0", 8, {"cifar100/fine": cell(12.0), **full}),
        row("ijepa_s1", 8, {"full:cifar100/fine": cell(32.0), "full:cifar100/coarse": cell(41.0)}),
        row("ec_s0", 8, {"cifar100/fine": cell(11.0), **full}),
        row("ec_ctx0.4", 8, {"cifar100/fine": cell(9.0)}),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = ec.load_rows(path)
    assert ec.classification(loaded)["ijepa"]["fine"] == [30.0, 32.0]
    assert ec.efficiency(loaded)["ijepa"] == [(16, 10.0), (32, 12.0)]
    assert ec.context_curve(loaded)["ec"] == [(0.925, 11.0), (0.5, 9.0)]
    text = ec.table(loaded)
    assert "| **I-JEPA mean** | 31.00 +- 1.41 (n=2) | 40.50 +- 0.71 (n=2) |" in text
    assert len(ec.plot(loaded).axes) == 3
    with pytest.raises(FileNotFoundError, match="ec_ijepa.py"):
        ec.load_rows(tmp_path / "missing.jsonl")
    assert ec.results_path() == ec.RESULTS
    assert ec.results_path(9) == ec.RESULTS.with_name("ec_ijepa_9ep.jsonl")


def test_release_table_compares_ec_with_jepa_at_the_same_budget():
    def fake(method, epochs, fine, seed=0):
        cfg = tiny_config(sparsity={"enabled": False})
        cfg.train.epochs, cfg.train.seed = epochs, seed
        task = {"best_by_val": {"top1": fine}, "knn": {"top1": fine / 3}}
        return SimpleNamespace(
            method=method, config=cfg, probes={"cifar100": {"tasks": {"fine": task}}}
        )

    rs = [fake("JEPA", 32, 42.0), fake("JEPA", 32, 43.0, 1), fake("JEPA", 9, 35.0),
          fake("EC-IJEPA", 32, 41.0), fake("SparseJEPA", 32, 40.0)]  # fmt: skip
    assert [(r.method, r.config.train.epochs) for r in ec.equal_budget_releases(rs)] == [
        ("JEPA", 32), ("JEPA", 32), ("EC-IJEPA", 32)]  # fmt: skip
    lines = ec.release_table(rs).splitlines()
    assert lines[0].split() == ["method", "cifar100/fine", "cifar100/fine", "kNN"]
    assert lines[2].split() == "JEPA 32 ep 42.5 +- 0.7 (n=2) 14.2 +- 0.2 (n=2)".split()
    assert lines[3].split()[:5] == ["EC-IJEPA", "32", "ep", "41.0", "(n=1)"]
    # no EC-IJEPA release: nothing to compare
    assert ec.release_table(rs[:3]).splitlines()[2:] == []
