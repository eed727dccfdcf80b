"""Dataset loaders: CIFAR-100 readers on fake archives written here, the real npz, shapes."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_checkpoint import PickleThatWritesAFile

from sparsejepa import data
from sparsejepa.data import DatasetError, load_dataset, make_shapes, stratified_indices


def write_official_dir(
    root: Path, n_train: int = 30, n_test: int = 12, seed: int = 0, protocol: int = 4
) -> dict:
    """A tiny cifar-100-python directory in the official pickle format; returns its raw arrays."""
    rng = np.random.default_rng(seed)
    directory = root / "cifar-100-python"
    directory.mkdir(parents=True)
    raw = {}
    for split, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n)
        entry = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": (fine // 5).tolist(),
            b"filenames": [f"img{i}.png".encode() for i in range(n)],
        }
        with open(directory / split, "wb") as f:
            pickle.dump(entry, f, protocol=protocol)
        raw[split] = entry
    with open(directory / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [], b"coarse_label_names": []}, f)
    return raw


def write_tarball(root: Path) -> tuple[Path, dict]:
    raw = write_official_dir(root / "src")
    tarball = root / "cifar-100-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root / "src" / "cifar-100-python", arcname="cifar-100-python")
    return tarball, raw


def check_matches_raw(dataset, raw: dict) -> None:
    for split, x, labels in (
        ("train", dataset.x_train, dataset.labels_train),
        ("test", dataset.x_test, dataset.labels_test),
    ):
        flat = raw[split][b"data"]
        assert x.dtype == np.uint8 and x.shape == (len(flat), 32, 32, 3) and x.flags.c_contiguous
        # official layout: row = 1024 red, then 1024 green, then 1024 blue values, row-major
        i, h, w, c = 3, 7, 21, 2
        assert x[i, h, w, c] == flat[i, c * 1024 + h * 32 + w]
        np.testing.assert_array_equal(x.transpose(0, 3, 1, 2).reshape(len(flat), -1), flat)
        np.testing.assert_array_equal(labels["fine"], raw[split][b"fine_labels"])
        np.testing.assert_array_equal(labels["coarse"], raw[split][b"coarse_labels"])
        assert labels["fine"].dtype == np.int64


@pytest.fixture(autouse=True)
def no_env_dataset(monkeypatch, tmp_path):
    """Keep the developer's env and home cache out of these tests."""
    monkeypatch.delenv("SPARSEJEPA_CIFAR100", raising=False)
    monkeypatch.setenv("SPARSEJEPA_CACHE", str(tmp_path / "default-cache"))


def test_official_directory_reader(tmp_path):
    raw = write_official_dir(tmp_path)
    dataset = load_dataset("cifar100", path=tmp_path / "cifar-100-python")
    check_matches_raw(dataset, raw)
    assert dataset.num_classes == {"fine": 100, "coarse": 20}
    pixels = dataset.x_train.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(dataset.mean, pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(dataset.std, pixels.std(0), rtol=1e-12)
    # the parent directory works too
    check_matches_raw(load_dataset("cifar100", path=tmp_path), raw)


def test_protocol_2_pickles_are_read(tmp_path):
    """The official files are protocol-2 pickles (numpy arrays, bytes via _codecs.encode)."""
    raw = write_official_dir(tmp_path, protocol=2)
    check_matches_raw(load_dataset("cifar100", path=tmp_path), raw)


def test_tarball_is_extracted_into_the_cache_and_reused(tmp_path):
    tarball, raw = write_tarball(tmp_path)
    cache = tmp_path / "cache"
    check_matches_raw(load_dataset("cifar100", path=tarball, cache_dir=cache), raw)
    assert (cache / "cifar-100-python" / "train").is_file()
    check_matches_raw(load_dataset("cifar100", cache_dir=cache), raw)  # found in the cache


def test_env_var_path(tmp_path, monkeypatch):
    raw = write_official_dir(tmp_path)
    monkeypatch.setenv("SPARSEJEPA_CIFAR100", str(tmp_path / "cifar-100-python"))
    check_matches_raw(load_dataset("cifar100"), raw)


def test_download_checks_md5_and_extracts(tmp_path, monkeypatch):
    tarball, raw = write_tarball(tmp_path)
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", tarball.as_uri())
    md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
    monkeypatch.setattr(data.cifar100, "CIFAR100_MD5", md5)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="download=True"):
        load_dataset("cifar100", cache_dir=cache)  # no download unless asked
    check_matches_raw(load_dataset("cifar100", cache_dir=cache, download=True), raw)
    assert (cache / "cifar-100-python.tar.gz").is_file()
    assert not list(cache.glob("*.part"))


def test_download_md5_mismatch_leaves_nothing(tmp_path, monkeypatch):
    tarball, _ = write_tarball(tmp_path)
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", tarball.as_uri())
    monkeypatch.setattr(data.cifar100, "CIFAR100_MD5", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_dataset("cifar100", cache_dir=cache, download=True)
    assert list(cache.iterdir()) == []


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", (tmp_path / "nowhere.tar.gz").as_uri())
    with pytest.raises(DatasetError, match="download of .* failed"):
        load_dataset("cifar100", cache_dir=tmp_path / "cache", download=True)


def test_missing_dataset_says_where_it_looked_and_how_to_fix(tmp_path):
    cache = tmp_path / "empty-cache"
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar100", cache_dir=cache)
    message = str(info.value)
    assert str(cache / "cifar100.npz") in message and str(cache / "cifar-100-python") in message
    assert "SPARSEJEPA_CIFAR100" in message and "download=True" in message
    with pytest.raises(DatasetError, match="path argument"):
        load_dataset("cifar100", path=tmp_path / "missing.npz", cache_dir=cache)


def write_npz(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        "y_train_fine": np.arange(10, dtype=np.int64),
        "y_train_coarse": np.arange(10, dtype=np.int64) // 5,
        "x_test": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        "y_test_fine": np.arange(4, dtype=np.int64),
        "y_test_coarse": np.zeros(4, dtype=np.int64),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_reader_on_a_small_file(tmp_path):
    dataset = load_dataset("cifar100", path=write_npz(tmp_path / "ok.npz"))
    assert dataset.x_train.shape == (10, 32, 32, 3) and dataset.x_test.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(dataset.labels_train["fine"], np.arange(10))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"y_test_coarse": None}, "missing arrays .*y_test_coarse"),
        ({"x_train": np.zeros((10, 32, 32, 3), np.float32)}, "x_train must be uint8"),
        ({"x_test": np.zeros((4, 3, 32, 32), np.uint8)}, r"x_test must be uint8 \(N, 32, 32, 3\)"),
        ({"y_train_fine": np.arange(9)}, "train fine labels must be integers of shape"),
        ({"y_train_fine": np.arange(10) + 95}, r"train fine labels must lie in 0..99"),
        ({"y_test_coarse": np.full(4, -1)}, r"test coarse labels must lie in 0..19"),
    ],
)
def test_npz_validation_errors(tmp_path, override, message):
    path = write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(DatasetError, match=message):
        load_dataset("cifar100", path=path)


def test_corrupt_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset("cifar100", path=bad)
    (tmp_path / "dir").mkdir()
    with pytest.raises(DatasetError, match="not a cifar-100-python directory"):
        load_dataset("cifar100", path=tmp_path / "dir")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable .tar.gz"):
        load_dataset("cifar100", path=broken, cache_dir=tmp_path / "cache")


def test_stratified_indices_are_balanced_seeded_and_not_a_prefix():
    labels = np.repeat(np.arange(10), 50)  # sorted by class, like the CIFAR-100 npz
    idx = stratified_indices(labels, 100, seed=0)
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=10), np.full(10, 10))
    np.testing.assert_array_equal(idx, stratified_indices(labels, 100, seed=0))
    assert not np.array_equal(idx, stratified_indices(labels, 100, seed=1))
    counts = np.bincount(labels[stratified_indices(labels, 105, seed=3)], minlength=10)
    assert counts.min() == 10 and counts.max() == 11
    with pytest.raises(DatasetError, match="subset size"):
        stratified_indices(labels, 501, seed=0)


def test_subset_through_load_dataset(tmp_path):
    raw = write_official_dir(tmp_path, n_train=200, n_test=50)
    full = load_dataset("cifar100", path=tmp_path)
    small = load_dataset("cifar100", path=tmp_path, n_train=40, n_test=10, seed=5)
    assert small.x_train.shape[0] == 40 and small.x_test.shape[0] == 10
    idx = stratified_indices(full.labels_train["fine"], 40, seed=5)
    np.testing.assert_array_equal(small.x_train, full.x_train[idx])
    np.testing.assert_array_equal(small.labels_train["coarse"], full.labels_train["coarse"][idx])
    np.testing.assert_allclose(small.mean, (full.x_train[idx].reshape(-1, 3) / 255).mean(0))
    assert len(raw["train"][b"data"]) == 200


def test_real_cifar100_npz(cifar100_npz):
    dataset = load_dataset("cifar100", path=cifar100_npz)
    assert dataset.x_train.shape == (50000, 32, 32, 3)
    assert dataset.x_test.shape == (10000, 32, 32, 3)
    for labels, per_class in ((dataset.labels_train, 500), (dataset.labels_test, 100)):
        np.testing.assert_array_equal(np.bincount(labels["fine"]), np.full(100, per_class))
        np.testing.assert_array_equal(np.bincount(labels["coarse"]), np.full(20, 5 * per_class))
    # the published CIFAR-100 train statistics (PROVENANCE.md)
    published_mean = (0.5070751592371, 0.4865488733150, 0.4409178433670)
    published_std = (0.2673342858792, 0.2564384629171, 0.2761504713257)
    np.testing.assert_allclose(dataset.mean, published_mean, atol=1e-9)
    np.testing.assert_allclose(dataset.std, published_std, atol=1e-9)
    idx = stratified_indices(dataset.labels_train["fine"], 1000, seed=0)
    np.testing.assert_array_equal(np.bincount(dataset.labels_train["fine"][idx]), np.full(100, 10))


# ----------------------------------------------------------------------------- shapes


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_train=600, n_test=200, seed=3)


def test_shapes_arrays_and_labels(shapes):
    assert shapes.x_train.shape == (600, 32, 32, 3) and shapes.x_test.shape == (200, 32, 32, 3)
    assert shapes.x_train.dtype == np.uint8 and shapes.x_train.flags.c_contiguous
    assert shapes.num_classes == {"shape": 5, "count": 6, "dist": 6}
    for split_labels in (shapes.labels_train, shapes.labels_test):
        for task, classes in shapes.num_classes.items():
            y = split_labels[task]
            assert y.dtype == np.int64 and y.min() >= 0 and y.max() < classes
    # every class of every task occurs in 600 images
    for task, classes in shapes.num_classes.items():
        assert len(np.unique(shapes.labels_train[task])) == classes
    assert all(0 < m < 1 for m in shapes.mean) and all(0 < s < 1 for s in shapes.std)


def test_shapes_labels_follow_the_factors(shapes):
    f, y = shapes.factors_train, shapes.labels_train
    present = ~np.isnan(f["depth"])
    np.testing.assert_array_equal(present.sum(1), f["count"])
    np.testing.assert_array_equal(y["count"], f["count"] - 1)
    np.testing.assert_array_equal(y["shape"], f["shape"][:, 0])
    assert np.all(f["shape"][~present] == -1) and np.all(f["shape"][present] >= 0)
    # slot 0 is the closest (largest) object; dist bins its depth in [1, 2.5]
    assert np.all(np.nanmax(f["radius"], axis=1) == f["radius"][:, 0])
    expected_dist = np.minimum((f["depth"][:, 0] - 1) / 1.5 * 6, 5).astype(int)
    np.testing.assert_array_equal(y["dist"], expected_dist)
    # objects stay inside the image
    radius = f["radius"][present]
    assert np.all(f["x"][present] >= radius) and np.all(f["x"][present] <= 32 - radius)


def test_shapes_pixels_show_the_closest_object(shapes):
    f = shapes.factors_train
    cx, cy = f["x"][:, 0].astype(int), f["y"][:, 0].astype(int)
    centre = shapes.x_train[np.arange(600), cy, cx].astype(float)
    palette = np.array(list(data.COLOURS.values())) * 255
    expected = palette[f["colour"][:, 0]]
    # colour jitter is +-0.1 and pixel noise +-0.06 (of 255)
    assert np.abs(centre - expected).max() <= 0.16 * 255 + 1
    corners = shapes.x_train[:, [0, 0, -1, -1], [0, -1, 0, -1]].astype(float)
    assert np.median(np.abs(corners - expected[:, None]).max(-1)) > 60  # background differs


def test_shapes_deterministic_by_seed():
    a = load_dataset("shapes", n_train=50, n_test=20, seed=7)
    b = load_dataset("shapes", n_train=50, n_test=20, seed=7)
    c = load_dataset("shapes", n_train=50, n_test=20, seed=8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.labels_test["dist"], b.labels_test["dist"])
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:20], a.x_test)  # train and test use different streams


def test_bad_dataset_arguments():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match="takes no path"):
        load_dataset("shapes", path="x.npz")
    with pytest.raises(DatasetError, match="n_train, n_test >= 1"):
        load_dataset("shapes", n_train=0)


def test_official_pickles_with_foreign_objects_are_refused_not_run(tmp_path):
    write_official_dir(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump({b"data": PickleThatWritesAFile(marker)}, f)
    with pytest.raises(DatasetError, match=r"refused global (io|builtins)\.open"):
        load_dataset("cifar100", path=tmp_path)
    assert not marker.exists()
