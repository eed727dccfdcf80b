"""The shipped releases from a user's side: input normalisation and transform, probing a release,
finding the releases after an install, torch.hub, the command's version; slow: a real install."""

import importlib.util
import json
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import torch

import sparsejepa
from sparsejepa import augment, data, probe, publish, release
from sparsejepa.cli import main
from sparsejepa.config import load_config
from sparsejepa.probe import probe_checkpoint
from sparsejepa.release import ReleaseError

ROOT = Path(__file__).resolve().parents[1]
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)  # the well-known CIFAR-100 train statistics
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@pytest.fixture(scope="module")
def jepa():
    return sparsejepa.load("jepa_s0", directory=ROOT / "checkpoints")


def test_shipped_releases_record_their_input(jepa):
    entries = release.read_manifest(ROOT / "checkpoints")["entries"]
    for name, entry in entries.items():
        assert entry["img_size"] == entry["config"]["model"]["img_size"] == 32, name
        assert entry["config"]["data"]["dataset"] == "cifar100", name
        np.testing.assert_allclose(entry["mean"], CIFAR100_MEAN, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(entry["std"], CIFAR100_STD, atol=1e-4, err_msg=name)
    assert jepa.img_size == 32 and jepa.mean == tuple(entries["jepa_s0"]["mean"])


def test_normalization_is_the_training_sets():
    cfg = load_config("demo", ["data.n_train=300", "data.n_test=50", "train.seed=3"])
    ds = data.load_dataset("shapes", seed=3, n_train=300, n_test=50)
    mean, std = publish.dataset_normalization(cfg)
    assert mean == ds.mean and std == ds.std
    missing = load_config("demo", ["data.dataset=cifar100", "data.path=/nonexistent/c.npz"])
    assert publish.dataset_normalization(missing) == (None, None)  # recorded as unknown


def test_transform_matches_the_training_normalisation(jepa):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    expected = augment.normalize(torch.from_numpy(images), jepa.mean, jepa.std)
    torch.testing.assert_close(jepa.transform(images), expected)
    torch.testing.assert_close(jepa.transform(images[0]), expected[:1])  # one HWC image
    floats = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255  # ToTensor layout
    torch.testing.assert_close(jepa.transform(floats), expected)
    big = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert jepa.transform(big).shape == (2, 3, 32, 32)  # resized to the encoder's size
    with pytest.raises(ValueError, match=r"\(H, W, 3\) or \(N, H, W, 3\)"):
        jepa.transform(images[..., :2])
    feats = probe.extract_features(jepa.encoder, images, jepa.mean, jepa.std, device="cpu")
    np.testing.assert_allclose(jepa.embed(images).numpy(), feats["last"], rtol=1e-4, atol=1e-5)


def test_a_release_without_normalisation_says_so(jepa):
    old = release.Release(
        name="old", encoder=jepa.encoder, config=jepa.config, probes={}, group_matrix=None
    )
    with pytest.raises(ReleaseError, match="records no input normalisation.*re-export"):
        old.transform(np.zeros((1, 32, 32, 3), np.uint8))


def test_not_found_names_the_env_var_and_the_clone(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSEJEPA_CHECKPOINTS", raising=False)
    site = tmp_path / "site-packages" / "sparsejepa"
    monkeypatch.setattr(release, "__file__", str(site / "release.py"))  # a non-editable install
    monkeypatch.setattr(release, "_installed_from", lambda: None)
    assert release.default_dir() == tmp_path / "site-packages" / "checkpoints"
    with pytest.raises(ReleaseError, match=r"SPARSEJEPA_CHECKPOINTS=/path/to/your/clone/check"):
        sparsejepa.load("jepa_s0")
    clone = tmp_path / "clone"  # installed with `pip install <clone>`: its releases are found
    monkeypatch.setattr(release, "_installed_from", lambda: clone)
    with pytest.raises(ReleaseError, match=f"SPARSEJEPA_CHECKPOINTS={clone / 'checkpoints'}"):
        sparsejepa.load("jepa_s0")  # the clone has no releases (yet)
    (clone / "checkpoints").mkdir(parents=True)
    (clone / "checkpoints" / "MANIFEST.json").write_text('{"format": 1, "entries": {}}')
    assert release.default_dir() == clone / "checkpoints"


def test_probe_takes_a_release_by_name_or_file(jepa, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEJEPA_CHECKPOINTS", str(ROOT / "checkpoints"))
    monkeypatch.setenv("SPARSEJEPA_CACHE", str(tmp_path / "cache"))
    calls = []

    def run_probes(encoder, dataset, *, cache_path=None, **kwargs):  # the real one is tested apart
        for key, value in jepa.encoder.state_dict().items():
            assert torch.equal(encoder.state_dict()[key], value), key
        calls.append((dataset.name, len(dataset.x_train), cache_path))
        return {"dataset": dataset.name, "tasks": {"count": {}}}

    monkeypatch.setattr(probe, "run_probes", run_probes)
    probe_checkpoint("jepa_s0", "shapes", n_train=60, n_test=30)
    assert calls[-1] == ("shapes", 60, tmp_path / "cache" / "features" / "jepa_s0_shapes.npz")
    small = data.load_dataset("shapes", n_train=60, n_test=30)
    monkeypatch.setattr(data, "load_dataset", lambda *args, **kwargs: small)
    out = tmp_path / "probe.json"
    main(["probe", "--ckpt", str(ROOT / "checkpoints" / "jepa_s0.safetensors"), "--dataset",
          "shapes", "--out", str(out)])  # fmt: skip
    assert json.loads(out.read_text())["tasks"] == {"count": {}} and len(calls) == 2
    with pytest.raises(SystemExit, match="no released encoder named 'nope'"):
        main(["probe", "--ckpt", "nope", "--dataset", "shapes"])


def test_torch_hub_loads_a_release_from_the_clone(jepa):
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    names = {n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_")}
    assert {"jepa_s0", "sparsejepa_s0", "release"} <= set(names)
    encoder = torch.hub.load(str(ROOT), "jepa_s0", source="local")
    x = jepa.transform(np.full((2, 32, 32, 3), 128, np.uint8))
    torch.testing.assert_close(encoder(x), jepa.encoder(x))
    assert encoder.img_size == 32 and encoder.mean == jepa.mean and not encoder.training
    named = torch.hub.load(str(ROOT), "release", "sparsejepa_s0", source="local")
    assert named.release.config.sparsity.lam == 1.0
    # a release name that is not an identifier gets an entry with dots as underscores
    assert hub._entry("sparsejepa_lam0.3_s0").__name__ == "sparsejepa_lam0_3_s0"


def test_version_and_python_m():
    done = subprocess.run(
        [sys.executable, "-m", "sparsejepa", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"sparsejepa {sparsejepa.__version__}"


@pytest.mark.slow
def test_plain_pip_install_loads_releases_and_leaves_the_tests_out(tmp_path):
    """`pip install <clone>` (not editable) into a fresh venv that sees this environment's
    packages: `sparsejepa.load` finds the clone's releases from site-packages, torch.hub loads
    one, and the wheel holds no tests."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    py = env_dir / "bin" / "python"
    deps = [p for p in sys.path if p.endswith("site-packages")]  # torch & co., not sparsejepa
    (next((env_dir / "lib").glob("python*")) / "site-packages" / "deps.pth").write_text(
        "\n".join(deps) + "\n"
    )
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], check=True)
    script = f"""
import pathlib, sparsejepa, torch
assert "site-packages" in sparsejepa.__file__ and not sparsejepa.__file__.startswith({str(ROOT)!r})
r = sparsejepa.load("jepa_s0")
assert r.img_size == 32 and len(r.mean) == 3
enc = torch.hub.load({str(ROOT)!r}, "jepa_s0", source="local")
site = pathlib.Path(sparsejepa.__file__).parents[1]
assert not (site / "theory" / "tests").exists() and not (site / "tests").exists()
print("ok")
"""
    done = subprocess.run([py, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
