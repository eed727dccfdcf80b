"""Hostile inputs, table-driven per entry point, and kills at chosen points of a run.

Every user error must end a command with ONE line `sparsejepa CMD: error: ...` naming the field or
file (exit status 1, no traceback); the Python API raises a named exception (ConfigError,
CheckpointError, ReleaseError, ...). A run killed with SIGKILL anywhere, even inside a checkpoint
write, resumes bit-identically; no checkpoint with a nan / inf is written or read as good; a
released encoder is never replaced silently; edited shipped numbers are caught.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import TINY
from test_train import tiny_config, tiny_dataset

import sparsejepa
from sparsejepa import checkpoint, config, probe, publish, release, run_folder
from sparsejepa import train as train_mod
from sparsejepa.checkpoint import NonFiniteCheckpoint
from sparsejepa.cli import main
from sparsejepa.config import Config, ConfigError, from_dict, to_dict
from sparsejepa.release import ReleaseError
from sparsejepa.runtime import NonFiniteLoss
from sparsejepa.train import train

ROOT = Path(__file__).resolve().parents[1]


def cli_error(argv: list[str]) -> str:
    """Run the CLI in-process; it must stop with exactly one `sparsejepa CMD: error:` line (any
    other exception, a traceback, fails the test). Returns that line."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    message = exc.value.code
    assert isinstance(message, str), f"exit status {message!r} without a message"
    assert message.startswith(f"sparsejepa {argv[0]}: error: ") and "\n" not in message
    return message


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# ----------------------------------------------------------------------------- configs


def _hostile_values(tp) -> list:
    """Out-of-range values of a config field's type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if type(None) in args:  # X | None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is int:
        return [0, -1]
    if tp is float:
        return [0.0, -1.0, math.nan, math.inf]
    if origin is tuple and args == (float, float):
        return [[0.5, 0.1], [-1.0, 0.5], [0.0, 0.0], [0.1, math.nan], [2.0, 3.0]]
    return []  # bools, strings and choices are type-checked by _coerce / CHOICES


def _fields(base: Config):
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        sub = getattr(base, section.name)
        if not dataclasses.is_dataclass(sub):
            continue
        for f in dataclasses.fields(sub):
            for value in _hostile_values(typing.get_type_hints(type(sub))[f.name]):
                yield section.name, f.name, value
    assert hints  # the table is read from the dataclasses themselves


def _base(section: str) -> dict:
    """The tiny test config as a dict; var_jepa for the var section (else it is unused)."""
    values = to_dict(tiny_config())
    if section == "var":
        values.update(method="var_jepa", sparsity={**values["sparsity"], "enabled": False})
    return values


CASES = list(_fields(Config()))


def test_every_numeric_field_is_refused_by_name_or_runs(tmp_path):
    """Every int / float / range field, set to 0, -1, nan, inf or a reversed / out-of-range pair:
    either ConfigError naming the field, or the run trains a finite first step (so no value is
    accepted that cannot work)."""
    refused, accepted, failed = 0, [], []
    data = tiny_dataset()
    for section, name, value in CASES:
        values = _base(section)
        values[section][name] = value
        key = f"{section}.{name}"
        try:
            cfg = from_dict(values)
        except ConfigError as err:
            if key not in str(err) and not (section == "mask" and "mask" in str(err)):
                failed.append(f"{key}={value}: message does not name it: {err}")
            refused += 1
            continue
        accepted.append(f"{key}={value}")
        run = tmp_path / f"{key}={value}"
        try:
            state = train(cfg, run, dataset=data, progress=False, stop_at=1)
            assert state.step == 1
            assert not checkpoint.nonfinite_tensors(checkpoint.load(run / "ckpt.pt"))
        except Exception as err:  # an accepted value that cannot run
            failed.append(f"{key}={value}: accepted, then {type(err).__name__}: {err}")
    assert not failed, "\n".join(failed)
    assert refused > 100 and len(accepted) < refused, accepted


@pytest.mark.parametrize(
    "override, names",
    [
        ("model.patch=0", "model.patch"),
        ("model.patch=5", "model.patch=5"),  # 32 not divisible
        ("model.heads=3", "model.heads=3: must divide model.width=32"),
        ("model.pred_heads=5", "model.pred_heads"),
        ("sparsity.groups=0", "sparsity.groups"),
        ("sparsity.groups=3", "sparsity.groups=3: must divide model.width"),
        ("train.ckpt_every=0", "train.ckpt_every"),
        ("train.log_every=0", "train.log_every"),
        ("train.rankme_every=-5", "train.rankme_every"),
        ("train.batch_size=65", "train.batch_size=65: is larger than the 64 training images"),
        ("train.epochs=0.01", "train.epochs=0.01: asks for 0.02 steps"),
        ("mask.num_targets=500", "mask.num_targets=500"),
        ("mask.min_keep=16", "mask.min_keep=16"),  # the whole 4x4 grid: nothing left for targets
        ("mask.target_scale=[0.3, 0.1]", "mask.target_scale"),
        ("mask.target_scale=[0.5, 1.5]", "mask.target_scale"),
        ("optim.final_lr=-1e-6", "optim.final_lr"),
        ("optim.warmup_epochs=-1", "optim.warmup_epochs"),
        ("optim.ema_start=1.5", "optim.ema_start"),
        ("optim.ema_end=1.001", "optim.ema_end"),
        ("optim.clip_grad=-1", "optim.clip_grad"),
        ("optim.lr=.inf", "optim.lr=inf"),
        ("optim.lr=nan", "optim.lr=nan"),
        ("optim.betas=[0.9, 1.0]", "optim.betas"),
        ("data.n_train=0", "data.n_train"),
        ("data.crop_scale=[0.5, 0.2]", "data.crop_scale"),
        ("probe.tasks=[bogus]", "probe.tasks=['bogus']: shapes has the tasks"),
        ("probe.tasks=[]", "probe.tasks=[]"),
        ("train.seed=-1", "train.seed"),
        ("train.device=gpu", "train.device: must be one of"),
        ("train.batch_size=1.5", "train.batch_size: expected int"),
        ("optim.lr=[1,", "override 'optim.lr=[1,' is not valid YAML at line 1"),
        ("optim.lr=\t1e-3", "never tabs"),
        ("optim.lr={a: 1}", "optim.lr: expected float"),
        ("optim=3", "optim: expected a mapping"),
        ("bogus.key=1", "unknown config key 'bogus'"),
        ("optim.lr", "must look like section.key=value"),
    ],
)
def test_train_refuses_bad_settings_in_one_line(tiny_yaml, tmp_path, override, names):
    message = cli_error(
        ["train", "--config", tiny_yaml, "--set", override, "--out", tmp_path / "run", "--quiet"]
    )
    assert names in message
    assert not (tmp_path / "run" / "ckpt.pt").exists()


@pytest.mark.parametrize(
    "text, names",
    [
        ("model:\n\twidth: 32\n", "line 2, column 1: found character '\\t'"),
        ("model: {width: 32\n", "is not valid YAML at line"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("model: 3\n", "model: expected a mapping"),
        ("model: {widht: 3}\n", "unknown config key 'model.widht'"),
    ],
)
def test_config_files_with_bad_yaml_are_one_line(tmp_path, text, names):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    message = cli_error(["train", "--config", path, "--out", tmp_path / "run"])
    assert names in message and (
        str(path) in message or "config key" in message or "expected a mapping" in message
    )


def test_config_file_that_is_not_text_or_not_a_file(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert str(binary) in cli_error(["train", "--config", binary, "--out", tmp_path / "r"])
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert "not found" in cli_error(["train", "--config", folder, "--out", tmp_path / "r"])


def test_the_tabular_family_shares_the_optimiser_and_loop_checks():
    from sparsejepa.tabular.config import load_config

    for override, key in (
        ("optim.ema_end=2", "optim.ema_end"),
        ("train.log_every=0", "train.log_every"),
        ("optim.lr=nan", "optim.lr"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config("wine", [override])


# ----------------------------------------------------------------------------- data, device


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", None])
def test_train_on_an_empty_truncated_or_foreign_npz(tmp_path, tiny_yaml, content):
    path = tmp_path / "cifar.npz"
    if content is None:  # a real npz cut in the middle of an array
        np.savez(path, x_train=np.zeros((100, 32, 32, 3), np.uint8))
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path.write_bytes(content)
    message = cli_error(
        [
            "train",
            "--config",
            tiny_yaml,
            "--set",
            "data.dataset=cifar100",
            "--set",
            f"data.path={path}",
            "--out",
            tmp_path / "run",
        ]
    )
    assert str(path) in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(tiny_yaml, tmp_path):
    message = cli_error(
        ["train", "--config", tiny_yaml, "--set", "train.device=cuda", "--out", tmp_path / "run"]
    )
    assert "train.device='cuda'" in message and "train.device=cpu" in message


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run of the CLI's TINY config (shapes), trained through the CLI."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.yaml").write_text(TINY)
    main(["train", "--config", str(root / "tiny.yaml"), "--out", str(root / "run"), "--quiet"])
    return root / "tiny.yaml", root / "run"


def _tampered(finished, tmp_path, edit) -> Path:
    """A copy of the finished run whose checkpoint payload went through `edit`."""
    run = tmp_path / "tampered"
    shutil.copytree(finished[1], run)
    payload = torch.load(run / "ckpt.pt", weights_only=True)
    edit(payload)
    torch.save(payload, run / "ckpt.pt")
    return run


def _drop_target_tensor(payload):
    del payload["target"][next(iter(payload["target"]))]


def _drop_student_tensor(payload):
    del payload["student"][next(iter(payload["student"]))]


def _nan_target(payload):
    next(iter(payload["target"].values())).fill_(math.nan)


def _bad_optimiser(payload):
    payload["adamw"]["param_groups"] = []


def _raw(tmp_path, data: bytes) -> Path:
    path = tmp_path / "ckpt.pt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda tmp: tmp / "missing.pt", "does not exist"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: _raw(tmp, b""), "unreadable or corrupt"),
        (lambda tmp: _raw(tmp, b"garbage" * 100), "unreadable or corrupt"),
    ],
)
def test_probe_refuses_unreadable_checkpoints(tmp_path, make, names):
    path = make(tmp_path)
    message = cli_error(["probe", "--ckpt", path])
    assert names in message and str(path) in message


@pytest.mark.parametrize(
    "edit, names",
    [
        (_drop_target_tensor, "does not fit the encoder its config builds (RuntimeError: "),
        (_nan_target, "holds nan / inf values in 1 tensors"),
    ],
)
def test_probe_refuses_incomplete_or_nonfinite_checkpoints(finished, tmp_path, edit, names):
    run = _tampered(finished, tmp_path, edit)
    message = cli_error(["probe", "--ckpt", run / "ckpt.pt"])
    assert names in message and str(run / "ckpt.pt") in message


@pytest.mark.parametrize(
    "edit, names",
    [
        (_drop_student_tensor, "does not fit the model and optimisers its config builds"),
        (_drop_target_tensor, "does not fit the model and optimisers its config builds"),
        (_bad_optimiser, "does not fit the model and optimisers its config builds"),
        (_nan_target, "holds nan / inf values"),
        (lambda p: p.update(step="three"), "does not fit"),
        (lambda p: p.update(config=[1, 2]), "config is not a mapping"),
    ],
)
def test_resume_refuses_incomplete_checkpoints(finished, tmp_path, edit, names):
    run = _tampered(finished, tmp_path, edit)
    message = cli_error(["train", "--config", finished[0], "--out", run, "--quiet"])
    assert names in message


def test_files_in_the_way_are_one_line(finished, tmp_path):
    """A file where a folder should be (or the reverse) names the path."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert str(blocker) in cli_error(["train", "--config", finished[0], "--out", blocker])
    assert str(blocker) in cli_error(
        ["export", "--run", finished[1], "--name", "x", "--out", blocker]
    )
    assert str(blocker) in cli_error(
        ["probe", "--ckpt", finished[1] / "ckpt.pt", "--out", blocker / "probe.json"]
    )


def test_probe_device_that_does_not_exist(finished):
    assert "choose auto, cpu or cuda" in cli_error(
        ["probe", "--ckpt", finished[1] / "ckpt.pt", "--device", "tpu"]
    )
    if not torch.cuda.is_available():
        assert "no CUDA device" in cli_error(
            ["probe", "--ckpt", finished[1] / "ckpt.pt", "--device", "cuda"]
        )


def test_one_line_and_exit_status_from_a_real_process(tmp_path):
    """The console entry point itself: status 1, one line on stderr, no traceback."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsejepa.cli",
            "train",
            "--config",
            "demo",
            "--set",
            "model.heads=0",
            "--out",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "sparsejepa train: error: model.heads=0: must be >= 1"
    ]


# ----------------------------------------------------------------------------- run folders


def test_a_second_writer_of_a_run_folder_is_refused(tiny_yaml, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with run_folder.locked_run_folder(run):  # another training process holds the folder
        message = cli_error(["train", "--config", tiny_yaml, "--out", run, "--quiet"])
    assert f"run folder {run} is in use by another training process (pid {os.getpid()})" in message
    main(["train", "--config", str(tiny_yaml), "--out", str(run), "--quiet"])  # released


def test_fresh_starts_a_fresh_log_and_keeps_the_old_run_aside(tiny_yaml, tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "--config", str(tiny_yaml), "--out", str(run), "--quiet"])
    (run / "probe.json").write_text("{}")  # results of the old run must not follow the new one
    old = (run / "metrics.jsonl").read_text()
    main(
        [
            "train",
            "--config",
            str(tiny_yaml),
            "--set",
            "optim.lr=5e-4",
            "--out",
            str(run),
            "--fresh",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    (aside,) = run.glob("replaced-*")
    assert f"the previous run's files were moved to {aside}" in err
    assert (aside / "metrics.jsonl").read_text() == old and (aside / "probe.json").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and not (run / "probe.json").exists()
    assert checkpoint.load(run / "ckpt.pt")["config"]["optim"]["lr"] == 5e-4


def test_resume_cuts_the_log_back_to_its_checkpoint(tmp_path):
    cfg, data = tiny_config(train={"log_every": 1, "ckpt_every": 4}), tiny_dataset()
    train(cfg, tmp_path, dataset=data, progress=False, stop_at=4)
    with open(tmp_path / "metrics.jsonl", "a") as log:  # as a run killed after logging step 6
        log.write('{"step": 5}\n{"step": 6}\n{"step": 7, "lo')
    train(cfg, tmp_path, dataset=data, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").open()]
    assert steps == list(range(1, 10))


# ----------------------------------------------------------------------------- kill -9

KILLED = """
import io, os, signal, sys
import torch
sys.path.insert(0, {tests!r})
from test_cli import TINY
from test_train import tiny_config, tiny_dataset
from sparsejepa import checkpoint, train as train_mod
torch.set_num_threads({threads})
where, at = {where!r}, {at}
if where == "step":  # killed right after step `at`, between two checkpoints
    real_step = train_mod.train_step
    def train_step(state, batch):
        out = real_step(state, batch)
        if state.step == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    train_mod.train_step = train_step
else:  # killed in the middle of writing the checkpoint of step `at`
    real_save = torch.save
    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == at:
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
train_mod.train({cfg}, {out!r}, dataset=tiny_dataset(), progress=False)
"""


def _kill_run(out: Path, cfg_expr: str, where: str, at: int) -> None:
    script = KILLED.format(
        tests=str(Path(__file__).parent),
        threads=torch.get_num_threads(),
        where=where,
        at=at,
        cfg=cfg_expr,
        out=str(out),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


@pytest.mark.parametrize("where, at, resumed_from", [("step", 5, 4), ("checkpoint", 8, 4)])
def test_kill_9_then_resume_is_bit_identical(tmp_path, where, at, resumed_from):
    expr = 'tiny_config(train={"log_every": 1, "ckpt_every": 4})'  # the child's config
    cfg, data = tiny_config(train={"log_every": 1, "ckpt_every": 4}), tiny_dataset()
    full = train(cfg, tmp_path / "full", dataset=data, progress=False)
    killed = tmp_path / "killed"
    _kill_run(killed, expr, where, at)
    assert checkpoint.load(killed / "ckpt.pt")["step"] == resumed_from
    assert (killed / "ckpt.pt.tmp").exists() == (where == "checkpoint")
    resumed = train(cfg, killed, dataset=data, progress=False)
    assert resumed.step == full.step == 9
    a, b = checkpoint.load(tmp_path / "full" / "ckpt.pt"), checkpoint.load(killed / "ckpt.pt")
    for part in ("student", "target"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    sa, sb = a["adamw"]["state"], b["adamw"]["state"]
    assert all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    assert _rows(killed / "metrics.jsonl") == _rows(tmp_path / "full" / "metrics.jsonl")


# ----------------------------------------------------------------------------- non-finite runs


def test_divergence_after_a_checkpoint_names_it_and_it_is_finite(tmp_path):
    cfg = tiny_config(optim={"lr": 1e30}, train={"ckpt_every": 1})  # warm-up from 2e-4
    with pytest.raises(NonFiniteLoss) as exc:
        train(cfg, tmp_path, dataset=tiny_dataset(), progress=False)
    payload = checkpoint.load(tmp_path / "ckpt.pt")  # refuses a nan / inf tensor
    assert f"the last good checkpoint is {tmp_path / 'ckpt.pt'} (step {payload['step']};" in str(
        exc.value
    )
    assert not checkpoint.nonfinite_tensors(payload)
    encoder, _ = checkpoint.load_target_encoder(tmp_path / "ckpt.pt")
    assert torch.isfinite(encoder(torch.randn(2, 3, 16, 16))).all()


def test_divergence_before_any_checkpoint_says_none_exists(tmp_path, monkeypatch):
    real = train_mod.sample_batch

    def poisoned(state, step):
        batch = real(state, step)
        batch.images[:] = math.nan
        return batch

    monkeypatch.setattr(train_mod, "sample_batch", poisoned)
    with pytest.raises(NonFiniteLoss, match="no good checkpoint of this run exists"):
        train(tiny_config(), tmp_path, dataset=tiny_dataset(), progress=False)
    assert not (tmp_path / "ckpt.pt").exists()


def test_a_nonfinite_state_is_never_written(tmp_path):
    state = train(
        tiny_config(train={"epochs": 1}), tmp_path, dataset=tiny_dataset(), progress=False
    )
    before = (tmp_path / "ckpt.pt").read_bytes()
    with torch.no_grad():
        next(state.student.parameters()).fill_(math.inf)
    with pytest.raises(NonFiniteCheckpoint, match="was not written"):
        checkpoint.save(tmp_path / "ckpt.pt", state)
    assert (tmp_path / "ckpt.pt").read_bytes() == before


def test_cli_nan_stop_is_one_line(tiny_yaml, tmp_path):
    message = cli_error(
        [
            "train",
            "--config",
            tiny_yaml,
            "--set",
            "optim.lr=1e38",
            "--set",
            "optim.start_lr=1e38",
            "--out",
            tmp_path / "run",
            "--quiet",
        ]
    )
    assert "no good checkpoint of this run exists" in message or "last good checkpoint" in message


# ----------------------------------------------------------------------------- feature cache


@pytest.mark.parametrize("corrupt", ["garbage", "truncated", "keys"])
def test_a_corrupt_feature_cache_is_discarded_and_recomputed(tmp_path, corrupt):
    from test_probe import FakeEncoder

    from sparsejepa.data import make_shapes

    dataset, encoder = make_shapes(n_train=40, n_test=20, seed=0), FakeEncoder()
    cache = tmp_path / "features_shapes.pt"
    good, _ = probe.cached_features(encoder, dataset, device="cpu", cache_path=cache)
    if corrupt == "garbage":
        cache.write_bytes(b"not an npz")
    elif corrupt == "truncated":
        cache.write_bytes(cache.read_bytes()[:600])
    else:
        with np.load(cache) as cached:
            np.savez(cache.with_suffix(".npz"), fingerprint=cached["fingerprint"])
        cache.with_suffix(".npz").replace(cache)
    with pytest.warns(UserWarning, match="unreadable.*recomputing"):
        again, from_cache = probe.cached_features(encoder, dataset, device="cpu", cache_path=cache)
    assert not from_cache and all(np.array_equal(good[k], again[k]) for k in good)
    assert probe.cached_features(encoder, dataset, device="cpu", cache_path=cache)[1]


# ----------------------------------------------------------------------------- releases


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny runs with different weights (seeds 0 and 1)."""
    root, data = tmp_path_factory.mktemp("runs"), tiny_dataset()
    for seed in (0, 1):
        train(
            tiny_config(train={"epochs": 1, "seed": seed}),
            root / f"s{seed}",
            dataset=data,
            progress=False,
        )
    return root / "s0", root / "s1"


def test_export_refuses_to_replace_a_release_with_other_weights(two_runs, tmp_path):
    out = tmp_path / "checkpoints"
    main(["export", "--run", str(two_runs[0]), "--name", "jepa_s0", "--out", str(out)])
    shipped = {p.name: p.read_bytes() for p in out.iterdir()}
    message = cli_error(["export", "--run", two_runs[1], "--name", "jepa_s0", "--out", out])
    assert "release 'jepa_s0' already exists" in message and "--overwrite" in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".lock"} == {
        k: v for k, v in shipped.items() if not k.endswith(".lock")
    }
    with pytest.raises(ReleaseError, match="overwrite=True"):
        publish.export(two_runs[1], "jepa_s0", out)
    # a stray file of that name, without a manifest entry, is not replaced either
    (out / "other.safetensors").write_bytes(b"someone's file")
    with pytest.raises(ReleaseError, match="as .*other.safetensors \\(no manifest entry\\)"):
        publish.export(two_runs[1], "other", out)
    main(
        ["export", "--run", str(two_runs[1]), "--name", "jepa_s0", "--out", str(out), "--overwrite"]
    )
    assert release.read_manifest(out)["entries"]["jepa_s0"]["config"]["train"]["seed"] == 1


def test_reproduce_refuses_to_retrain_a_release_before_training(two_runs, tmp_path, tiny_yaml):
    out = tmp_path / "checkpoints"
    publish.export(two_runs[0], "jepa_s0", out)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"preset: {tiny_yaml}\nruns:\n  jepa_s0: []\n")
    message = cli_error(
        ["reproduce", "--spec", spec, "--runs-dir", tmp_path / "runs", "--out", out]
    )
    assert "runs ['jepa_s0'] would replace released encoders" in message
    assert "--overwrite" in message and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "edit, names",
    [
        (_drop_target_tensor, "does not fit the encoder its config builds"),
        (_nan_target, "holds nan / inf values"),
    ],
)
def test_export_refuses_an_incomplete_or_nonfinite_checkpoint(two_runs, tmp_path, edit, names):
    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    payload = torch.load(run / "ckpt.pt", weights_only=True)
    edit(payload)
    torch.save(payload, run / "ckpt.pt")
    message = cli_error(["export", "--run", run, "--name", "x", "--out", tmp_path / "out"])
    assert names in message and not (tmp_path / "out" / "x.safetensors").exists()


@pytest.mark.parametrize(
    "argv_tail, names",
    [
        (["--name", "../escape"], "plain file stem"),
        (["--name", ".hidden"], "plain file stem"),
        (["--name", "x", "--probe", "nope.json"], "nope.json"),
    ],
)
def test_export_bad_arguments(two_runs, tmp_path, argv_tail, names):
    message = cli_error(["export", "--run", two_runs[0], "--out", tmp_path / "out", *argv_tail])
    assert names in message


def _edits():
    """Edits of the numbers the notebooks draw, one per kind of field of an entry."""

    def probe_top1(entry):
        result = next(iter(entry["probes"].values()))
        task = next(iter(result["tasks"].values()))
        task["best"]["top1"] += 1.0

    def first_group(entry):
        entry["group_matrix"][0][0] += 0.5

    return {
        "probe top-1": probe_top1,
        "step": lambda e: e.update(step=e["step"] + 1),
        "method": lambda e: e.update(method="JEPA" if e["method"] != "JEPA" else "SparseJEPA"),
        "timing": lambda e: e.update(timing={"train_s": 1.0}),
        "group matrix": first_group,
        "checksum removed": lambda e: e.pop("entry_sha256"),
    }


@pytest.mark.parametrize("what", list(_edits()))
def test_edited_shipped_numbers_are_caught(tmp_path, what):
    shipped = release.default_dir()
    manifest = json.loads((shipped / "MANIFEST.json").read_text())
    entries = manifest["entries"]
    name = next(n for n, e in entries.items() if e.get("group_matrix") and e.get("probes"))
    _edits()[what](entries[name])
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ReleaseError, match=f"entry '{name}' (fails its|has no) checksum"):
        sparsejepa.load(name, directory=tmp_path)
    with pytest.raises(ReleaseError, match="release.seal"):
        release.releases(tmp_path)


def test_shipped_manifest_is_sealed():
    """Every shipped entry carries the checksum of its recorded numbers."""
    entries = release.read_manifest(release.default_dir())["entries"]
    assert entries and all(e["entry_sha256"] == release.entry_sha256(e) for e in entries.values())


def test_the_config_module_is_importable_without_torch_work():
    """Validation samples masks lazily (cached): loading a preset twice costs one estimate."""
    config.mask_success_rate.cache_clear()
    config.load_config("demo")
    config.load_config("demo", ["optim.lr=1e-4"])
    assert config.mask_success_rate.cache_info().misses == 1
