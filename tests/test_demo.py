"""`sparsejepa demo` end to end on a few images: the shipped releases against raw pixels, the
figures from the manifest, a few training steps, the verdicts and the next steps."""

import json

import pytest

from sparsejepa import baselines, demo, probe, release

RELEASE = {"tasks": {t: {"best_by_val": {"top1": v}} for t, v in (("count", 55.0), ("dist", 40.0))}}
PIXELS = {"tasks": {t: {"best_by_val": {"top1": v}} for t, v in (("count", 31.0), ("dist", 41.0))}}


def _fake(top1: float):
    """Stands in for run_probes / pixel_probes (tested apart; hundreds of optimiser steps each)."""

    def probes(model_or_dataset, dataset=None, *, tasks, **kwargs):
        return {"tasks": {t: {"best_by_val": {"top1": top1}} for t in tasks}}

    return probes


def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(probe, "run_probes", _fake(50.0))
    monkeypatch.setattr(baselines, "pixel_probes", _fake(30.0))
    out = tmp_path / "demo"
    results = demo.run(
        out, overrides=["train.epochs=1", "train.batch_size=32"], sizes=(96, 48), progress=False
    )
    text = capsys.readouterr().out
    shipped = {
        name: f"{name} ({r.method}, {r.config.train.epochs:g} ep cifar100)"
        for name in ("jepa_s0", "sparsejepa_s0")
        for r in [release.load(name)]
    }
    for line in (
        "raw pixels, same linear probe",
        "majority class",
        "demo run (3 steps",
        *shipped.values(),
        "next steps:",
        "make figures",
        "beats the raw-pixel probe on every task",
    ):
        assert line in text, line
    assert set(results["releases"]) == {"jepa_s0", "sparsejepa_s0"}
    assert set(results["pixels"]["tasks"]) == {"count", "dist", "shape"}
    assert results["demo_run"]["steps"] == 3
    assert json.loads((out / "results.json").read_text())["probe_set"]["n_train"] == 96
    for name in ("01_probe_transfer", "02_group_connectivity", "03_training_curves"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000, name


def test_verdict_says_plainly_where_pixels_win():
    tasks = ("count", "dist")
    assert "beats the raw-pixel probe on every task" in demo.verdict(
        "a", RELEASE, {"tasks": {t: {"best_by_val": {"top1": 10.0}} for t in tasks}}, tasks
    )
    said = demo.verdict("The demo run", RELEASE, PIXELS, tasks)
    assert said.startswith("The demo run does NOT beat the raw-pixel probe on dist")
    assert "count +24.0, dist -1.0" in said
    table = demo.table([("x", RELEASE)], PIXELS, {"count": 16.7, "dist": 16.7}, tasks)
    assert "55.0 (+24.0)" in table and "40.0 ( -1.0)" in table


@pytest.mark.slow
def test_shipped_jepa_clears_the_pixel_probe_by_10_points(tmp_path):
    """The demo's target, at its own sizes and with the real probes (minutes on a CPU)."""
    results = demo.run(tmp_path / "demo", overrides=["train.epochs=0.5"], progress=False)
    for task in ("count", "dist"):
        pixels = results["pixels"]["tasks"][task]["best_by_val"]["top1"]
        jepa = results["releases"]["jepa_s0"]["tasks"][task]["best_by_val"]["top1"]
        assert jepa >= pixels + 10, (task, jepa, pixels)
