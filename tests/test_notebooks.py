"""End to end: `reproduce` trains, probes and exports tiny checkpoints on the CPU, then every
numbered notebook runs headless against them (a broken notebook fails `make test`)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import nbformat
import pytest

from sparsejepa import figures, release, reproduce
from sparsejepa.checkpoint import CheckpointError
from sparsejepa.config import ConfigError, from_dict, load_config, to_dict

TINY = """
name: tiny
model: {img_size: 32, patch: 8, width: 32, depth: 2, heads: 2, pred_width: 16, pred_depth: 1,
        pred_heads: 2}
mask: {min_keep: 2}
sparsity: {enabled: false, latent_dim: 4, groups: 4, group_latent: 2, hidden: 8, w_lr: 0.05}
data: {dataset: shapes, n_train: 96, n_test: 160}
train: {epochs: 2, batch_size: 32, device: cpu, precision: fp32, log_every: 1, rankme_every: 1,
        ckpt_every: 100}
"""

SPEC = """
preset: tiny.yaml
probe:
  datasets: {shapes: {}}
  optional: {clevr: {n_train: 8, n_test: 8}}
runs:
  jepa_s0: [sparsity.enabled=false, train.seed=0]
  jepa_s1: [sparsity.enabled=false, train.seed=1]
  sparsejepa_s0: [sparsity.enabled=true, train.seed=0]
  sparsejepa_s1: [sparsity.enabled=true, train.seed=1]
  sparsejepa_lam10_s0: [sparsity.enabled=true, sparsity.lam=10.0, train.seed=0]
  varjepa_s0: [method=var_jepa, train.seed=0]
  ecijepa_s0: [sparsity.enabled=false, model.conditioning=ec, train.seed=0]
"""
OURS = ("01_", "02_", "03_", "04_", "05_", "06_", "07_")  # this package's claims; others run apart
OTHERS = [p for p in figures.notebook_paths() if not p.name.startswith(OURS)]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The tiny spec reproduced: (spec path, runs dir, release dir, entries)."""
    root = tmp_path_factory.mktemp("reproduce")
    (root / "tiny.yaml").write_text(TINY)
    (root / "spec.yaml").write_text(SPEC)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SPARSEJEPA_CLEVR", raising=False)
        mp.setenv("SPARSEJEPA_CACHE", str(root / "cache"))  # no CLEVR: the optional set is skipped
        entries = reproduce.reproduce(root / "spec.yaml", root / "runs", root / "checkpoints",
                                      progress=False)  # fmt: skip
    return root / "spec.yaml", root / "runs", root / "checkpoints", entries


def test_reproduce_trains_probes_and_exports_every_run(released):
    spec, runs, out, entries = released
    assert release.releases(out) == sorted(entries) and len(entries) == 7
    for name, entry in entries.items():
        assert set(entry["probes"]) == {"shapes"}  # CLEVR is optional and absent here
        assert set(entry["probes"]["shapes"]["tasks"]) == {"shape", "count", "dist"}
        assert (entry["group_matrix"] is None) == (not name.startswith("sparsejepa"))
        assert entry["timing"]["train_s"] >= 0 and entry["timing"]["from_step"] == 0
        assert entry["config"]["name"] == name
        assert (runs / name / "probe_shapes.json").is_file()
    lam10 = release.load("sparsejepa_lam10_s0", directory=out)
    lam1 = release.load("sparsejepa_s0", directory=out)
    assert lam10.config.sparsity.lam == 10.0 and (lam10.group_matrix == 0).all()  # all pruned
    assert (lam1.group_matrix > 0).all()  # the weak penalty of 6 steps pruned nothing
    assert lam1.history[-1]["step"] == lam1.step == 6
    assert entries["varjepa_s0"]["method"] == "Var-JEPA"
    # rerunning a finished run trains nothing and exports the same weights
    ckpt = release.sha256_of(runs / "jepa_s0" / "ckpt.pt")
    again = reproduce.reproduce(spec, runs, out, only=["jepa_s0"], progress=False)
    assert release.sha256_of(runs / "jepa_s0" / "ckpt.pt") == ckpt
    assert again["jepa_s0"]["sha256"] == entries["jepa_s0"]["sha256"]
    assert again["jepa_s0"]["timing"] == entries["jepa_s0"]["timing"]  # the times of its training


def test_reproduce_refuses_other_settings_for_a_run_it_would_resume(released):
    spec, runs, out, _ = released
    manifest = (out / "MANIFEST.json").read_bytes()
    with pytest.raises(
        CheckpointError,
        match=r"jepa_s0/ckpt.pt was trained with other settings "
        r"\(optim.lr: 0.001 -> 0.01\)",
    ):
        reproduce.reproduce(spec, runs, out, only=["jepa_s0"], overrides=["optim.lr=0.01"])
    assert (out / "MANIFEST.json").read_bytes() == manifest


def test_notebooks_01_to_07_run_end_to_end(released, tmp_path):
    _, _, out, _ = released
    paths = [p for p in figures.notebook_paths() if p.name.startswith(OURS)]
    assert [p.name[:3] for p in paths] == list(OURS), [p.name for p in paths]
    timings = figures.run_notebooks(paths, checkpoints=out, figures=tmp_path, timeout=300)
    assert set(timings) == {p.name for p in paths}
    for stem in (
        "01_probe_transfer",
        "02_group_connectivity",
        "03_training_curves",
        "04_multiinformation",
        "05_theory_numerics",
        "06_linear_jepa_trajectories",
        "06_linear_jepa_critical_time",
        "07_lambda_ablation",
    ):
        for suffix in (".png", ".pdf"):
            assert (tmp_path / f"{stem}{suffix}").stat().st_size > 1000, stem + suffix
    table = (tmp_path / "01_probe_transfer.txt").read_text()
    assert "SparseJEPA (reported by a secondary source)" in table and "45.40" in table
    assert "shapes/count [stand-in for Clevr/Count]" in table and "(n=2)" in table
    assert "0/16" in (tmp_path / "02_group_connectivity.txt").read_text()  # lambda 10 pruned all
    assert "881.2" in (tmp_path / "06_linear_jepa_vs_mae.txt").read_text()  # REFERENCE's value


def test_lambda_ablation_keeps_one_training_length():
    def run(method, epochs, lam=None):
        sparsity = SimpleNamespace(enabled=lam is not None, lam=lam)
        return SimpleNamespace(
            method=method,
            config=SimpleNamespace(sparsity=sparsity, train=SimpleNamespace(epochs=epochs)),
        )

    sweep = [run("SparseJEPA", 2, lam) for lam in (0.0, 1.0, 1.0, 3.0)] + [run("JEPA", 2)]
    longer = [
        run("SparseJEPA", 18, 1.0),
        run("SparseJEPA", 18, 1.0),
        run("JEPA", 18),
        run("Var-JEPA", 2),
    ]
    assert figures.ablation_runs(sweep + longer) == sweep
    assert figures.ablation_runs(longer[2:]) == []


def test_groups_tell_the_heads_readings_apart():
    def run(*sets):
        config = load_config("cifar100_cpu", list(sets))
        return SimpleNamespace(method="SparseJEPA" if config.sparsity.enabled else "JEPA",
                               config=config)  # fmt: skip

    on = ["sparsity.enabled=true", "sparsity.recon_target=self"]  # the `fixed` head
    old = ["sparsity.standardize_target=true", "sparsity.lam_per=element",
           "sparsity.zero_init_generator=false"]  # fmt: skip
    assert figures.group_of(run()) == "JEPA 32 ep"
    assert figures.group_of(run(on[0])) == "SparseJEPA lam=1 EMA target 32 ep"  # the presets'
    assert figures.group_of(run(*on)) == "SparseJEPA lam=1 32 ep"
    assert figures.group_of(run(*on, "sparsity.pool=true")) == "SparseJEPA lam=1 pooled 32 ep"
    assert figures.group_of(run(*on, "train.epochs=18", *old)) == "SparseJEPA lam=1 old head 18 ep"
    assert (figures.group_of(run(*on, old[0], "sparsity.latent_dim=64"))
            == "SparseJEPA lam=1 std target K=64 32 ep")  # fmt: skip


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: p.name)
def test_other_numbered_notebooks_run(released, tmp_path, path):
    """Notebooks of other parts of the project (e.g. 10_*) run too, against the same releases."""
    figures.run_notebooks([path], checkpoints=released[2], figures=tmp_path, timeout=300)


@pytest.mark.parametrize("path", figures.notebook_paths(), ids=lambda p: p.name)
def test_notebooks_are_stripped_and_paired_with_their_py(path):
    import jupytext

    notebook = nbformat.read(path, as_version=4)
    assert all(
        not c.get("outputs") and not c.get("execution_count")
        for c in notebook.cells
        if c.cell_type == "code"
    ), f"{path.name}: strip outputs before committing"
    paired = path.with_suffix(".py")
    if paired.is_file():
        text = jupytext.read(paired)
        assert [(c.cell_type, c.source) for c in text.cells] == [
            (c.cell_type, c.source) for c in notebook.cells
        ], f"{path.name} and {paired.name} differ: run `jupytext --sync {paired}`"


def test_shipped_spec_loads_with_the_current_presets():
    spec = reproduce.load_spec()
    assert {"jepa_s0", "jepa_s1", "sparsejepa_s0", "sparsejepa_s1"} <= set(spec.runs)
    configs = [load_config(spec.preset, [*spec.common, *sets]) for sets in spec.runs.values()]
    assert sum(not c.sparsity.enabled for c in configs) >= 2
    assert len({c.sparsity.lam for c in configs if c.sparsity.enabled}) >= 3  # a lambda sweep
    assert {"cifar100", "shapes"} <= set(spec.probe_sets) and "clevr" in spec.optional_sets


def test_spec_runs_share_overrides_through_a_yaml_anchor(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "preset: demo\nruns:\n  a: [&short [train.epochs=2, train.seed=0], x=1]\n"
        "  b: [*short, train.seed=1]\n"
    )
    spec = reproduce.load_spec(path)
    assert spec.runs == {
        "a": ["train.epochs=2", "train.seed=0", "x=1"],
        "b": ["train.epochs=2", "train.seed=0", "train.seed=1"],
    }


def test_shipped_releases_were_trained_with_the_spec_they_are_listed_under():
    """Changing a preset must not silently re-label a shipped checkpoint: every release in
    checkpoints/ has the config its spec entry gives today (the run name aside, and the head's
    settings where neither has a head)."""
    spec = reproduce.load_spec()
    shipped = release.read_manifest(reproduce.DEFAULT_SPEC.parent)["entries"]
    assert shipped, "no shipped releases"
    for name, entry in shipped.items():
        cfg = load_config(spec.preset, [*spec.common, *spec.runs[name]])
        want = json.loads(json.dumps(to_dict(cfg)))
        got = json.loads(json.dumps(to_dict(from_dict(entry["config"]))))  # retired keys dropped
        if not got["sparsity"]["enabled"] and not want["sparsity"]["enabled"]:
            got["sparsity"] = want["sparsity"]
        assert {**got, "name": None} == {**want, "name": None}, name


def test_shipped_releases_load_and_stay_compact():
    """Every shipped release passes its sha256 and config checks and loads into its encoder; the
    weights are float16 and checkpoints/ stays under 30 MB (issue: compact releases)."""
    folder = reproduce.DEFAULT_SPEC.parent
    for name, entry in release.read_manifest(folder)["entries"].items():
        loaded = release.load(name, directory=folder)
        assert loaded.probes and loaded.history, name
        assert entry["dtype"] == "float16", name
    total = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert total < 30e6, f"checkpoints/ holds {total / 1e6:.1f} MB"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("runs: {a: []}", "'preset' must name"),
        ("preset: demo\nruns: {}", "'runs' must map"),
        ("preset: demo\nruns: {a: x=1}", "expected a list of key=value"),
        ("preset: demo\nruns: {a: [[x=1, [y=2]]]}", "expected a list of key=value"),
        ("preset: demo\nprobe: {datasets: {mnist: {}}}\nruns: {a: []}", "unknown dataset 'mnist'"),
        ("preset: demo\nprobe: {datasets: {shapes: {n: 3}}}\nruns: {a: []}", "only positive"),
        ("preset: demo\nextra: 1\nruns: {a: []}", "top-level keys"),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path, spec, message):
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    with pytest.raises(ConfigError, match=message):
        reproduce.reproduce(path, tmp_path / "runs", tmp_path / "out")


def test_unknown_run_and_bad_override_fail_before_training(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("preset: demo\nruns: {a: [sparsity.enabled=true]}")
    with pytest.raises(ConfigError, match=r"runs \['b'\] are not in the spec"):
        reproduce.reproduce(path, tmp_path / "runs", tmp_path / "out", only=["b"])
    with pytest.raises(ConfigError, match="unknown config key 'sparsity.lamda'"):
        reproduce.reproduce(
            path, tmp_path / "runs", tmp_path / "out", overrides=["sparsity.lamda=1"]
        )
    assert not (tmp_path / "runs").exists() and json.dumps(release.read_manifest(tmp_path / "out"))


def test_clevr_is_probed_when_the_data_is_found(released, tmp_path, monkeypatch):
    from test_data_clevr import TRAIN, VAL, write_clevr

    spec, runs, _, _ = released
    monkeypatch.setenv(
        "SPARSEJEPA_CLEVR", str(write_clevr(tmp_path, {"train": TRAIN * 3, "val": VAL * 3}))
    )
    with_clevr = spec.with_name("spec_clevr.yaml")
    with_clevr.write_text(
        "preset: tiny.yaml\nprobe: {datasets: {}, optional: {clevr: {}}}\n"
        "runs: {jepa_s0: [sparsity.enabled=false, train.seed=0]}\n"
    )
    entry = reproduce.reproduce(with_clevr, runs, tmp_path / "out", progress=False)["jepa_s0"]
    assert set(entry["probes"]) == {"clevr"}
    clevr = entry["probes"]["clevr"]
    assert set(clevr["tasks"]) == {"count", "dist"} and clevr["n_train"] == 3 * len(TRAIN)


def test_runner_runs_every_notebook_and_names_each_failure(tmp_path):
    writes = (
        "import os, pathlib\nout = pathlib.Path(os.environ['SPARSEJEPA_FIGURES'])\n"
        "out.mkdir()\n(out / 'ok.txt').write_text('x')"
    )
    cells = {"01_fails.ipynb": "raise ValueError('boom')", "02_writes.ipynb": writes}
    for name, source in cells.items():
        nbformat.write(
            nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), tmp_path / name
        )
    paths = figures.notebook_paths(tmp_path)
    with pytest.raises(
        figures.NotebookError,
        match=r"1 of 2 notebooks failed: \['01_fails.ipynb'\]"
        r"(.|\n)*boom",
    ):
        figures.run_notebooks(paths, figures=tmp_path / "out")
    assert (tmp_path / "out" / "ok.txt").read_text() == "x"  # ran after the failure
    assert "SPARSEJEPA_FIGURES" not in os.environ  # the caller's environment is restored
