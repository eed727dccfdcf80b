"""Per-group probes and the specialisation statistic on data whose answer is known."""

import numpy as np
import pytest

from sparsejepa.interpretability import (
    class_information,
    contiguous_groups,
    detector_reference,
    group_probes,
    label_entropy,
    random_groups,
    singletons,
    specialisation,
    summarise,
)

C = 4


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Channels 0-1: the class's corner of a square, little noise (they carry the label);
    2-3: noise; 4: class 0 against the rest; 5: class 3 against the rest."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float) * 8
    x = np.concatenate(
        [
            corners[y] + rng.normal(size=(n, 2)),
            rng.normal(size=(n, 2)),
            (y == 0)[:, None] * 6 + rng.normal(size=(n, 1)),
            (y == 3)[:, None] * 6 + rng.normal(size=(n, 1)),
        ],
        axis=1,
    )
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def splits():
    return (*synthetic(2000, 0), *synthetic(1000, 1))


@pytest.fixture(scope="module")
def probes(splits):
    groups = [np.array([0, 1]), np.array([2, 3]), np.array([4]), np.array([5])]
    return group_probes(*splits, groups)


def test_a_group_that_carries_the_label_has_the_mi_bound_near_h_and_noise_near_0(probes):
    h = np.log(C)
    signal, noise = probes[0], probes[1]
    assert signal["top1"] > 99 and signal["mi_lower_bound"] == pytest.approx(h, abs=0.05)
    assert 15 < noise["top1"] < 35 and abs(noise["mi_lower_bound"]) < 0.02
    assert signal["mi_lower_bound"] == pytest.approx(h - signal["cross_entropy"])
    # one channel telling one class from three: I = H(Y) - H(Y | X) <= H(1/4) (binary entropy)
    binary = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    assert 0.9 * binary < probes[2]["mi_lower_bound"] <= binary + 0.02


def test_specialisation_counts_the_classes_a_group_is_about(probes):
    spec = specialisation(np.stack([p["class_information"] for p in probes]))
    assert spec["profile"].shape == (4, C) and np.allclose(spec["profile"].sum(1), 1)
    eff = spec["effective_classes"]
    assert eff[0] > 3.9  # all four corners apart: about every class alike
    assert eff[2] < 2.8 and eff[3] < 2.8  # a one-class detector, with the one-vs-rest leak
    assert spec["profile"][2].argmax() == 0 and spec["profile"][3].argmax() == 3
    pair = specialisation(np.stack([p["class_information"] for p in probes[2:]]))
    alike = specialisation(np.stack([probes[2]["class_information"]] * 2))
    assert alike["diversity"] == pytest.approx(0) and 0.2 < pair["diversity"] <= np.log(2)
    assert summarise(probes)["effective_classes"] == pytest.approx(eff.mean())


def test_class_information_of_a_perfect_detector_of_one_class_in_20():
    """The docstring's reference point: it knows all of "class 0 or not" (the binary entropy of
    1/20) and a little about the others (not class 0): 3.0 effective classes, not 1."""
    y = np.repeat(np.arange(20), 50)
    q = np.where(y[:, None] == 0, np.eye(20)[0], np.r_[0, np.full(19, 1 / 19)])
    with np.errstate(divide="ignore"):
        info = class_information(np.log(q), y)
    binary = -(0.05 * np.log(0.05) + 0.95 * np.log(0.95))
    assert info[0] == pytest.approx(binary) and np.allclose(info[1:], 0.00263, atol=1e-5)
    assert specialisation(info[None])["effective_classes"][0] == pytest.approx(2.99, abs=0.01)
    ideal = detector_reference(20, 8)  # eight such detectors, each of another class
    assert ideal["effective_classes"] == pytest.approx(2.99, abs=0.01)
    assert 1.3 < ideal["diversity"] < np.log(8)
    assert detector_reference(20, 1)["diversity"] == pytest.approx(0)


def test_specialisation_limits():
    uniform = specialisation(np.full((2, 5), 0.1))
    assert np.allclose(uniform["effective_classes"], 5) and uniform["diversity"] == 0
    nothing = specialisation(np.full((1, 5), -0.01))  # no information: uniform profile, no NaN
    assert np.allclose(nothing["profile"], 0.2)
    one_hot = specialisation(np.array([[0.3, 0, 0], [0, 0, 0.2]]))
    assert np.allclose(one_hot["effective_classes"], 1)
    assert one_hot["diversity"] == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="finite information"):
        specialisation(np.array([0.2, 0.1]))


def test_probe_matches_scikit_learn(splits):
    from sklearn.linear_model import LogisticRegression

    train_x, train_y, test_x, test_y = splits
    group = np.array([0, 2, 4])
    ours = group_probes(train_x, train_y, test_x, test_y, [group], weight_decay=1e-3)[0]
    x = train_x[:, group]
    centre, scale = x.mean(0), x.std(0)
    sk = LogisticRegression(C=1 / (1e-3 * len(x)), tol=1e-8, max_iter=5000)
    proba = sk.fit((x - centre) / scale, train_y).predict_proba((test_x[:, group] - centre) / scale)
    ce = -np.log(proba[np.arange(len(test_y)), test_y]).mean()
    assert ours["cross_entropy"] == pytest.approx(ce, abs=2e-3)
    assert ours["top1"] == pytest.approx(100 * (proba.argmax(1) == test_y).mean(), abs=0.5)


def test_inputs_are_not_modified(splits):
    copies = [a.copy() for a in splits]
    groups = [np.array([1, 0])]
    group_probes(*splits, groups)
    assert all(np.array_equal(a, b) for a, b in zip(splits, copies, strict=True))
    assert np.array_equal(groups[0], [1, 0])


def test_partitions():
    assert [g.tolist() for g in contiguous_groups(6, 3)] == [[0, 1], [2, 3], [4, 5]]
    draws = [random_groups(128, 8, np.random.default_rng(s)) for s in (0, 0, 1)]
    for groups in draws:
        assert sorted(np.concatenate(groups).tolist()) == list(range(128))
        assert {len(g) for g in groups} == {16}
    assert all(np.array_equal(a, b) for a, b in zip(draws[0], draws[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(draws[0], draws[2], strict=True))
    assert [g.tolist() for g in singletons(3)] == [[0], [1], [2]]
    assert label_entropy(np.array([0, 1, 2, 3])) == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match="do not split into 5 equal groups"):
        contiguous_groups(128, 5)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        random_groups(128, 8, 0)


def test_bad_input_gets_a_clear_error(splits):
    train_x, train_y, test_x, test_y = splits
    good = [np.array([0, 1])]
    cases = [
        ((train_x, train_y.astype(float), test_x, test_y, good), "labels must be integers"),
        ((train_x, train_y, test_x[:, :3], test_y, good), "train has 6 channels, test 3"),
        ((train_x, train_y[:-1], test_x, test_y, good), r"need features \(N, D\)"),
        ((train_x, train_y, test_x, test_y, [np.array([0, 6])]), r"lie in 0..5"),
        ((train_x, train_y, test_x, test_y, [np.array([0, 0])]), "distinct"),
        ((train_x, train_y, test_x, test_y, [np.array([0.5])]), "channel indices"),
        ((train_x, train_y, test_x, test_y, []), "no groups given"),
        ((train_x, train_y, test_x[test_y > 0], test_y[test_y > 0], good), r"classes \[0\]"),
        ((np.where(train_y[:, None] == 0, np.nan, train_x), train_y, test_x, test_y, good), "NaN"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            group_probes(*args)


def test_notebook_table_and_figure_read_the_script_rows(probes, tmp_path):
    """experiments/interpretability.py's row layout, read back by notebook 12's functions."""
    import json

    from sparsejepa.figures import interpretability as fig12

    spec = specialisation(np.stack([p["class_information"] for p in probes]))
    partition = {
        "summary": summarise(probes),
        "groups": [
            {"channels": p["channels"], "top1": p["top1"], "mi_lower_bound": p["mi_lower_bound"],
             "class_information": p["class_information"].tolist(), "effective_classes": float(e)}
            for p, e in zip(probes, spec["effective_classes"], strict=True)
        ],
    }  # fmt: skip
    rows = [
        {"release": name, "method": method, "epochs": 2, "lambda": lam, "n_train": 2000,
         "n_test": 1000, "command": "python experiments/interpretability.py x",
         "all": {"top1": 99.0, "mi_lower_bound": 1.38},
         "contiguous": [partition], "random": [partition, partition]}
        for name, method, lam in (("a_s0", "SparseJEPA", 1.0), ("b_s0", "JEPA", None))
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], *rows]))
    loaded = fig12.load_rows(path)
    assert list(loaded) == ["a_s0", "b_s0"]
    text = fig12.table(loaded)
    mi = f"{summarise(probes)['mi_lower_bound']:.3f}"
    assert "| a_s0 | 2 | 1 | 99.0 / 1.380 |" in text and f"{mi} +- 0.000" in text
    assert len(fig12.plot(loaded).axes) >= 5
    with pytest.raises(FileNotFoundError, match="experiments/interpretability.py"):
        fig12.load_rows(tmp_path / "missing.jsonl")
