"""The multiinfo CLI on .npy/.npz/.pt/.csv files, --json output, error exit codes."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import theory
from theory.cli import main, parse_group_spec
from theory.closed_forms import gaussian_plugin_bias

R = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.2], [0.3, 0.2, 1.0]])
X = np.random.default_rng(0).standard_normal((500, 3)) @ np.linalg.cholesky(R).T
EXPECTED = theory.multiinformation(X, method="gaussian")


def run_json(capsys, *args) -> dict:
    assert main([*map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_npy_npz_pt_csv(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", emb=X, other=X[:, :2])
    torch.save({"emb": torch.from_numpy(X)}, tmp_path / "d.pt")
    torch.save(torch.from_numpy(X), tmp_path / "t.pt")
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="a,b,c", comments="")
    for args in (["x.npy"], ["x.npz", "--key", "emb"], ["d.pt", "--key", "emb"], ["t.pt"],
                 ["x.csv"]):
        out = run_json(capsys, tmp_path / args[0], *args[1:], "--method", "gaussian")
        assert out["value"] == pytest.approx(EXPECTED, rel=1e-9), args
        assert (out["N"], out["d"], out["unit"]) == (500, 3, "nats")


def test_groups_base_ci_and_auto(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    out = run_json(capsys, tmp_path / "x.npy", "--method", "gaussian", "--groups", "0-1;2",
                   "--base", "2")
    plugin = theory.gaussian_multiinformation(np.corrcoef(X.T), [[0, 1], [2]])
    assert out["value"] == pytest.approx((plugin - gaussian_plugin_bias(500, [2, 1])) / math.log(2))
    assert out["unit"] == "bits" and out["groups"] == [[0, 1], [2]]
    assert out["method"] == "gaussian" and out["reason"] == "requested"
    # auto on Gaussian data: the JSON names the method it chose and the evidence
    out = run_json(capsys, tmp_path / "x.npy", "--ci", "0.9")
    assert out["method"] == "copula" and out["low"] < out["value"] < out["high"]
    assert "Gaussian copula not rejected" in out["reason"] and "se" in out["reason"]
    assert main([str(tmp_path / "x.npy"), "--method", "gaussian"]) == 0
    assert "nats" in capsys.readouterr().out


def test_group_spec_parser():
    assert parse_group_spec("0-2;3,5;4", 6) == [[0, 1, 2], [3, 5], [4]]
    assert parse_group_spec("size:2", 6) == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="multiple"):
        parse_group_spec("size:4", 6)


@pytest.mark.parametrize(("args", "message"), [
    (["missing.npy"], "no such file"),
    (["x.npz"], "choose one with --key"),
    (["x.npz", "--key", "nope"], "key 'nope' not in"),
    (["x.txt"], "unsupported file type"),
    (["x.npy", "--groups", "0-1"], "do not cover columns"),
    (["x.npy", "--groups", "a-b"], "bad group spec"),
    (["bad.npy"], "NaN/Inf"),
])
def test_errors_exit_2_with_message(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", X)
    np.savez("x.npz", a=X, b=X)
    (tmp_path / "x.txt").write_text("1,2\n")
    bad = X.copy()
    bad[3, 1] = np.nan
    np.save("bad.npy", bad)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    np.save(tmp_path / "x.npy", X)
    done = subprocess.run([sys.executable, "-m", "theory", str(tmp_path / "x.npy"), "--method",
                           "gaussian", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == pytest.approx(EXPECTED)
