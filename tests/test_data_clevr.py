"""The CLEVR v1.0 loader (Clevr/Count, Clevr/Dist as in VTAB) on a tiny official-layout folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparsejepa.data import DatasetError, load_dataset
from sparsejepa.data.clevr import dist_label

RED, BLUE = (220, 30, 30), (30, 30, 220)


def write_clevr(root: Path, scenes: dict[str, list[list[float]]]) -> Path:
    """CLEVR_v1.0 with one 480x320 RGBA PNG per scene (left half red, right half blue, green
    channel 30 + 5 i in scene i); scenes maps split -> per-scene depths (one object per depth)."""
    base = root / "CLEVR_v1.0"
    (base / "scenes").mkdir(parents=True)
    for split, depth_lists in scenes.items():
        (base / "images" / split).mkdir(parents=True)
        entries = []
        for i, depths in enumerate(depth_lists):
            name = f"CLEVR_{split}_{i:06d}.png"
            pixels = np.zeros((320, 480, 4), dtype=np.uint8)
            pixels[:, :240, :3], pixels[:, 240:, :3], pixels[..., 3] = RED, BLUE, 255
            pixels[..., 1] = 30 + 5 * i
            Image.fromarray(pixels, "RGBA").save(base / "images" / split / name)
            objects = [
                {"pixel_coords": [100 + j, 80, d], "shape": "cube"} for j, d in enumerate(depths)
            ]
            entries.append({"image_index": i, "image_filename": name, "objects": objects})
        (base / "scenes" / f"CLEVR_{split}_scenes.json").write_text(
            json.dumps({"info": {"split": split}, "scenes": entries})
        )
    return base


TRAIN = [[12.0, 7.5, 13.0], [9.2] * 5, [8.0] * 10, [8.01, 11, 11, 11], [10.0] * 3, [15.0] * 7]
VAL = [[9.9, 12.0, 12.5], [8.6] * 4]


@pytest.fixture
def clevr(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSEJEPA_CLEVR", raising=False)
    monkeypatch.setenv("SPARSEJEPA_CACHE", str(tmp_path / "cache"))
    return write_clevr(tmp_path, {"train": TRAIN, "val": VAL})


def test_labels_follow_vtab_and_images_are_resized(clevr):
    ds = load_dataset("clevr", path=clevr, image_size=16)
    assert ds.num_classes == {"count": 8, "dist": 6}
    assert ds.x_train.shape == (6, 16, 16, 3) and ds.x_test.shape == (2, 16, 16, 3)
    assert ds.x_train.dtype == np.uint8 and ds.x_train.flags.c_contiguous
    np.testing.assert_array_equal(ds.labels_train["count"], [0, 2, 7, 1, 0, 4])
    # closest depth 7.5 -> bin 0; 9.2 -> (9, 9.5] = 3; 8.0 -> 0 (edge not below); 8.01 -> 1;
    # 10.0 -> 4; 15 -> (10, 100] = 5
    np.testing.assert_array_equal(ds.labels_train["dist"], [0, 3, 0, 1, 4, 5])
    np.testing.assert_array_equal(ds.labels_test["count"], [0, 1])
    np.testing.assert_array_equal(ds.labels_test["dist"], [4, 2])
    np.testing.assert_allclose(ds.factors_train["closest_depth"], [7.5, 9.2, 8.0, 8.01, 10.0, 15.0])
    # whole image resized, RGBA -> RGB: left columns red, right columns blue
    np.testing.assert_array_equal(ds.x_train[:, :, 0, ::2], np.broadcast_to(RED[::2], (6, 16, 2)))
    np.testing.assert_array_equal(ds.x_test[:, :, -1, ::2], np.broadcast_to(BLUE[::2], (2, 16, 2)))
    np.testing.assert_array_equal(ds.x_train[:, 5, 7, 1], 30 + 5 * np.arange(6))
    assert ds.mean[0] > ds.mean[1] and ds.mean[2] > ds.mean[1]


def test_dist_bins_match_vtab_rule():
    edges = np.array([0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0])
    for depth in np.linspace(0.05, 100, 2001):
        assert dist_label(depth) == np.max(np.where(edges - depth < 0))  # VTAB's expression
    with pytest.raises(ValueError, match="outside"):
        dist_label(120.0)


def test_sources_parent_dir_env_and_cache(clevr, monkeypatch, tmp_path):
    assert len(load_dataset("clevr", path=clevr.parent).x_train) == 6  # the parent works too
    monkeypatch.setenv("SPARSEJEPA_CLEVR", str(clevr))
    assert len(load_dataset("clevr").x_test) == 2
    monkeypatch.delenv("SPARSEJEPA_CLEVR")
    assert len(load_dataset("clevr", cache_dir=clevr.parent).x_test) == 2


def test_subset_is_count_stratified_and_decodes_only_the_kept_images(clevr):
    full = load_dataset("clevr", path=clevr, image_size=8)
    small = load_dataset("clevr", path=clevr, image_size=8, n_train=3, n_test=1, seed=4)
    assert len(small.x_train) == 3 and len(small.x_test) == 1
    assert len(set(small.labels_train["count"])) == 3  # three distinct counts, as balanced
    kept = set(small.factors_train["closest_depth"])
    for i, depths in enumerate(TRAIN):  # images of dropped scenes are never opened
        if min(depths) not in kept:
            (clevr / "images" / "train" / f"CLEVR_train_{i:06d}.png").unlink()
    again = load_dataset("clevr", path=clevr, image_size=8, n_train=3, n_test=1, seed=4)
    np.testing.assert_array_equal(again.labels_train["dist"], small.labels_train["dist"])
    assert len(full.x_train) == 6


def test_missing_clevr_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSEJEPA_CLEVR", raising=False)
    with pytest.raises(DatasetError) as info:
        load_dataset("clevr", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert str(tmp_path / "cache" / "CLEVR_v1.0") in message and "SPARSEJEPA_CLEVR" in message
    with pytest.raises(DatasetError, match=r"not found at .*nowhere \(from path argument\)"):
        load_dataset("clevr", path=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="not downloaded automatically"):
        load_dataset("clevr", download=True)


def _unlink(relative: str):
    return lambda base: (base / relative).unlink()


def _write(relative: str, content: bytes):
    return lambda base: (base / relative).write_bytes(content)


def _edit_scene(edit):
    def damage(base: Path) -> None:
        file = base / "scenes" / "CLEVR_train_scenes.json"
        content = json.loads(file.read_text())
        edit(content["scenes"][0])
        file.write_text(json.dumps(content))

    return damage


def _far(scene):
    for obj in scene["objects"]:
        obj["pixel_coords"][2] = 200.0


DAMAGES = {
    "no val scenes": (_unlink("scenes/CLEVR_val_scenes.json"), "CLEVR_val_scenes.json is missing"),
    "bad json": (_write("scenes/CLEVR_train_scenes.json", b"{oops"), "not a CLEVR scenes file"),
    "no objects": (_edit_scene(lambda s: s.pop("objects")), "scene 0 is malformed"),
    "2 objects": (_edit_scene(lambda s: s["objects"].pop()), r"scene 0 .* has 2 objects"),
    "2-d coords": (
        _edit_scene(lambda s: s["objects"][0].update(pixel_coords=[1, 2])),
        "scene 0 is malformed",
    ),
    "too far": (_edit_scene(_far), "depth 200.0 outside"),
    "no image": (
        _unlink("images/train/CLEVR_train_000002.png"),
        "CLEVR_train_000002.png is missing",
    ),
    "bad image": (_write("images/val/CLEVR_val_000001.png", b"junk"), "unreadable or corrupt"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_folders_are_clear_errors(clevr, damage):
    apply, message = DAMAGES[damage]
    apply(clevr)
    with pytest.raises(DatasetError, match=message):
        load_dataset("clevr", path=clevr)
