"""CLEVR v1.0 as the VTAB low-level tasks Clevr/Count and Clevr/Dist, resized to the training size.

Layout (the official CLEVR_v1.0.zip, https://cs.stanford.edu/people/jcjohns/clevr/):
    CLEVR_v1.0/images/{train,val}/CLEVR_{split}_NNNNNN.png
    CLEVR_v1.0/scenes/CLEVR_{split}_scenes.json   {"scenes": [{"image_filename", "objects": [...]}]}
As in VTAB, the official train split is ours and the official val split is the test split (the
official test split has no scenes). Tasks:
    count: number of objects - 3 (3..10 objects, 8 classes);
    dist:  depth (pixel_coords[2]) of the closest object, 6 bins with edges
           0, 8, 8.5, 9, 9.5, 10, 100 (label = the last edge below the depth, VTAB's rule).
Images (480x320 RGBA) become RGB and are resized to `size` x `size` (the whole image, bilinear
with antialiasing, no crop), as VTAB resizes to its input size.

Source, first hit wins: the `path` argument (CLEVR_v1.0 or its parent), env SPARSEJEPA_CLEVR,
the cache dir's CLEVR_v1.0. There is no download (the archive is 18 GB). `n_train`/`n_test` pick a
count-stratified subset of the scenes before any image is decoded (decoding all 85k PNGs takes
minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import (
    DatasetError,
    ImageDataset,
    channel_stats,
    check_images,
    check_labels,
    default_cache_dir,
    find_source,
    stratified_indices,
    tried,
)

CLEVR_URL = "https://cs.stanford.edu/people/jcjohns/clevr/"
CLEVR_TASKS = {"count": 8, "dist": 6}
MIN_OBJECTS, MAX_OBJECTS = 3, 10
DIST_EDGES = np.array([0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0])
SPLITS = {"train": "train", "test": "val"}  # our split -> official split (as in VTAB)


def locate_clevr(path=None, cache_dir=None) -> Path | None:
    """The CLEVR_v1.0 folder, or None when no source has it (explicit paths must exist)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found, _ = find_source("CLEVR", path, "SPARSEJEPA_CLEVR", cache, ("CLEVR_v1.0",))
    if found is not None and (found / "CLEVR_v1.0").is_dir():
        found = found / "CLEVR_v1.0"
    return found


def load_clevr(
    path=None,
    cache_dir=None,
    size: int = 32,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageDataset:
    """Clevr/Count and Clevr/Dist at `size` x `size`; optional count-stratified subsets by seed."""
    root = locate_clevr(path, cache_dir)
    if root is None:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        _, candidates = find_source("CLEVR", None, "SPARSEJEPA_CLEVR", cache, ("CLEVR_v1.0",))
        raise DatasetError(
            f"CLEVR not found. Tried:\n  {tried(candidates)}\nFix: download CLEVR_v1.0.zip from "
            f"{CLEVR_URL}, unzip it and point env SPARSEJEPA_CLEVR (or --data-path) at the "
            "CLEVR_v1.0 folder. Without it the notebooks use the offline `shapes` stand-ins."
        )
    if size < 1:
        raise DatasetError(f"CLEVR image size must be >= 1, got {size}")
    arrays = {}
    for ours, official, n, split_seed in (
        ("train", SPLITS["train"], n_train, seed),
        ("test", SPLITS["test"], n_test, seed + 1),
    ):
        files, labels, factors = read_scenes(root, official)
        if n is not None:
            keep = stratified_indices(labels["count"], n, split_seed)
            files = [files[i] for i in keep]
            labels = {k: v[keep] for k, v in labels.items()}
            factors = {k: v[keep] for k, v in factors.items()}
        x = check_images(root, ours, _decode(files, size), size)
        arrays[ours] = (x, check_labels(root, ours, len(x), labels, CLEVR_TASKS), factors)
    (x_tr, y_tr, f_tr), (x_te, y_te, f_te) = arrays["train"], arrays["test"]
    return ImageDataset("clevr", x_tr, x_te, y_tr, y_te, dict(CLEVR_TASKS), *channel_stats(x_tr),
                        factors_train=f_tr, factors_test=f_te)  # fmt: skip


def dist_label(depth: float) -> int:
    """VTAB's Clevr/Dist bin: the index of the last edge strictly below the closest depth."""
    if not DIST_EDGES[0] < depth <= DIST_EDGES[-1]:
        low, high = DIST_EDGES[0], DIST_EDGES[-1]
        raise ValueError(f"closest-object depth {depth} outside ({low}, {high}]")
    return int(np.searchsorted(DIST_EDGES, depth, side="left") - 1)


def read_scenes(root: Path, split: str) -> tuple[list[Path], dict, dict]:
    """(image paths, {"count", "dist"} labels, {"count", "closest_depth"} factors) of a split."""
    scenes_file = root / "scenes" / f"CLEVR_{split}_scenes.json"
    if not scenes_file.is_file():
        raise DatasetError(
            f"{scenes_file} is missing: {root} is not a complete CLEVR_v1.0 folder (expected "
            f"scenes/CLEVR_train_scenes.json and scenes/CLEVR_val_scenes.json; get {CLEVR_URL})"
        )
    try:
        scenes = json.loads(scenes_file.read_text())["scenes"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(
            f"{scenes_file}: not a CLEVR scenes file ({type(err).__name__}: {err}); expected "
            'JSON {"scenes": [...]}; re-extract it from CLEVR_v1.0.zip'
        ) from None
    if not isinstance(scenes, list) or not scenes:
        raise DatasetError(f"{scenes_file}: 'scenes' must be a non-empty list")
    files, counts, depths = [], [], []
    for i, scene in enumerate(scenes):
        try:
            name = scene["image_filename"]
            coords = np.array([obj["pixel_coords"] for obj in scene["objects"]], dtype=np.float64)
            if not isinstance(name, str) or coords.ndim != 2 or coords.shape[1] != 3:
                raise ValueError("image_filename must be a string, pixel_coords [x, y, depth]")
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(
                f"{scenes_file}: scene {i} is malformed ({type(err).__name__}: {err}); each scene "
                "needs image_filename and objects with pixel_coords"
            ) from None
        if not MIN_OBJECTS <= len(coords) <= MAX_OBJECTS:
            raise DatasetError(
                f"{scenes_file}: scene {i} ({name}) has {len(coords)} objects; CLEVR v1.0 scenes "
                f"have {MIN_OBJECTS}..{MAX_OBJECTS}"
            )
        files.append(root / "images" / split / name)
        counts.append(len(coords))
        depths.append(coords[:, 2].min())
    counts, depths = np.array(counts), np.array(depths)
    try:
        dist = np.array([dist_label(d) for d in depths], dtype=np.int64)
    except ValueError as err:
        raise DatasetError(f"{scenes_file}: {err}") from None
    labels = {"count": counts - MIN_OBJECTS, "dist": dist}
    return files, labels, {"count": counts, "closest_depth": depths}


def _decode(files: list[Path], size: int) -> np.ndarray:
    """uint8 (N, size, size, 3): each PNG as RGB, resized (bilinear, antialiased)."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, file in enumerate(files):
        if not file.is_file():
            raise DatasetError(
                f"image {file} is missing (listed in the scenes file); the CLEVR_v1.0 folder is "
                "incomplete, re-extract images/ from CLEVR_v1.0.zip"
            )
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb)
        except (UnidentifiedImageError, OSError) as err:
            raise DatasetError(f"image {file} is unreadable or corrupt ({err})") from None
    return out
