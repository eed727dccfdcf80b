"""Tabular loaders: bundled tables, the simulated mixture, Adult / Covertype files (good, bad,
missing, checksum), all offline."""

import gzip

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

from sparsejepa.data import DatasetError
from sparsejepa.tabular import data as tdata
from sparsejepa.tabular.config import TableConfig
from sparsejepa.tabular.data import Remote, load_table, make_mixture


@pytest.mark.parametrize("name,rows,features,classes", [
    ("breast_cancer", 569, 30, 2), ("wine", 178, 13, 3), ("digits", 1797, 64, 10),
])
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
        joint = np.array([multivariate_normal(means[k], np.eye(4)).pdf(x) * table[k, c]
                          for k in range(3)])
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


ADULT_ROW = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, " \
            "White, Male, 2174, 0, 40, United-States, {label}\n"


def _adult_file(path, n=40):
    rows = [ADULT_ROW.format(label="<=50K" if i % 3 else ">50K").replace("39", str(20 + i), 1)
            .replace("Male", "Female" if i % 2 else "Male") for i in range(n)]
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
    with pytest.raises(DatasetError, match="adult.data format"):
        load_table(TableConfig(name="adult", path=str(bad)))
    labels = tmp_path / "labels.data"
    labels.write_text(ADULT_ROW.format(label="maybe") * 4)
    with pytest.raises(DatasetError, match="labels must be"):
        load_table(TableConfig(name="adult", path=str(labels)))
    with pytest.raises(DatasetError, match="does not exist"):
        load_table(TableConfig(name="adult", path=str(tmp_path / "nope.data")))


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
    """REMOTES['adult'] pointed at a file:// URL of a file the test writes; cache in tmp_path."""
    source = _adult_file(tmp_path / "source.data")
    remote = Remote(source.as_uri(), tdata.sha256_of(source), "adult.data")
    monkeypatch.setitem(tdata.REMOTES, "adult", remote)
    monkeypatch.setenv("SPARSEJEPA_CACHE", str(tmp_path / "cache"))
    return remote


def test_download_checks_sha256_and_caches(fake_remote, tmp_path):
    with pytest.raises(DatasetError, match="data.download=true"):  # offline, nothing cached
        load_table(TableConfig(name="adult"))
    t = load_table(TableConfig(name="adult", download=True))
    cached = tmp_path / "cache" / "tabular" / "adult.data"
    assert cached.is_file() and t.num_classes == 2
    assert load_table(TableConfig(name="adult")).n_features == 14  # now from the cache
    cached.write_text(cached.read_text()[:-10])  # corrupt the cache
    with pytest.raises(DatasetError, match="sha256"):
        load_table(TableConfig(name="adult"))


def test_download_with_wrong_checksum_or_no_network_keeps_nothing(fake_remote, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setitem(tdata.REMOTES, "adult", Remote(fake_remote.url, "0" * 64, "adult.data"))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_table(TableConfig(name="adult", download=True))
    missing = (tmp_path / "not-there").as_uri()
    monkeypatch.setitem(tdata.REMOTES, "adult", Remote(missing, "0" * 64, "adult.data"))
    with pytest.raises(DatasetError, match="Offline"):
        load_table(TableConfig(name="adult", download=True))
    assert not any((tmp_path / "cache" / "tabular").iterdir())
