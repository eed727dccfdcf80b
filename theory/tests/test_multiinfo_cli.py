"""The multiinfo CLI on .npy/.npz/.pt/.csv files, --json output, error exit codes."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

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
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="a,b,c", comments="")
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",")
    cases = [["x.npy"], ["x.npz", "--key", "emb"], ["x.csv"], ["plain.csv"]]
    try:
        import torch
    except ModuleNotFoundError:
        pass
    else:
        torch.save({"emb": torch.from_numpy(X)}, tmp_path / "d.pt")
        torch.save(torch.from_numpy(X), tmp_path / "t.pt")
        cases += [["d.pt", "--key", "emb"], ["t.pt"]]
    for args in cases:
        out = run_json(capsys, tmp_path / args[0], *args[1:], "--method", "gaussian")
        assert out["value"] == pytest.approx(EXPECTED, rel=1e-9), args
        assert (out["N"], out["d"], out["unit"]) == (500, 3, "nats")


def test_groups_base_ci_and_auto(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    out = run_json(
        capsys, tmp_path / "x.npy", "--method", "gaussian", "--groups", "0-1;2", "--base", "2"
    )
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.npy"], "no such file"),
        (["x.npz"], "choose one with --key"),
        (["x.npz", "--key", "nope"], "key 'nope' not in"),
        (["x.txt"], "unsupported file type"),
        (["x.npy", "--groups", "0-1"], "do not cover columns"),
        (["x.npy", "--groups", "a-b"], "bad group spec"),
        (["bad.npy"], "NaN/Inf"),
    ],
)
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
    done = subprocess.run(
        [sys.executable, "-m", "theory", str(tmp_path / "x.npy"), "--method", "gaussian", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == pytest.approx(EXPECTED)


def _bad_files(tmp_path):
    """name -> writer: files that multiinfo must refuse in one line."""
    np.save(tmp_path / "good.npy", X)
    np.savez(tmp_path / "good.npz", a=X)
    good_npy, good_npz = (tmp_path / "good.npy").read_bytes(), (tmp_path / "good.npz").read_bytes()
    rows = "\n".join(",".join(map(str, r)) for r in X[:50])
    return {
        "empty.npy": b"",
        "empty.npz": b"",
        "empty.csv": b"",
        "empty.pt": b"",
        "truncated.npy": good_npy[:200],
        "truncated.npz": good_npz[:300],
        "garbage.npy": b"not numpy at all " * 8,
        "garbage.npz": b"PK\x03\x04 broken" * 8,
        "truncated.pt": b"PK\x03\x04" + b"\x00" * 40,
        "nan_first_row.csv": ("nan,1,2\n" + rows).encode(),
        "inf_first_row.csv": ("1,-inf,2\n" + rows).encode(),
        "ragged.csv": b"1,2,3\n4,5\n",
        "words.csv": b"a,b\nx,y\n",
    }


@pytest.mark.parametrize(
    "name",
    [
        "empty.npy",
        "empty.npz",
        "empty.csv",
        "empty.pt",
        "truncated.npy",
        "truncated.npz",
        "garbage.npy",
        "garbage.npz",
        "truncated.pt",
        "nan_first_row.csv",
        "inf_first_row.csv",
        "ragged.csv",
        "words.csv",
        "object.npy",
        "complex.npy",
        "two_rows.npy",
    ],
)
def test_bad_input_files_give_one_line_naming_the_file(tmp_path, capsys, name):
    # issue 24: BadZipFile / EOFError tracebacks, a NaN first row dropped as a header (N = 500 of
    # 501), complex input cast to real with a warning, ksg on 2 rows printing -1.0000 nats
    files = _bad_files(tmp_path)
    path = tmp_path / name
    if name in files:
        path.write_bytes(files[name])
    elif name == "object.npy":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif name == "complex.npy":
        np.save(path, X + 1j)
    else:
        np.save(path, np.random.default_rng(0).standard_normal((2, 6)))
    method = "ksg" if name == "two_rows.npy" else "gaussian"
    assert main([str(path), "--method", method]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multiinfo: error: "), captured.err
    assert name in lines[0] or "rows for d =" in lines[0], lines[0]
    assert "Traceback" not in captured.err


def test_refused_pt_payload_is_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    assert main([str(tmp_path / "evil.pt")]) == 2
    captured = capsys.readouterr()
    assert "this must never run" not in captured.out
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert "evil.pt" in captured.err and "torch.save(tensor)" in captured.err
    assert "\x1b" not in captured.err  # torch's message carries terminal colour codes
    torch.save(torch.from_numpy(X + 1j), tmp_path / "complex.pt")
    assert main([str(tmp_path / "complex.pt")]) == 2
    assert "complex" in capsys.readouterr().err


def test_without_torch_pt_and_neural_say_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "theory.neural", raising=False)
    monkeypatch.delattr(theory, "neural", raising=False)  # bound once any test imported it
    (tmp_path / "x.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert main([str(tmp_path / "x.pt")]) == 2
    assert "needs torch" in capsys.readouterr().err
    with pytest.raises(ImportError, match="method='neural' needs torch"):
        theory.multiinformation(X, method="neural", seed=0)
