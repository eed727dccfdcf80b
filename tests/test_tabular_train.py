"""Tabular training: feature masks, configs, exact resume, EMA, evaluation, tiny end-to-end run."""

import json

import numpy as np
import pytest
import torch
from test_checkpoint import PickleThatWritesAFile

from sparsejepa.checkpoint import CheckpointError
from sparsejepa.cli import main
from sparsejepa.config import ConfigError
from sparsejepa.tabular.config import from_dict, load_config, presets, to_dict
from sparsejepa.tabular.data import load_table
from sparsejepa.tabular.evaluate import evaluate, selective_accuracy
from sparsejepa.tabular.experiment import markdown, run_comparison
from sparsejepa.tabular.masks import sample_feature_masks
from sparsejepa.tabular.train import load, load_trained, train

TINY = {
    "data": {"name": "mixture", "mixture_rows": 240},
    "model": {
        "width": 16,
        "depth": 1,
        "heads": 2,
        "pred_width": 16,
        "pred_depth": 1,
        "pred_heads": 2,
        "latent_dim": 4,
        "z_dim": 4,
    },
    "train": {"epochs": 2, "batch_size": 30, "log_every": 2, "rankme_every": 4, "ckpt_every": 3},
    "optim": {"warmup_epochs": 1},
    "var": {"anneal_epochs": 1},
    "eval": {"seeds": [0], "heads": ["logreg"], "mask_draws": 2},
}
TINY_SET = [
    "data.mixture_rows=240",
    "model.width=16",
    "model.depth=1",
    "model.heads=2",
    "model.pred_width=16",
    "model.pred_depth=1",
    "model.pred_heads=2",
    "model.latent_dim=4",
    "model.z_dim=4",
    "train.epochs=2",
    "train.batch_size=30",
    "eval.heads=[logreg,hgb]",
    "eval.mask_draws=2",
]


def tiny(method: str, **extra):
    values = json.loads(json.dumps(TINY))
    values["model"]["method"] = method
    for section, entries in extra.items():
        values.setdefault(section, {}).update(entries)
    return from_dict(values)


def test_feature_masks_never_overlap_the_context():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 13, 64):
        m = sample_feature_masks(16, n, g, num_targets=4)
        assert (m.context[:, 0] == 0).all()  # [REG] always in the context
        ctx = m.context[:, 1:]
        assert ctx.min() >= 1 and m.targets.max() <= n and m.targets.min() >= 1
        for b in range(16):
            c = set(ctx[b].tolist())
            assert len(c) == ctx.shape[1]  # no repeats
            for t in m.targets[b]:
                assert len(set(t.tolist())) == len(t) and not c & set(t.tolist())
    a = sample_feature_masks(4, 10, torch.Generator().manual_seed(3))
    b = sample_feature_masks(4, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)


def test_presets_parse_and_errors_name_the_fix():
    assert {
        "breast_cancer",
        "wine",
        "digits",
        "mixture",
        "simulation",
        "adult",
        "mnist",
        "covertype",
    } <= set(presets())
    for name in presets():
        load_config(name)
    with pytest.raises(ConfigError, match="eval.pools"):
        load_config("wine", ["eval.pools=[max]"])
    old = to_dict(load_config("wine"))
    old["eval"]["pool"] = old["eval"].pop("pools")[1]  # a config saved before eval.pools
    assert from_dict(old).eval.pools == ["reg"]
    with pytest.raises(ConfigError, match="unknown config key 'model.widht'"):
        load_config("wine", ["model.widht=3"])
    with pytest.raises(ConfigError, match=r"tabular config 'nope' not found.*'wine'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="model.method: must be one of"):
        load_config("wine", ["model.method=vae"])
    with pytest.raises(ConfigError, match="never overlap"):
        load_config("wine", ["mask.context_share=[0.5,0.9]"])
    with pytest.raises(ConfigError, match="batch_size"):
        train(load_config("wine", ["train.batch_size=1000"]), "/nonexistent-never-created")


@pytest.mark.parametrize("method", ["t_jepa", "var_t_jepa"])
def test_resume_is_exact(tmp_path, method):
    cfg = tiny(method)
    table = load_table(cfg.data)
    full = train(cfg, tmp_path / "full", table=table, log=None)
    assert full.step == 2 * (len(table.y_train) // 30)
    train(cfg, tmp_path / "cut", table=table, log=None, stop_at=5)
    assert load(tmp_path / "cut" / "ckpt.pt")["step"] == 5
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)["step"] == 5
    assert not list((tmp_path / "cut").glob("*.tmp"))  # atomic write left no temp file
    resumed = train(cfg, tmp_path / "cut", table=table, log=None)
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    if method == "t_jepa":  # the EMA target moved away from its initial copy of the student
        assert torch.equal(full.target.norm.weight, resumed.target.norm.weight)
        assert not all(
            torch.equal(p, q)
            for p, q in zip(full.target.parameters(), full.model.backbone.parameters(), strict=True)
        )
        assert not any(p.requires_grad for p in full.target.parameters())
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert "rankme" in json.loads(lines[-1])


def test_corrupt_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load(tmp_path / "bad.pt")
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a sparsejepa tabular"):
        load(tmp_path / "other.pt")
    torch.save({"kind": "sparsejepa.tabular", "step": 1}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="older version"):
        load(tmp_path / "old.pt")


def test_pickled_objects_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = {"kind": "sparsejepa.tabular", "step": 1, "optimizer": PickleThatWritesAFile(marker)}
    torch.save(evil, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"pickled object \(io.open\).* re-run training"):
        load(tmp_path / "evil.pt")
    assert not marker.exists()


def test_selective_accuracy_drops_the_most_uncertain_rows():
    correct = np.array([True, True, False, True, False])
    unc = np.array([0.1, 0.2, 0.9, 0.3, 0.8])
    assert selective_accuracy(correct, unc, [0.0, 0.2, 0.4]) == [0.6, 0.75, 1.0]
    assert selective_accuracy(correct, -unc, [0.4]) == [pytest.approx(1 / 3)]


def test_var_t_jepa_evaluation_reports_uncertainty_and_spearman(tmp_path):
    cfg = tiny("var_t_jepa")
    table = load_table(cfg.data)
    train(cfg, tmp_path, table=table, log=None)
    state = load_trained(tmp_path / "ckpt.pt", table)
    r = evaluate(state, table, cfg.eval, seed=0)
    assert 0 <= r["acc"]["logreg"] <= 1 and r["dim"] == 4
    assert set(r["spearman"]) == {
        "target_posterior",
        "target_posterior_x",
        "predictor",
        "predictor_x",
        "predictor_loo",
        "z",
        "predictive",
        "oracle",
    }
    assert r["predictor_r2"] <= 1 and (np.array(r["uncertainty_test"]["predictive"]) > 0).all()
    sim = r["simulation"]  # Var-JEPA's Table 1 columns
    assert 0 <= sim["probe_sx"] <= 1 and 0 <= sim["probe_sy"] <= 1
    assert sim["kl_aggregate"] >= 0 and sim["cov_minus_i"] >= 0
    assert "spearman" not in evaluate(state, table, cfg.eval, 0, "reg", uncertainty=False)
    assert r["spearman"]["oracle"] > 0.2  # the reference does not depend on training
    unc = np.array(r["uncertainty_test"]["predictor"])
    assert unc.shape == table.y_test.shape and (unc > 0).all()
    curve = r["selective_uncertainty"]["logreg"]["predictor"]
    assert len(curve) == len(cfg.eval.drop_fractions)
    cfg.eval.var_embedding = "backbone"
    assert evaluate(state, table, cfg.eval, seed=0)["dim"] == cfg.model.width == 16


def test_end_to_end_compare_through_the_cli(tmp_path, capsys):
    main(
        [
            "tabular",
            "compare",
            "--config",
            "mixture",
            "--out",
            str(tmp_path),
            "--seeds",
            "0",
            "1",
            "--quiet",
            *sum((["--set", s] for s in TINY_SET), []),
        ]
    )
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted((r["method"], r["pool"], r["seed"]) for r in results["runs"]) == sorted(
        [("raw", None, s) for s in (0, 1)]
        + [(m, p, s) for m in ("t_jepa", "var_t_jepa") for p in ("mean", "reg") for s in (0, 1)]
    )
    assert len(results["ambiguity_test"]) == results["table"]["n_test"]
    text = (tmp_path / "results.md").read_text()
    assert "| var_t_jepa[reg] |" in text and "Spearman" in text and text.strip() in printed
    assert "Simulation study" in text
    assert markdown(results) == text.strip()
    # a second call loads the finished runs instead of training again, keeping their train time
    mtime = (tmp_path / "var_t_jepa" / "seed0" / "ckpt.pt").stat().st_mtime_ns
    again = run_comparison(
        from_dict(results["config"]), tmp_path, methods=["var_t_jepa"], seeds=[0], log=None
    )
    assert (tmp_path / "var_t_jepa" / "seed0" / "ckpt.pt").stat().st_mtime_ns == mtime
    first = next(r for r in results["runs"] if r["method"] == "var_t_jepa" and r["seed"] == 0)
    assert again["runs"][0]["train_seconds"] == first["train_seconds"] > 0


def test_interrupted_compare_keeps_the_runs_it_finished(tmp_path, monkeypatch):
    from sparsejepa.tabular import experiment

    calls = []

    def evaluate_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(experiment, "evaluate", evaluate_then_fail)
    cfg = from_dict(TINY)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(cfg, tmp_path, methods=["raw"], seeds=[0, 1], log=None)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in results["runs"]] == [("raw", 0)]
    assert not list(tmp_path.glob("*.part"))


def test_notebook_falls_back_to_a_tagged_quick_run_without_results(tmp_path, monkeypatch):
    from sparsejepa.tabular import figures

    monkeypatch.setenv("SPARSEJEPA_TABULAR_RUNS", str(tmp_path / "none"))
    monkeypatch.setenv("SPARSEJEPA_FIGURES", str(tmp_path / "figs"))
    with pytest.raises(FileNotFoundError, match="sparsejepa tabular compare"):
        figures.load_results(["wine"])
    messages = []
    results, tag = figures.load_or_quick(["wine", "simulation"], log=messages.append)
    assert tag == "_quick" and set(results) == {"wine", "simulation"} and "QUICK" in messages[0]
    table = figures.simulation_table({"simulation": results["simulation"]}).splitlines()
    assert len(table) == 3 and table[2].startswith("| full ELBO | ")
    png = figures.save(figures.plot_ambiguity(results["simulation"]), "amb" + tag)
    assert png.stat().st_size > 1000 and png.with_suffix(".pdf").is_file()
    assert figures.save(figures.plot_selective(results), "sel").stat().st_size > 1000
    # tables without Var-T-JEPA runs yet (a compare still running): skipped, or a clear error
    raw_only = {**results["wine"], "runs": [r for r in results["wine"]["runs"] if not r["pool"]]}
    fig = figures.plot_selective({"partial": raw_only, "wine": results["wine"]})
    assert [ax.get_title() for ax in fig.axes] == ["wine"]
    with pytest.raises(ValueError, match="no table with Var-T-JEPA"):
        figures.plot_selective({"partial": raw_only})
    assert figures.simulation_table({"wine": results["wine"]}).startswith("(no simulation-study")


def test_var_minus_t_gap_and_its_standard_error():
    from sparsejepa.tabular import figures

    def results(method, accs):
        return {"runs": [{"method": method, "pool": "mean", "acc": {"mlp": a}} for a in accs]}

    t = results("t_jepa", [0.80, 0.82, 0.84])  # mean 0.82, s 0.02
    close = results("var_t_jepa", [0.80, 0.81, 0.82])  # -1.0 points, SE sqrt(4+1)/sqrt(3) = 1.3
    far = results("var_t_jepa", [0.70, 0.70, 0.70])  # -12.0 points, SE 1.2
    table = figures.var_minus_t({"close": (t, close), "far": (t, far)}).splitlines()
    assert table[0] == "| table ([mean]) | mlp |"
    assert table[2] == "| close | -1.0 ± 1.3 * |"
    assert table[3] == "| far | -12.0 ± 1.2 |"
    var_only = {"var only": (close, close)}  # an ablation folder without T-JEPA: no row
    assert figures.var_minus_t({}).startswith("(no table")
    assert figures.var_minus_t(var_only).startswith("(no table")


def test_readout_pairs_add_the_backbone_reevaluation_and_name_each_readout(tmp_path, monkeypatch):
    from sparsejepa.tabular import figures

    def results(readout):
        return {"config": {"eval": {"var_embedding": readout}}, "runs": []}

    monkeypatch.setenv("SPARSEJEPA_TABULAR_RUNS", str(tmp_path))
    (tmp_path / "a_backbone").mkdir()
    (tmp_path / "a_backbone" / "results.json").write_text(json.dumps(results("backbone")))
    base = {"a": results("posterior_mean"), "b": results("posterior_mean")}
    pairs = figures.readout_pairs(base)
    assert list(pairs) == ["a, posterior means", "a, backbone", "b, posterior means"]
    assert pairs["a, backbone"][0] is base["a"]
    assert pairs["a, backbone"][1]["config"]["eval"]["var_embedding"] == "backbone"
    # a table itself evaluated at the backbone keeps its own row; the copy does not replace it
    (tmp_path / "c_backbone").mkdir()
    (tmp_path / "c_backbone" / "results.json").write_text(json.dumps(results("backbone")))
    own = results("backbone")
    assert figures.readout_pairs({"c": own}) == {"c, backbone": (own, own)}
