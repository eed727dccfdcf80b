"""The offline "shapes" set: 32x32 images of 1-6 flat objects generated from the seed, no files.

Tasks `shape` (shape of the closest object), `count` (stand-in for Clevr/Count) and `dist` (depth
of the closest object in 6 bins, stand-in for Clevr/Dist); see `make_shapes`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import DatasetError, ImageDataset, channel_stats

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {
    "red": (0.9, 0.15, 0.15),
    "green": (0.2, 0.8, 0.2),
    "blue": (0.2, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "magenta": (0.85, 0.2, 0.85),
    "cyan": (0.15, 0.85, 0.9),
}
MAX_OBJECTS = 6
DEPTH_RANGE = (1.0, 2.5)  # depth d gives radius RADIUS_AT_DEPTH_1 / d pixels: 7.5 px .. 3 px
RADIUS_AT_DEPTH_1 = 7.5
DIST_BINS = 6
IMAGE_SIZE = 32
WINDOW = 20  # patch painted around an object: covers 1.2 * 7.5 px plus antialiasing


def make_shapes(n_train: int = 20000, n_test: int = 5000, seed: int = 0) -> ImageDataset:
    """Offline dataset of 32x32 RGB images with 1..6 flat objects on a noisy grey background.

    Each object has a shape (5), a colour (6, jittered), a depth d drawn as radius 7.5/d pixels
    (3..7.5 px; nearer is larger and is painted on top) and a position. The closest object's depth
    is U(1, 2.5), the others are uniform behind it; objects are placed without overlap where 20
    tries allow it. Tasks:
      shape: shape of the closest (largest) object, 5 classes;
      count: number of objects minus one, 6 classes (stand-in for Clevr/Count);
      dist:  depth of the closest object in 6 equal bins of [1, 2.5] (stand-in for Clevr/Dist).
    Factors, per slot sorted from closest to farthest, padding -1 (ints) or NaN (floats):
    count, shape, colour, depth, radius, x, y (pixel coordinates of the centre).
    """
    if n_train < 1 or n_test < 1:
        raise DatasetError(f"shapes needs n_train, n_test >= 1, got {n_train}, {n_test}")
    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x_tr, f_tr = _render_shapes(n_train, rng_train)
    x_te, f_te = _render_shapes(n_test, rng_test)
    num_classes = {"shape": len(SHAPES), "count": MAX_OBJECTS, "dist": DIST_BINS}
    return ImageDataset(
        "shapes", x_tr, x_te, _shape_labels(f_tr), _shape_labels(f_te), num_classes,
        *channel_stats(x_tr), factors_train=f_tr, factors_test=f_te,
    )  # fmt: skip


def _shape_labels(factors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    lo, hi = DEPTH_RANGE
    closest_depth = factors["depth"][:, 0]
    dist_bin = ((closest_depth - lo) / (hi - lo) * DIST_BINS).astype(np.int64)
    dist = np.clip(dist_bin, 0, DIST_BINS - 1)
    return {
        "shape": factors["shape"][:, 0].astype(np.int64),
        "count": factors["count"].astype(np.int64) - 1,
        "dist": dist,
    }


def _sample_factors(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = MAX_OBJECTS
    count = rng.integers(1, k + 1, size=n)
    present = np.arange(k) < count[:, None]
    lo, hi = DEPTH_RANGE
    closest = rng.uniform(lo, hi, size=(n, 1))  # uniform, so the "dist" bins are balanced
    behind = np.sort(rng.uniform(size=(n, k - 1)), axis=1) * (hi - closest) + closest
    depth = np.concatenate([closest, behind], axis=1)  # slot 0 is the closest
    radius = RADIUS_AT_DEPTH_1 / depth
    centres = np.empty((n, k, 2))
    tries = 20
    for slot in range(k):  # rejection sampling, vectorised over images: first non-overlapping try
        r = radius[:, slot, None]
        cand = r[..., None] + rng.uniform(size=(n, tries, 2)) * (IMAGE_SIZE - 2 * r[..., None])
        gap2 = ((cand[:, :, None, :] - centres[:, None, :slot, :]) ** 2).sum(axis=-1)
        free = (gap2 >= (radius[:, None, :slot] + r[..., None] + 1) ** 2).all(axis=-1)
        centres[:, slot] = cand[np.arange(n), np.argmax(free, axis=1)]
    factors = {
        "count": count,
        "shape": rng.integers(0, len(SHAPES), size=(n, k)),
        "colour": rng.integers(0, len(COLOURS), size=(n, k)),
        "depth": depth,
        "radius": radius,
        "x": centres[..., 0],
        "y": centres[..., 1],
    }
    for key, value in factors.items():
        if key != "count":
            factors[key] = np.where(present, value, -1 if value.dtype.kind == "i" else np.nan)
    return factors


def _signed_distance(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance (pixels, < 0 inside) to a shape of radius r centred at 0."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == 0:  # circle
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == 1:  # square with the circle's area
        return np.maximum(ax, ay) - 0.886 * r
    if shape == 2:  # upward equilateral triangle with circumradius 1.2 r
        big = 1.2 * r
        return np.maximum(dy - big / 2, 0.866 * ax - dy / 2 - big / 2)
    if shape == 3:  # diamond with half-diagonal 1.2 r
        return (ax + ay - 1.2 * r) / np.sqrt(2.0)
    bar = r / 3  # cross: union of two bars
    return np.minimum(np.maximum(ax - r, ay - bar), np.maximum(ax - bar, ay - r))


def _render_shapes(n: int, rng: np.random.Generator, chunk: int = 4096) -> tuple:
    """Paint the objects farthest first, each in a WINDOW x WINDOW patch around its centre."""
    factors = _sample_factors(n, rng)
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    jitter = rng.uniform(-0.1, 0.1, (n, MAX_OBJECTS, 3)).astype(np.float32)
    colour_rgb = np.clip(palette[np.maximum(factors["colour"], 0)] + jitter, 0, 1)
    background = rng.uniform(0.1, 0.4, size=(n, 1, 1, 1)).astype(np.float32)
    noise_rng = np.random.default_rng(rng.integers(2**62))
    offsets = np.arange(WINDOW)
    size, pad = IMAGE_SIZE, WINDOW // 2 + 1  # the padding keeps every window inside the canvas
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, chunk):  # chunks bound the memory of the float canvas
        stop = min(start + chunk, n)
        canvas = np.empty((stop - start, size + 2 * pad, size + 2 * pad, 3), dtype=np.float32)
        canvas[:] = background[start:stop]
        windows = sliding_window_view(canvas, (WINDOW, WINDOW), axis=(1, 2), writeable=True)
        for slot in reversed(range(MAX_OBJECTS)):  # painter's order: farthest first
            rows = np.flatnonzero(factors["count"][start:stop] > slot)
            g = rows + start
            cx, cy = factors["x"][g, slot], factors["y"][g, slot]
            x0 = np.rint(cx).astype(np.int64) - WINDOW // 2
            y0 = np.rint(cy).astype(np.int64) - WINDOW // 2
            dx = x0[:, None, None] + offsets[None, None, :] + 0.5 - cx[:, None, None]
            dy = y0[:, None, None] + offsets[None, :, None] + 0.5 - cy[:, None, None]
            r = factors["radius"][g, slot, None, None]
            shape = factors["shape"][g, slot]
            alpha = np.empty((len(rows), WINDOW, WINDOW), dtype=np.float32)
            for s in range(len(SHAPES)):
                sel = shape == s
                sdf = _signed_distance(s, dx[sel], dy[sel], r[sel])
                alpha[sel] = np.clip(0.5 - sdf, 0.0, 1.0)
            # windows[i, y, x] is the (3, WINDOW, WINDOW) patch of image i whose corner is (y, x)
            window = windows[rows, y0 + pad, x0 + pad]
            window += alpha[:, None] * (colour_rgb[g, slot, :, None, None] - window)
            windows[rows, y0 + pad, x0 + pad] = window
        image = canvas[:, pad : pad + size, pad : pad + size]
        image += noise_rng.random(image.shape, dtype=np.float32) * 0.12 - 0.06
        images[start:stop] = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return images, factors
