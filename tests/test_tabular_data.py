"""Tabular loaders: bundled tables, the simulated mixture, Adult / Covertype files (good, bad,
missing, checksum), all offline."""

import gzip

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

from sparsejepa.data import DatasetError
from sparsejepa.tabular import files as tfiles
from sparsejepa.tabular.config import TableConfig
from sparsejepa.tabular.data import load_table, make_mixture
from sparsejepa.tabular.files import Remote


@pytest.mark.parametrize(
    "name,rows,features,classes",
    [
        ("breast_cancer", 569, 30, 2),
        ("wine", 178, 13, 3),
        ("digits", 1797, 64, 10),
    ],
)
def test_bundled_tables(name, rows, features, classes):
    t = load_table(TableConfig(name=name))
    assert len(t.y_train) + len(t.y_test) == rows
    assert t.n_features == features and t.num_classes == classes and t.cardinalities == []
    assert abs(t.x_num_train.mean(0)).max() < 1e-4  # standardised with train statistics
    assert np.isfinite(t.x_num_test).all()  # digits has constant pixels: std 0 -> 1
    assert set(np.unique(t.y_test)) == set(range(classes))  # stratified split


def test_mixture_entropy_is_the_exact_posterior_entropy():
    mix = make_mixture(400, components=3, dims=4, separation=2.0, categories=3, seed=0)
    post = np.exp(mix["log_posterior"])
    np.testing.assert_allclose(post.sum(1), 1.0)
    assert (mix["entropy"] >= 0).all() and (mix["entropy"] <= np.log(3) + 1e-12).all()
    # independent recomputation for a few rows from the same generative model
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    means = 2.0 * rotation[:, :3].T
    table = np.full((3, 3), 0.5 / 3) + 0.5 * np.eye(3)
    for i in range(5):
        x, c = mix["x_num"][i], mix["x_cat"][i, 0]
        joint = np.array(
            [multivariate_normal(means[k], np.eye(4)).pdf(x) * table[k, c] for k in range(3)]
        )
        p = joint / joint.sum()
        np.testing.assert_allclose(mix["entropy"][i], -(p * np.log(p)).sum(), rtol=1e-9)


def test_mixture_ambiguity_falls_with_separation_and_rides_the_split():
    near = make_mixture(2000, 3, 6, 0.5, 0, seed=1)["entropy"].mean()
    far = make_mixture(2000, 3, 6, 4.0, 0, seed=1)["entropy"].mean()
    assert far < 0.5 * near
    mix = make_mixture(2000, 3, 6, 2.5, 4, seed=1)
    assert (mix["predictive_std"] >= 1).all()  # within-component noise is 1
    assert spearmanr(mix["predictive_std"], mix["entropy"]).statistic > 0.3
    t = load_table(TableConfig(name="mixture", mixture_rows=400))
    assert t.ambiguity_test.shape == t.oracle_std_test.shape == t.y_test.shape
    assert t.cardinalities == [4]
    assert t.raw_features("train").shape[1] == 6 + 4  # numerics + one-hot category


ADULT_ROW = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, "
    "White, Male, 2174, 0, 40, United-States, {label}\n"
)


def _adult_file(path, n=40):
    rows = [
        ADULT_ROW.format(label="<=50K" if i % 3 else ">50K")
        .replace("39", str(20 + i), 1)
        .replace("Male", "Female" if i % 2 else "Male")
        for i in range(n)
    ]
    path.write_text("".join(rows))
    return path


def test_adult_reads_the_uci_format(tmp_path):
    file = _adult_file(tmp_path / "adult.data")
    t = load_table(TableConfig(name="adult", path=str(file), test_fraction=0.25))
    assert t.n_features == 14 and t.num_classes == 2
    assert t.x_num_train.shape[1] == 6 and len(t.cardinalities) == 8
    assert t.cardinalities[t.feature_names.index("sex") - 6] == 2


def test_adult_bad_and_missing_files(tmp_path):
    bad = tmp_path / "bad.data"
    bad.write_text("1, 2, 3\n")
    with pytest.raises(DatasetError, match="UCI adult format"):
        load_table(TableConfig(name="adult", path=str(bad)))
    labels = tmp_path / "labels.data"
    labels.write_text(ADULT_ROW.format(label="maybe") * 4)
    with pytest.raises(DatasetError, match="labels must be"):
        load_table(TableConfig(name="adult", path=str(labels)))
    with pytest.raises(DatasetError, match="does not exist"):
        load_table(TableConfig(name="adult", path=str(tmp_path / "nope.data")))


def _adult_folder(folder, n_train=40, n_test=12):
    """adult.data and adult.test as UCI ships them: '?' for missing values, the test file's
    '|1x3 Cross validator' first line and labels with a trailing period, a category seen only in
    the test file, blank trailing lines."""
    folder.mkdir(exist_ok=True)
    _adult_file(folder / "adult.data", n_train)
    text = (folder / "adult.data").read_text().splitlines(keepends=True)
    text[0] = text[0].replace("State-gov", "?")  # missing workclass
    text[1] = text[1].replace(" 77516,", " ?,")  # a missing numeric value (fnlwgt)
    (folder / "adult.data").write_text("".join(text) + "\n")
    rows = [
        ADULT_ROW.format(label="<=50K." if i % 2 else ">50K.").replace("39", str(30 + i), 1)
        for i in range(n_test)
    ]
    rows[0] = rows[0].replace("United-States", "Holand-Netherlands")
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "".join(rows) + "\n\n")
    return folder


def test_adult_folder_uses_the_official_split(tmp_path):
    folder = _adult_folder(tmp_path / "adult")
    t = load_table(TableConfig(name="adult", path=str(folder)))
    assert (len(t.y_train), len(t.y_test)) == (40, 12)  # the files' rows, not a 75/25 resplit
    assert t.y_test.tolist() == [1 - i % 2 for i in range(12)]  # trailing periods read
    assert np.isfinite(t.x_num_train).all() and np.isfinite(t.x_num_test).all()
    assert t.x_num_train[1, t.feature_names.index("fnlwgt")] == 0.0  # '?' -> the train mean
    work = t.cardinalities[t.feature_names.index("workclass") - 6]
    country = t.feature_names.index("native_country") - 6
    assert work == 2 and t.cardinalities[country] == 2  # '?' is a category; codes span both files
    assert t.x_cat_test[0, country] != t.x_cat_test[1, country]
    assert t.x_cat_train[0, country] == t.x_cat_test[1, country]  # same string, same code
    (folder / "adult.test").unlink()  # adult.data alone: stratified 75/25 split of its rows
    t = load_table(TableConfig(name="adult", path=str(folder)))
    assert (len(t.y_train), len(t.y_test)) == (30, 10)


def test_adult_folder_missing_or_malformed(tmp_path):
    with pytest.raises(DatasetError, match="holds no adult.data"):
        load_table(TableConfig(name="adult", path=str(tmp_path)))
    folder = _adult_folder(tmp_path / "adult")
    test = folder / "adult.test"
    test.write_text(test.read_text().replace("<=50K.", "maybe.", 1))
    with pytest.raises(DatasetError, match="labels must be"):
        load_table(TableConfig(name="adult", path=str(folder)))
    test.write_text("|1x3 Cross validator\n25, Private, 226802, 11th, 7\n")
    with pytest.raises(DatasetError, match=r"adult.test: not the UCI adult format \(data row 1"):
        load_table(TableConfig(name="adult", path=str(folder)))
    test.write_text(ADULT_ROW.format(label=">50K.").replace("40", "forty"))
    with pytest.raises(DatasetError, match="numeric adult column holds text"):
        load_table(TableConfig(name="adult", path=str(folder)))


def _mnist_csv(path, n=40, bad=None):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, 784))
    rows = np.concatenate([pixels, (np.arange(n) % 10)[:, None]], axis=1)
    text = "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"
    if bad:
        text = text.replace(*bad)
    path.write_bytes(gzip.compress(text.encode()))
    return pixels


def test_mnist_reads_the_csv_and_pools_pixels(tmp_path):
    pixels = _mnist_csv(tmp_path / "mnist_5k.csv.gz")
    t = load_table(TableConfig(name="mnist", path=str(tmp_path), test_fraction=0.25))
    assert t.n_features == 784 and t.num_classes == 10 and t.cardinalities == []
    assert len(t.y_train) + len(t.y_test) == 40
    x, names, y = tfiles.read_mnist(tmp_path / "mnist_5k.csv.gz", pool=4)
    assert x.shape == (40, 49) and names[8] == "px1_1" and y.tolist() == [i % 10 for i in range(40)]
    np.testing.assert_allclose(x[3, 8], pixels[3].reshape(28, 28)[4:8, 4:8].mean())


@pytest.mark.parametrize(
    "bad,match",
    [
        (("\n", ",7\n"), "expected 785 columns"),  # every row one field too long
        (("0,", "x,", 1), "not an MNIST CSV"),
        (("0,", "", 1), "not an MNIST CSV"),  # text, ragged
    ],
)
def test_mnist_malformed_files(tmp_path, bad, match):
    _mnist_csv(tmp_path / "m.csv.gz", bad=bad)
    with pytest.raises(DatasetError, match=match):
        load_table(TableConfig(name="mnist", path=str(tmp_path / "m.csv.gz")))


def test_mnist_bad_values_and_missing_files(tmp_path):
    file = tmp_path / "m.csv"
    file.write_text(",".join(["300"] * 784 + ["1"]) + "\n")
    with pytest.raises(DatasetError, match="pixel values must lie in 0..255"):
        tfiles.read_mnist(file)
    file.write_text(",".join(["3"] * 784 + ["12"]) + "\n")
    with pytest.raises(DatasetError, match="labels .* must be integers 0..9"):
        tfiles.read_mnist(file)
    with pytest.raises(DatasetError, match="pixel_pool must divide 28"):
        tfiles.read_mnist(file, pool=3)
    with pytest.raises(DatasetError, match="no data.path"):
        load_table(TableConfig(name="mnist"))
    with pytest.raises(DatasetError, match="does not exist"):
        load_table(TableConfig(name="mnist", path=str(tmp_path / "nope.csv.gz")))
    (tmp_path / "other.csv").write_text("")
    with pytest.raises(DatasetError, match="holds 2 CSV files"):
        load_table(TableConfig(name="mnist", path=str(tmp_path)))


def _covtype_file(path, n=40, broken=False):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        wild, soil = np.eye(4)[i % 4], np.eye(40)[(3 * i) % 40]
        if broken and i == 5:
            soil[0] = soil[1] = 1
        rows.append(np.concatenate([rng.integers(0, 3000, 10), wild, soil, [i % 7 + 1]]))
    text = "\n".join(",".join(str(int(v)) for v in r) for r in rows) + "\n"
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_covertype_reads_gzip_and_folds_one_hot_columns(tmp_path):
    file = _covtype_file(tmp_path / "c.gz", n=70)
    t = load_table(TableConfig(name="covertype", path=str(file), test_fraction=0.5, max_rows=56))
    assert t.n_features == 12 and t.cardinalities == [4, 40] and t.num_classes == 7
    assert len(t.y_train) + len(t.y_test) == 56
    with pytest.raises(DatasetError, match="stratified"):  # 2 rows left out for 7 classes
        load_table(TableConfig(name="covertype", path=str(file), max_rows=68))


def test_covertype_bad_files(tmp_path):
    with pytest.raises(DatasetError, match="one-hot"):
        broken = _covtype_file(tmp_path / "b.gz", broken=True)
        load_table(TableConfig(name="covertype", path=str(broken)))
    short = tmp_path / "short.data"
    short.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DatasetError, match="55 columns"):
        load_table(TableConfig(name="covertype", path=str(short)))
    truncated = tmp_path / "trunc.gz"
    truncated.write_bytes(gzip.compress(b"1,2,3\n" * 100)[:20])
    with pytest.raises(DatasetError, match="unreadable"):
        load_table(TableConfig(name="covertype", path=str(truncated)))


@pytest.fixture
def fake_remote(tmp_path, monkeypatch):
    """REMOTES['adult'] and ['adult_test'] pointed at file:// URLs of files the test writes;
    cache in tmp_path."""
    folder = _adult_folder(tmp_path / "source")
    remote = Remote(
        (folder / "adult.data").as_uri(), tfiles.sha256_of(folder / "adult.data"), "adult.data"
    )
    monkeypatch.setitem(tfiles.REMOTES, "adult", remote)
    monkeypatch.setitem(
        tfiles.REMOTES,
        "adult_test",
        Remote(
            (folder / "adult.test").as_uri(), tfiles.sha256_of(folder / "adult.test"), "adult.test"
        ),
    )
    monkeypatch.setenv("SPARSEJEPA_CACHE", str(tmp_path / "cache"))
    return remote


def test_download_checks_sha256_and_caches(fake_remote, tmp_path):
    with pytest.raises(DatasetError, match="data.download=true"):  # offline, nothing cached
        load_table(TableConfig(name="adult"))
    t = load_table(TableConfig(name="adult", download=True))
    cached = tmp_path / "cache" / "tabular" / "adult.data"
    assert cached.is_file() and t.num_classes == 2
    assert len(t.y_test) == 12  # adult.test came with it: the official split
    assert load_table(TableConfig(name="adult")).n_features == 14  # now from the cache
    cached.write_text(cached.read_text()[:-10])  # corrupt the cache
    with pytest.raises(DatasetError, match="sha256"):
        load_table(TableConfig(name="adult"))


def test_download_with_wrong_checksum_or_no_network_keeps_nothing(
    fake_remote, tmp_path, monkeypatch
):
    monkeypatch.setitem(tfiles.REMOTES, "adult", Remote(fake_remote.url, "0" * 64, "adult.data"))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_table(TableConfig(name="adult", download=True))
    missing = (tmp_path / "not-there").as_uri()
    monkeypatch.setitem(tfiles.REMOTES, "adult", Remote(missing, "0" * 64, "adult.data"))
    with pytest.raises(DatasetError, match="Offline"):
        load_table(TableConfig(name="adult", download=True))
    assert not any((tmp_path / "cache" / "tabular").iterdir())
