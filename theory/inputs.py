"""Input checks shared by every estimator: the (N, d) matrix, the groups, constant columns, the
number of rows.

The checks run at the API boundary and raise ValueError naming the problem and the fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

# Continuous estimators refuse fewer rows than this (and N <= d + 1): at N = 8, d = 4 independent
# normals, auto's old value ranged from -0.53 to 3.3 nats and ksg on 2 rows read -1.0.
MIN_ROWS = 20


def as_matrix(X: Any) -> np.ndarray:
    """A float64 copy of X (numpy array, torch tensor or nested lists) after shape/finite checks."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # torch tensor, without importing torch
        if X.is_complex():
            raise ValueError(_COMPLEX)
        X = X.detach().cpu().double().numpy()  # double(): bfloat16/half have no numpy dtype
    try:
        X = X if isinstance(X, np.ndarray) else np.asarray(X)
        if not np.iscomplexobj(X):
            A = np.array(X, dtype=np.float64)  # always a copy: the caller's data is never mutated
    except (TypeError, ValueError) as err:
        raise ValueError(f"X must be a numeric (N, d) array; could not convert it: {err}") from None
    if np.iscomplexobj(X):
        raise ValueError(_COMPLEX)
    if A.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (N samples, d columns), got shape {A.shape}; "
            "use X.reshape(N, -1) to flatten features, or X[:, None] for one scalar variable"
        )
    if A.shape[0] < 2 or A.shape[1] < 1:
        raise ValueError(f"X needs at least 2 rows and 1 column, got shape {A.shape}")
    bad = ~np.isfinite(A)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"X contains {int(bad.sum())} NaN/Inf values (first at row {r}, column {c}) in "
            f"{int(bad.any(axis=1).sum())} rows; drop them (X[np.isfinite(X).all(1)]) "
            "or impute"
        )
    return A


_COMPLEX = (
    "X is complex: M is defined here for real variables only, and dropping the imaginary "
    "part would be silent data loss; pass np.column_stack([X.real, X.imag]) to treat "
    "the two parts as separate columns"
)


def parse_groups(groups: Any, d: int) -> list[np.ndarray]:
    """Column-index arrays, one per variable. groups: None (every column its own variable), a
    list of column-index lists, or a length-d sequence of per-column labels,
    in first-appearance order. Each column must be in exactly one group."""
    if groups is None:
        return [np.array([c]) for c in range(d)]
    if hasattr(groups, "detach"):
        groups = groups.detach().cpu().numpy()
    if isinstance(groups, str) or not isinstance(groups, Sequence | np.ndarray):
        raise ValueError(
            "groups must be None, a list of column-index lists, or one label per "
            f"column; got {type(groups).__name__} (a CLI spec? see theory.cli)"
        )
    items = list(groups)
    if len(items) == 0:
        raise ValueError("groups is empty; pass None to treat every column as a variable")
    nested = [isinstance(g, Sequence | np.ndarray) and not isinstance(g, str) for g in items]
    if not any(nested):  # per-column labels
        if len(items) != d:
            raise ValueError(
                f"groups given as per-column labels must have one label per column: "
                f"got {len(items)} labels for d = {d} columns"
            )
        labels = list(dict.fromkeys(items))
        return [np.array([c for c in range(d) if items[c] == lab]) for lab in labels]
    if not all(nested):
        raise ValueError(
            "groups mixes column indices and lists; give a list of lists, "
            "e.g. [[0, 1], [2]], or one label per column"
        )
    out, owner = [], {}
    for g, cols in enumerate(items):
        cols = list(np.asarray(cols).ravel())
        if len(cols) == 0:
            raise ValueError(f"group {g} is empty; every group needs at least one column")
        for c in cols:
            if not float(c).is_integer():
                raise ValueError(f"group {g} has non-integer column index {c!r}")
            c = int(c)
            if not 0 <= c < d:
                raise ValueError(
                    f"group {g} has column {c}, out of range for d = {d} columns "
                    f"(valid: 0..{d - 1})"
                )
            if c in owner:
                where = "twice in group" if owner[c] == g else f"in groups {owner[c]} and"
                raise ValueError(
                    f"column {c} appears {where} {g}; each column must be in exactly one group"
                )
            owner[c] = g
        out.append(np.array([int(c) for c in cols]))
    missing = sorted(set(range(d)) - set(owner))
    if missing:
        shown = f"{missing[:10]}{'...' if len(missing) > 10 else ''}"
        raise ValueError(
            f"groups do not cover columns {shown}"
            f" ({len(missing)} of {d}); add them to a group, or select the columns "
            "first (X[:, cols]) and renumber the groups"
        )
    return out


def drop_constant(X: np.ndarray, blocks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Remove constant columns (they carry no information: M is unchanged without them), with a
    warning; blocks are renumbered and emptied blocks dropped."""
    constant = np.ptp(X, axis=0) == 0
    if not constant.any():
        return X, blocks
    warnings.warn(
        f"dropping {int(constant.sum())} constant column(s) "
        f"{np.flatnonzero(constant)[:10].tolist()}: a constant variable adds 0 to M",
        UserWarning,
        stacklevel=3,
    )
    new_index = np.cumsum(~constant) - 1
    kept = [new_index[b[~constant[b]]] for b in blocks]
    return X[:, ~constant], [b for b in kept if len(b)]


def check_rows(method: str, n: int, d: int) -> None:
    """Continuous estimators need at least MIN_ROWS rows and N > d + 1 (else ValueError)."""
    if n < MIN_ROWS or n <= d + 1:
        need = max(MIN_ROWS, d + 2)
        raise ValueError(
            f"{method}: N = {n} rows for d = {d} continuous columns is too few to estimate M "
            f"(at least {need} needed: below that, independent normals read anywhere from -0.5 "
            "to 3 nats); add samples or select fewer columns"
        )
