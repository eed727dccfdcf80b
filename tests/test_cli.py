import json

import pytest
import torch

from sparsejepa import probe
from sparsejepa.cli import main

TINY = """
model: {img_size: 32, patch: 8, width: 32, depth: 2, heads: 2, pred_width: 16, pred_depth: 1,
        pred_heads: 2}
mask: {min_keep: 2}
sparsity: {enabled: true, latent_dim: 4, groups: 4, group_latent: 2, hidden: 8}
data: {dataset: shapes, n_train: 64, n_test: 32}
train: {epochs: 1, batch_size: 32, device: cpu, precision: fp32, log_every: 1}
"""


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _fake_probes(calls):
    """Stands in for probe.run_probes (tested by its own tests, and slow): checks the encoder the
    CLI hands over works on the dataset, and returns results in run_probes' layout."""

    def run_probes(encoder, dataset, *, tasks=None, device, cache_path=None, seed=0):
        images = torch.randn(4, 3, 32, 32)
        outs = encoder.layer_outputs(images, 4 if len(encoder.blocks) >= 4 else 1)
        assert outs[-1].shape == (4, 16, 32) and not encoder.training
        calls.append({"dataset": dataset.name, "seed": seed, "cache": cache_path})
        return {
            "tasks": {
                t: {"best": {"top1": 50.0}, "knn": {"top1": 40.0}}
                for t in (tasks or dataset.num_classes)
            }
        }

    return run_probes


def test_train_then_probe(tmp_path, tiny_yaml, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(probe, "run_probes", _fake_probes(calls))
    out = tmp_path / "run"
    train = ["train", "--config", str(tiny_yaml), "--set", "optim.lr=5e-4", "--out", str(out)]
    main([*train, "--quiet"])
    assert (out / "ckpt.pt").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["optim"]["lr"] == 5e-4
    assert "done: 2 steps" in capsys.readouterr().out
    main(["probe", "--ckpt", str(out / "ckpt.pt"), "--out", str(tmp_path / "probe.json")])
    results = json.loads((tmp_path / "probe.json").read_text())
    assert set(results["tasks"]) == {"shape", "count", "dist"}
    assert calls == [{"dataset": "shapes", "seed": 0, "cache": out / "features_shapes.pt"}]
    # Training again in the same folder resumes (nothing left to do) instead of restarting.
    main([*train, "--quiet"])
    assert (out / "metrics.jsonl").read_text().count("\n") == 2
    # ... and other settings in the same folder are an error, not a silent mix of two runs
    with pytest.raises(SystemExit, match=r"optim.lr: 0.0005 -> 0.001.*--fresh"):
        main(["train", "--config", str(tiny_yaml), "--out", str(out), "--quiet"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--config", "nope", "--out", "x"], "not found"),
        (
            ["train", "--config", "demo", "--set", "optim.bogus=1", "--out", "x"],
            "unknown config key",
        ),
        (["probe", "--ckpt", "missing.pt"], "does not exist"),
    ],
)
def test_errors_exit_with_clear_message(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert message in str(exc.value)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    main(["demo", "--out", str(tmp_path), "--quiet"])
    printed = capsys.readouterr().out
    assert "raw pixels, same linear probe" in printed and "next steps:" in printed
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"pixels", "majority", "releases", "demo_run"} <= set(results)
