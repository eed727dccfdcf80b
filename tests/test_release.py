"""Released encoders: export to safetensors + manifest, load with checks, clear errors."""

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_train import tiny_config, tiny_dataset

import sparsejepa
from sparsejepa import publish, release
from sparsejepa.release import ReleaseError
from sparsejepa.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny SparseJEPA run folder with a probe result next to its checkpoint."""
    run_dir = tmp_path_factory.mktemp("run")
    state = train(tiny_config(train={"epochs": 1}), run_dir, dataset=tiny_dataset(), progress=False)
    probe = {"dataset": "tiny", "tasks": {"a": {"best": {"top1": 42.0}, "knn": {"top1": 40.0}}}}
    (run_dir / "probe_tiny.json").write_text(json.dumps(probe))
    return run_dir, state


@pytest.fixture
def exported(run, tmp_path):
    run_dir, state = run
    out = tmp_path / "checkpoints"
    publish.export(run_dir, "sparse_s0", out)
    return out, state


def test_export_then_load_round_trip(exported, run):
    out, state = exported
    manifest = json.loads((out / "MANIFEST.json").read_text())
    entry = manifest["entries"]["sparse_s0"]
    assert entry["method"] == "SparseJEPA" and entry["step"] == state.step
    assert entry["sha256"] == release.sha256_of(out / "sparse_s0.safetensors")
    assert entry["probes"]["tiny"]["tasks"]["a"]["best"]["top1"] == 42.0
    loaded = sparsejepa.load("sparse_s0", directory=out)
    assert loaded.config == state.cfg and loaded.method == "SparseJEPA"
    assert not loaded.encoder.training
    # stored in float16, loaded into the float32 encoder: each weight is the target's, rounded once
    assert entry["dtype"] == "float16"
    target = state.target.state_dict()
    for key, value in loaded.encoder.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, target[key].half().float()), key
    x = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(loaded.encoder(x), state.target.eval()(x), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(
        loaded.group_matrix, state.student.head.column_norms().numpy(), rtol=1e-6
    )
    lines = (run[0] / "metrics.jsonl").read_text().splitlines()
    assert len(loaded.history) == len(lines) and loaded.history[-1]["step"] == state.step
    # by path, and through the env var
    assert sparsejepa.load(out / "sparse_s0.safetensors").name == "sparse_s0"
    assert release.releases(out) == ["sparse_s0"]


def test_env_var_selects_the_release_folder(exported, monkeypatch):
    out, _ = exported
    monkeypatch.setenv("SPARSEJEPA_CHECKPOINTS", str(out))
    assert release.default_dir() == out
    assert sparsejepa.load("sparse_s0").name == "sparse_s0"


def test_loading_never_unpickles(exported, monkeypatch):
    out, _ = exported

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during release.load")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert sparsejepa.load("sparse_s0", directory=out).group_matrix is not None


def test_jepa_release_has_no_group_matrix(tmp_path):
    cfg = tiny_config(train={"epochs": 1}, sparsity={"enabled": False})
    train(cfg, tmp_path / "run", dataset=tiny_dataset(), progress=False)
    entry = publish.export(tmp_path / "run", "jepa_s0", tmp_path / "out")
    assert entry["group_matrix"] is None and entry["probes"] == {} and entry["method"] == "JEPA"
    assert sparsejepa.load("jepa_s0", directory=tmp_path / "out").group_matrix is None


def test_corrupt_file_fails_its_sha256(exported):
    out, _ = exported
    file = out / "sparse_s0.safetensors"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match="fails its sha256 check.*re-export"):
        sparsejepa.load("sparse_s0", directory=out)


def test_edited_history_fails_its_sha256(exported):
    out, _ = exported
    with open(out / "sparse_s0.metrics.jsonl", "a") as f:
        f.write('{"step": 999}\n')
    with pytest.raises(ReleaseError, match="metrics.jsonl fails its sha256"):
        sparsejepa.load("sparse_s0", directory=out)


def _write_sealed(out, manifest):
    """A hand edit whose author also recorded the new entry checksums (`release.seal`): the
    checks behind the checksum must still catch it."""
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    release.seal(out)


def test_config_that_does_not_match_the_weights(exported):
    out, _ = exported
    manifest = json.loads((out / "MANIFEST.json").read_text())
    manifest["entries"]["sparse_s0"]["config"]["model"]["depth"] = 3
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ReleaseError, match="entry 'sparse_s0' fails its checksum"):
        sparsejepa.load("sparse_s0", directory=out)
    _write_sealed(out, manifest)
    with pytest.raises(ReleaseError, match="not the one sparse_s0.safetensors was exported with"):
        sparsejepa.load("sparse_s0", directory=out)
    manifest["entries"]["sparse_s0"]["config"]["model"]["dept"] = 3  # a hand edit, unknown key
    _write_sealed(out, manifest)
    with pytest.raises(ReleaseError, match="not the one sparse_s0.safetensors was exported with"):
        sparsejepa.load("sparse_s0", directory=out)
    del manifest["entries"]["sparse_s0"]["sha256"]
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ReleaseError, match=r"entry 'sparse_s0' lacks \['sha256'\]"):
        sparsejepa.load("sparse_s0", directory=out)


def test_weights_that_do_not_fit_their_config(exported):
    out, state = exported
    manifest = json.loads((out / "MANIFEST.json").read_text())
    entry = manifest["entries"]["sparse_s0"]
    weights = {k: v for k, v in state.target.state_dict().items() if "blocks.1" not in k}
    file = out / "sparse_s0.safetensors"
    save_file(weights, file, metadata={"config_sha256": release.config_sha256(entry["config"])})
    entry["sha256"] = release.sha256_of(file)
    _write_sealed(out, manifest)
    with pytest.raises(ReleaseError, match="weights do not fit the encoder of its config"):
        sparsejepa.load("sparse_s0", directory=out)


def test_missing_and_unknown_releases_are_clear_errors(exported, tmp_path):
    out, _ = exported
    with pytest.raises(ReleaseError, match=r"no released encoder named 'nope'.*\['sparse_s0'\]"):
        sparsejepa.load("nope", directory=out)
    with pytest.raises(ReleaseError, match="no MANIFEST.json in .*SPARSEJEPA_CHECKPOINTS"):
        sparsejepa.load("sparse_s0", directory=tmp_path / "empty")
    (out / "sparse_s0.safetensors").unlink()
    with pytest.raises(ReleaseError, match="weights file .* is missing"):
        sparsejepa.load("sparse_s0", directory=out)
    stray = tmp_path / "stray.safetensors"
    save_file({"x": torch.zeros(1)}, stray)
    with pytest.raises(ReleaseError, match="has no entry in"):
        sparsejepa.load(stray)
    (out / "MANIFEST.json").write_text("{not json")
    with pytest.raises(ReleaseError, match="not readable JSON"):
        sparsejepa.load("sparse_s0", directory=out)


def test_export_errors(run, tmp_path):
    run_dir, _ = run
    with pytest.raises(ReleaseError, match="plain file stem"):
        publish.export(run_dir, "../escape", tmp_path)
    bad = tmp_path / "probe_bad.json"
    bad.write_text(json.dumps({"top1": 3}))
    with pytest.raises(ReleaseError, match="not a `sparsejepa probe --out` result"):
        publish.export(run_dir, "x", tmp_path / "out", probe_files=[bad])
    assert not (tmp_path / "out" / "x.safetensors").exists()


def test_update_probes_replaces_one_datasets_results_and_keeps_the_entry_sealed(exported):
    out, _ = exported
    before = release.read_manifest(out)["entries"]["sparse_s0"]
    new = {"dataset": "tiny", "tasks": {"a": {"best": {"top1": 50.0}, "knn": {"top1": 41.0}}}}
    entry = publish.update_probes("sparse_s0", [new], out)
    after = release.read_manifest(out)["entries"]["sparse_s0"]  # checks every entry's checksum
    assert after == entry and after["probes"]["tiny"] == new
    assert {k: v for k, v in after.items() if k not in ("probes", "entry_sha256")} == {
        k: v for k, v in before.items() if k not in ("probes", "entry_sha256")
    }
    with pytest.raises(ReleaseError, match="no release 'nope'"):
        publish.update_probes("nope", [new], out)
    with pytest.raises(ReleaseError, match="needs 'dataset' and 'tasks'"):
        publish.update_probes("sparse_s0", [{"tasks": {}}], out)


def test_exports_of_several_runs_share_one_manifest(run, tmp_path):
    run_dir, _ = run
    out = tmp_path / "checkpoints"
    first = publish.export(run_dir, "a", out)
    publish.export(run_dir, "b", out)
    publish.export(run_dir, "a", out)  # re-export of the same weights updates its entry
    assert release.releases(out) == ["a", "b"]
    assert release.read_manifest(out)["entries"]["a"]["sha256"] == first["sha256"]  # reproducible
    assert oct((out / "a.safetensors").stat().st_mode & 0o777) == "0o644"
