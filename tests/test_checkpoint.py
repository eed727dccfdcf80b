import dataclasses

import pytest
import torch
from test_train import tiny_config, tiny_dataset

from sparsejepa import checkpoint
from sparsejepa.checkpoint import CheckpointError
from sparsejepa.config import to_dict
from sparsejepa.state import build
from sparsejepa.train import train


def _weights(state):
    return {
        **{f"s.{k}": v for k, v in state.student.state_dict().items()},
        **{f"t.{k}": v for k, v in state.target.state_dict().items()},
    }


@pytest.mark.parametrize("sparse", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_resume_after_stop_equals_uninterrupted_run(tmp_path, sparse):
    cfg = tiny_config(sparsity={"enabled": sparse})
    data = tiny_dataset()
    full = train(cfg, tmp_path / "full", dataset=data, progress=False)
    train(cfg, tmp_path / "split", dataset=data, progress=False, stop_at=5)
    assert torch.load(tmp_path / "split" / "ckpt.pt", weights_only=True)["step"] == 5
    resumed = train(cfg, tmp_path / "split", dataset=data, progress=False)  # auto-resume
    assert resumed.step == full.step
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = full.adamw.state_dict()["state"], resumed.adamw.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_resume_with_other_settings_is_a_clear_error(tmp_path):
    data = tiny_dataset()
    train(tiny_config(), tmp_path, dataset=data, progress=False, stop_at=2)
    with pytest.raises(CheckpointError, match=r"train.epochs: 3.0 -> 4.0.*--fresh"):
        train(tiny_config(train={"epochs": 4}), tmp_path, dataset=data, progress=False)
    with pytest.raises(CheckpointError, match=r"sparsity.enabled: True -> False"):
        train(tiny_config(sparsity={"enabled": False}), tmp_path, dataset=data, progress=False)
    # a checkpoint of an older version lacks keys added since: they take this code's defaults
    payload = checkpoint.load(tmp_path / "ckpt.pt")
    del payload["config"]["sparsity"]["pool"]
    checkpoint.restore(build(tiny_config(), data), payload)
    # bookkeeping may change: the run continues
    cfg = dataclasses.replace(tiny_config(train={"log_every": 3}), name="renamed")
    state = train(cfg, tmp_path, dataset=data, progress=False)
    assert state.step == state.total_steps


def test_checkpoint_contents_and_atomic_write(tmp_path):
    state = train(
        tiny_config(train={"epochs": 1}), tmp_path, dataset=tiny_dataset(), progress=False
    )
    payload = checkpoint.load(tmp_path / "ckpt.pt")
    assert payload["step"] == state.step
    assert {"student", "target", "adamw", "sgd", "rng", "config", "code"} <= set(payload)
    assert payload["code"]["version"] and payload["code"]["dirty"] in (True, False, None)
    assert checkpoint.config_of(payload) == state.cfg
    assert not list(tmp_path.glob("*.tmp"))
    encoder, cfg = checkpoint.load_target_encoder(tmp_path / "ckpt.pt")
    assert not encoder.training and cfg.model.width == 32
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(encoder(x), state.target.eval()(x))
    # the sparsity head's groups x latents connectivity travels with the checkpoint
    groups = payload["group_matrix"]
    assert groups.shape == (cfg.sparsity.groups, cfg.sparsity.latent_dim)
    assert torch.equal(groups, state.student.head.column_norms())


def test_checkpoint_is_plain_data_and_restores_numpy_and_python_rng(tmp_path):
    import random

    import numpy as np

    cfg = tiny_config(train={"epochs": 1}, sparsity={"enabled": False})
    state = train(cfg, tmp_path, dataset=tiny_dataset(), progress=False)
    np.random.seed(123)
    np.random.standard_normal()  # leaves a cached gaussian in the legacy state
    random.seed(7)
    checkpoint.save(tmp_path / "ckpt.pt", state)
    expected = (np.random.random(5), random.random(), np.random.standard_normal())
    payload = torch.load(tmp_path / "ckpt.pt", weights_only=True)  # raises on any pickled object
    assert "group_matrix" not in payload  # JEPA baseline: no head
    np.random.seed(0)
    random.seed(0)
    checkpoint.restore(state, payload)
    assert np.array_equal(np.random.random(5), expected[0])
    assert random.random() == expected[1] and np.random.standard_normal() == expected[2]


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a sparsejepa checkpoint"):
        checkpoint.load(foreign)


class PickleThatWritesAFile:
    """Unpickling this object would create the file `marker`: a loader must refuse it, not run it.
    Shared by the checkpoint, tabular and CIFAR-100 reader tests."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_objects_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = {"step": 1, "config": {}, "student": {}, "target": {}}
    torch.save({**payload, "adamw": PickleThatWritesAFile(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"pickled object \(io.open\).* re-run training"):
        checkpoint.load(evil)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    train(tiny_config(train={"epochs": 1}), tmp_path, dataset=tiny_dataset(), progress=False)
    data = (tmp_path / "ckpt.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(cut)


def test_head_settings_of_runs_without_a_head_are_not_changes():
    jepa = to_dict(tiny_config(sparsity={"enabled": False}))
    other_head = to_dict(tiny_config(sparsity={"enabled": False, "lam_per": "token"}))
    assert checkpoint.config_changes(jepa, other_head) == []
    sparse = to_dict(tiny_config())
    other_sparse = to_dict(tiny_config(sparsity={"lam_per": "token"}))
    assert checkpoint.config_changes(sparse, other_sparse) == [
        "sparsity.lam_per: 'element' -> 'token'"
    ]
