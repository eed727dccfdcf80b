"""`multiinfo PATH [--method M] [--groups SPEC] [--k K] [--key KEY] [--base B] [--ci L] [--json]`

Reads an (N, d) matrix from .npy, .npz (--key, or its only array), .pt (a tensor, or a dict with
--key) or .csv (numbers, comma-separated, optional header row) and prints its multiinformation.
Exit codes: 0 ok, 2 bad arguments or input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from theory.estimators import METHODS, multiinformation
from theory.inputs import as_matrix


def parse_group_spec(spec: str, d: int) -> list[list[int]]:
    """'0-3;4,5;6-9' -> [[0,1,2,3],[4,5],[6,7,8,9]] (';' between groups, ranges inclusive);
    'size:16' -> consecutive blocks of 16 columns (d must be a multiple)."""
    spec = spec.strip()
    if spec.startswith("size:"):
        try:
            size = int(spec[5:])
        except ValueError:
            raise ValueError(f"bad group spec {spec!r}: expected size:S, S an integer") from None
        if size < 1 or d % size:
            raise ValueError(f"group spec {spec!r}: d = {d} columns is not a multiple of {size}")
        return [list(range(a, a + size)) for a in range(0, d, size)]
    groups = []
    for part in spec.split(";"):
        cols = []
        for item in filter(None, (s.strip() for s in part.split(","))):
            try:
                lo, _, hi = item.partition("-")
                cols.extend(range(int(lo), int(hi or lo) + 1))
            except ValueError:
                raise ValueError(
                    f"bad group spec item {item!r} in {spec!r}: use e.g. '0-3;4,5;6-9' or 'size:4'"
                ) from None
        groups.append(cols)
    return groups


def load_matrix(path: str, key: str | None = None) -> np.ndarray:
    """The array stored in PATH (see module docstring). Every unreadable file (empty, truncated,
    not what its suffix says, a .pt payload torch refuses) is a ValueError naming the file and
    the fix."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such file: {path}")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz", ".pt", ".csv"):
        raise ValueError(
            f"unsupported file type {suffix!r} for {path}: use .npy, .npz, .pt or .csv"
        )
    if p.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); write the matrix into it again")
    if suffix == ".pt":
        return _load_pt(p, key)
    if suffix == ".csv":
        return _load_csv(p)
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        with np.load(p, allow_pickle=False) as z:
            return _pick({name: z[name] for name in z.files}, key, path)
    except (EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as err:
        if isinstance(err, ValueError) and str(err).startswith(f"key {key!r} not in"):
            raise
        if isinstance(err, ValueError) and "holds" in str(err) and "--key" in str(err):
            raise
        raise ValueError(
            f"cannot read {path} as {suffix} ({type(err).__name__}: "
            f"{_first_line(err)}): the file is truncated, corrupt or not a numpy "
            f"{suffix} file (object arrays are refused); save the matrix again with "
            f"numpy.{'save' if suffix == '.npy' else 'savez'}"
        ) from None


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message, without terminal colour codes, at most 160
    characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return (text.splitlines() or [""])[0][:160]


def _load_pt(p: Path, key: str | None) -> np.ndarray:
    """A tensor, or a dict of tensors (--key), saved with torch.save; torch.load with
    weights_only=True, so a payload that would run code is refused, in one line."""
    try:
        import torch
    except ModuleNotFoundError:
        raise ValueError(
            f"reading {p} (.pt) needs torch, which is not installed: install it "
            "(pip install torch) or save the matrix with numpy.save as .npy"
        ) from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"cannot read {p} as a tensor file ({type(err).__name__}: "
            f"{_first_line(err)}): it is truncated, corrupt, or holds objects other "
            "than tensors (refused: loading them could run code); save the matrix "
            "with torch.save(tensor) or numpy.save"
        ) from None
    return _pick(obj, key, str(p)) if isinstance(obj, dict) else obj


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _load_csv(p: Path) -> np.ndarray:
    """Comma-separated numbers; the first row is a header only when one of its fields is not a
    number (so a first row holding nan or inf is data, and refused later as NaN/Inf)."""
    with open(p) as f:
        first = f.readline()
    has_header = any(s.strip() and not _is_number(s) for s in first.split(","))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "input contained no data" -> error
            return np.loadtxt(p, delimiter=",", skiprows=int(has_header), ndmin=2)
    except (ValueError, UserWarning) as err:
        raise ValueError(
            f"cannot read {p} as comma-separated numbers ({_first_line(err)}); "
            "write one row per sample, the same number of numeric fields in each, "
            "with at most one header row"
        ) from None


def _pick(arrays: dict, key: str | None, path: str):
    if key is None:
        if len(arrays) != 1:
            raise ValueError(
                f"{path} holds {len(arrays)} arrays {sorted(arrays)}; choose one with --key"
            )
        return next(iter(arrays.values()))
    if key not in arrays:
        raise ValueError(f"key {key!r} not in {path}; available: {sorted(arrays)}")
    return arrays[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="multiinfo",
        description="Multiinformation (total correlation) of an (N, d) embedding matrix.",
    )
    parser.add_argument("path", help=".npy, .npz, .pt or .csv file with an (N, d) matrix")
    parser.add_argument("--method", default="auto", choices=METHODS)
    parser.add_argument("--groups", help="'0-3;4,5;6-9' or 'size:S': each group one variable")
    parser.add_argument(
        "--k", type=int, help="neighbours for the kNN methods (default 3; 8 for knn_corrected)"
    )
    parser.add_argument("--key", help="array name inside .npz or a dict saved in .pt")
    parser.add_argument("--base", type=float, default=math.e, help="log base (2 = bits)")
    parser.add_argument("--ci", type=float, help="also a half-sampling interval, e.g. 0.95")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        data = load_matrix(args.path, args.key)
        try:
            X = as_matrix(data)
        except ValueError as err:
            raise ValueError(f"{args.path}: {err}") from None
        groups = parse_group_spec(args.groups, X.shape[1]) if args.groups else None
        result = multiinformation(
            X,
            method=args.method,
            groups=groups,
            k=args.k,
            base=args.base,
            seed=args.seed,
            ci=args.ci,
        )
    except (ValueError, ImportError) as err:
        print(f"multiinfo: error: {err}", file=sys.stderr)
        return 2
    unit = {math.e: "nats", 2.0: "bits"}.get(args.base, f"log base {args.base:g}")
    value = float(result)
    out = {
        "path": args.path,
        "value": value,
        "unit": unit,
        "N": X.shape[0],
        "d": X.shape[1],
        "method": result.method,
        "reason": result.reason,
        "groups": groups,
        "k": args.k,
    }
    if args.ci is not None:
        out.update(low=result.low, high=result.high, level=args.ci)
    if args.json:
        print(json.dumps(out))
    else:
        interval = f" [{out['low']:.4f}, {out['high']:.4f}]" if args.ci is not None else ""
        print(
            f"{value:.4f} {unit}{interval}  (method={out['method']}, N={X.shape[0]}, "
            f"d={X.shape[1]})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
