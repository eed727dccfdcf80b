"""Bad input: each case a clear ValueError naming the problem, or documented behaviour."""

import numpy as np
import pytest

import theory

RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 4))


@pytest.mark.parametrize("bad", [np.zeros(10), np.zeros((5, 2, 2)), np.float64(1.0)])
def test_non_2d_rejected(bad):
    with pytest.raises(ValueError, match="2-D array"):
        theory.multiinformation(bad)


def test_non_numeric_rejected():
    with pytest.raises(ValueError, match="numeric"):
        theory.multiinformation([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_inf_rejected_with_position(value):
    Y = X.copy()
    Y[7, 2] = value
    with pytest.raises(ValueError, match=r"NaN/Inf.*row 7, column 2"):
        theory.multiinformation(Y, method="gaussian")


def test_too_few_samples_for_k():
    with pytest.raises(ValueError, match=r"k \+ 1 = 31 samples, got N = 30"):
        theory.multiinformation(X[:30], method="ksg", k=30)
    with pytest.raises(ValueError, match="too few to estimate M"):
        theory.multiinformation(X[:4], method="gaussian")


@pytest.mark.parametrize(
    "method", ["gaussian", "copula", "ksg", "kl", "kl_copula", "knn_corrected", "auto"]
)
def test_every_continuous_method_refuses_tiny_samples(method):
    # ksg on 2 rows of 6 columns used to print -1.0000 nats; auto on 8 rows of 4 independent
    # normals read from -0.53 to 3.32 nats
    rng = np.random.default_rng(0)
    for shape in ((2, 6), (8, 4), (19, 3)):
        with pytest.raises(ValueError, match=r"too few to estimate M.*add samples"):
            theory.multiinformation(rng.standard_normal(shape), method=method, seed=0)


def test_complex_input_is_refused():
    Z = X + 1j * X
    with pytest.raises(ValueError, match=r"complex.*X\.real, X\.imag"):
        theory.multiinformation(Z)
    with pytest.raises(ValueError, match="complex"):
        theory.multiinformation(Z.tolist())
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="complex"):
        theory.multiinformation(torch.from_numpy(Z))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown method"):
        theory.multiinformation(X, method="mine")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        theory.multiinformation(X, method="ksg", k=0)
    with pytest.raises(ValueError, match="base"):
        theory.multiinformation(X, base=1)
    with pytest.raises(ValueError, match="ci"):
        theory.multiinformation(X, ci=95)


def test_constant_columns_dropped_with_warning():
    Y = np.column_stack([X, np.full(200, 3.0)])
    for method in ("gaussian", "ksg", "binned"):
        with pytest.warns(UserWarning, match=r"constant column.*\[4\]"):
            v = theory.multiinformation(Y, method=method, seed=0)
        assert v == theory.multiinformation(X, method=method, seed=0)
    # a group made only of constant columns disappears; a single group left gives 0
    with pytest.warns(UserWarning):
        assert theory.multiinformation(Y, groups=[[0, 1, 2, 3], [4]], method="ksg") == 0.0


def test_single_variable_gives_zero():
    for method in theory.METHODS:
        assert theory.multiinformation(X[:, :1], method=method) == 0.0
        assert theory.multiinformation(X, method=method, groups=[[0, 1, 2, 3]]) == 0.0


def test_duplicate_rows_broken_by_seeded_noise():
    Y = np.vstack([X, X[:50]])  # 50 duplicated rows
    a = theory.multiinformation(Y, method="ksg", seed=1)
    assert np.isfinite(a) and a == theory.multiinformation(Y, method="ksg", seed=1)
    for rank in (True, False):  # also raw data: noise of relative size 1e-10 separates copies
        assert np.isfinite(theory.multiinformation(Y, method="kl", seed=1, rank=rank))


def test_linearly_dependent_columns_gaussian():
    Y = np.column_stack([X, X[:, 0]])
    with pytest.raises(ValueError, match="singular"):
        theory.multiinformation(Y, method="gaussian")


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([[0, 1], [2]], r"do not cover columns \[3\]"),
        ([[0, 1], [1, 2, 3]], "column 1 appears in groups 0 and 1"),
        ([[0, 0], [1, 2, 3]], "column 0 appears twice in group 0"),
        ([[0, 1], [2, 3, 4]], "column 4, out of range"),
        ([[0, 1, 2, 3], []], "group 1 is empty"),
        ([[0.5, 1], [2, 3]], "non-integer"),
        (["a", "b", "a"], "one label per column"),
        ([[0, 1], 2, 3], "mixes"),
        ("0-1;2-3", "CLI spec"),
        ([], "empty"),
    ],
)
def test_bad_groups(groups, message):
    with pytest.raises(ValueError, match=message):
        theory.multiinformation(X, method="gaussian", groups=groups)


def test_group_forms_agree():
    as_lists = theory.parse_groups([[0, 2], [1, 3]], 4)
    as_labels = theory.parse_groups(np.array([0, 1, 0, 1]), 4)
    assert [g.tolist() for g in as_lists] == [g.tolist() for g in as_labels] == [[0, 2], [1, 3]]
    assert [g.tolist() for g in theory.parse_groups(None, 3)] == [[0], [1], [2]]
