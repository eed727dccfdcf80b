"""k-nearest-neighbour multiinformation estimators: KSG (Kraskov et al. 2004), Kozachenko-Leonenko.

All distances are Chebyshev (max-norm), in each block and in the joint space, so the joint distance
is the max over blocks of the block distances. Inputs are validated by `theory.estimators`; the
functions here take a float64 (N, d) array, a list of column-index arrays (the blocks) and a seeded
`numpy.random.Generator`, and return nats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from theory.scores import jittered_normal_scores

# Up to this many dimensions a k-d tree beats brute force (CPU seconds at N = 10^4: tree 0.82 vs
# brute 0.93 at d = 12, 1.66 vs 1.12 at d = 16).
KDTREE_MAX_DIM = 12
# Side of the brute-force distance tiles: two 256 x 256 buffers stay in L2 (256 measured faster
# than 128 and 512 at N = 4000, d = 64).
BRUTE_TILE = 256
# Bound (in quantisation steps) on |code distance - exact distance / step|: 1 from rounding both
# points, plus a margin for floating-point error.
QUANT_SLACK = 1.5
# Relative size of the tie-breaking noise for raw (not rank-transformed) data, as in NPEET.
TIE_NOISE = 1e-10
# Default neighbours: 3 for ksg/kl/kl_copula (as NPEET); 8 for knn_corrected, whose kNN bias is
# simulated and subtracted, so a larger k only lowers its variance (sd 0.023 -> 0.013 nats on a
# Student-t, d = 4, N = 5000; 0.048 -> 0.018 on the Gaussian d = 12 groups task; 4 samples each,
# measured with 2 references); 8 for ksg_extrapolated, the largest of the k = 1..8 it fits over.
DEFAULT_K = {"knn_corrected": 8, "ksg_extrapolated": 8}
# Entropy of N(0, 1) in nats.
GAUSS_ENTROPY = 0.5 * math.log(2 * math.pi * math.e)


def neighbours(method: str, k: int | None, n: int) -> int:
    """k, or when k is None the method's default (DEFAULT_K, else 3), lowered to N // 4 (at least
    1) for small samples."""
    return max(1, min(DEFAULT_K.get(method, 3), n // 4)) if k is None else k


def check_k(method: str, n: int, k: int) -> None:
    """The kNN methods need at least k + 1 samples (else ValueError)."""
    if method in ("ksg", "ksg_extrapolated", "kl", "kl_copula", "knn_corrected") and n < k + 1:
        raise ValueError(
            f"{method} needs at least k + 1 = {k + 1} samples, got N = {n}; lower k or add samples"
        )


def prepare(X: np.ndarray, rng: np.random.Generator, rank: bool) -> np.ndarray:
    """Make every column continuous (no ties) and comparable in scale, without changing M.

    rank=True: jittered normal scores (theory.scores.jittered_normal_scores). rank=False: divide
    each column by its standard deviation and add noise of relative size 1e-10 (as NPEET does).
    Both use only `rng`, never the global generator.
    """
    if rank:
        return jittered_normal_scores(X, rng)
    Z = X / X.std(axis=0)
    return Z + TIE_NOISE * rng.standard_normal(Z.shape)


def _distances_1d(y: np.ndarray, k: int) -> np.ndarray:
    """(N, k) distances to the 1st..k-th nearest other points in 1-D: the k smallest of the 2k
    neighbours in sorted order."""
    order = np.argsort(y, kind="stable")
    s = y[order]
    n = len(s)
    pos = np.arange(n)
    candidates = np.full((n, 2 * k), np.inf)
    for o in range(1, k + 1):
        left, right = pos - o, pos + o
        ok = left >= 0
        candidates[ok, 2 * o - 2] = s[ok] - s[left[ok]]
        ok = right < n
        candidates[ok, 2 * o - 1] = s[right[ok]] - s[ok]
    out = np.empty((n, k))
    out[order] = np.sort(candidates, axis=1)[:, :k]
    return out


def _quantise(Y: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer codes (d, N) q = rint(Y / h), |q| <= 16383 so differences fit in int16, and the step
    h. A Chebyshev distance between codes is within QUANT_SLACK of the exact distance / h."""
    h = max(float(np.abs(Y).max()), 1e-300) / 16383
    return np.ascontiguousarray(np.rint(Y.T / h).astype(np.int16)), h


def _chebyshev_tiles(
    Z: np.ndarray,
    visit: Callable[[slice, slice, np.ndarray], None],
    tile: int,
    band: int | None = None,
) -> None:
    """Call visit(rows_a, rows_b, D) for every tile b >= a (or a <= b < a + band tiles) of the
    symmetric Chebyshev distance matrix of the int16 codes Z (d, N) (see _quantise).

    D is accumulated dimension by dimension in place (D = max(D, |a_c - b_c|)), so the two tile
    buffers stay in cache (int16: half the bytes of float32, twice the SIMD lanes); rows of tiles
    are spread over threads (numpy releases the GIL). visit may overwrite D and must only write to
    places owned by its tile pair.
    """
    d, n = Z.shape
    starts = range(0, n, tile)

    def row_of_tiles(a: int) -> None:
        D, T = np.empty((tile, tile), np.int16), np.empty((tile, tile), np.int16)
        A = Z[:, a : a + tile]
        for b in starts[a // tile : a // tile + band if band else None]:
            B = Z[:, b : b + tile]
            Dt, Tt = D[: A.shape[1], : B.shape[1]], T[: A.shape[1], : B.shape[1]]
            np.abs(np.subtract(A[0, :, None], B[0], out=Dt), out=Dt)
            for c in range(1, d):
                np.abs(np.subtract(A[c, :, None], B[c], out=Tt), out=Tt)
                np.maximum(Dt, Tt, out=Dt)
            visit(slice(a, a + A.shape[1]), slice(b, b + B.shape[1]), Dt)

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with ThreadPoolExecutor(max_workers=workers or 1) as pool:
        list(pool.map(row_of_tiles, starts))


def _knn_brute_distances(Y: np.ndarray, k: int, tile: int = BRUTE_TILE) -> np.ndarray:
    """neighbour_distances by brute force on int16 codes, exact.

    Pass 1 (a band of tiles, about a tenth of all): tau_i = the c-th smallest code distance from
    row i within the band, c = 2k, an upper bound on its c-th smallest overall. Pass 2 (all tiles)
    keeps only pairs within tau (about 10 c per row in all). The c nearest candidates by code get
    float64 distances; their k-th is the answer when it is below the smallest exact distance any
    other row can have, else that row is recomputed in full.
    """
    n, c = len(Y), min(2 * k, len(Y) - 1)
    Z, h = _quantise(Y)
    top = np.iinfo(np.int16).max
    tau = np.full(n, top, np.int16)
    nearest: dict[int, np.ndarray] = {}  # row tile -> its c smallest codes so far (pass 1)
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def bound(ra: slice, rb: slice, D: np.ndarray) -> None:
        if ra == rb:
            np.fill_diagonal(D, top)  # a row is not its own neighbour
        merged = np.concatenate([nearest.get(ra.start, D[:, :0]), D], axis=1)
        if merged.shape[1] >= c:
            merged = np.partition(merged, c - 1, axis=1)[:, :c]
            tau[ra] = merged.max(axis=1)
        nearest[ra.start] = merged

    def keep(ra: slice, rb: slice, D: np.ndarray) -> None:
        for rows, cols, dist in ((ra, rb, D), (rb, ra, D.T)):
            if rows == cols:
                np.fill_diagonal(dist, top)
            i, j = np.nonzero(dist <= tau[rows, None])
            hits.append((i + rows.start, j + cols.start, dist[i, j]))
            if rows == cols:
                break

    _chebyshev_tiles(Z, bound, tile, band=max(1, -(-n // tile) // 10))
    _chebyshev_tiles(Z, keep, tile)
    rows, cols, codes = (np.concatenate(x) for x in zip(*hits, strict=True))
    order = np.lexsort((codes, rows))  # by row, then code distance
    rows, cols, codes = rows[order], cols[order], codes[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    best = rank < c  # every row has at least c hits
    idx = np.empty((n, c), np.int64)
    idx[rows[best], rank[best]] = cols[best]
    worst = np.empty(n)  # largest code among the c kept: every other row is at least this far
    worst[rows[rank == c - 1]] = codes[rank == c - 1]
    exact = np.abs(Y[:, None, :] - Y[idx]).max(axis=2)
    exact[idx == np.arange(n)[:, None]] = np.inf
    out = np.sort(exact, axis=1)[:, :k]
    for i in np.flatnonzero(out[:, -1] > (worst - QUANT_SLACK) * h):
        dist = np.abs(Y - Y[i]).max(axis=1)
        dist[i] = np.inf
        out[i] = np.sort(np.partition(dist, k - 1)[:k])
    return out


def _count_within_brute(Y: np.ndarray, eps: np.ndarray, tile: int = BRUTE_TILE) -> np.ndarray:
    """count_within by brute force on int16 codes, exact: pairs whose code distance is within
    QUANT_SLACK of eps / h (the k-th neighbour itself sits at eps in one block) are decided in
    float64 afterwards."""
    n = len(Y)
    Z, h = _quantise(Y)
    top = np.iinfo(np.int16).max
    sure = np.clip(np.ceil(eps / h - QUANT_SLACK), 0, top).astype(np.int16)  # code < sure: inside
    unsure = np.clip(np.floor(eps / h + QUANT_SLACK), 0, top).astype(np.int16)
    counts = np.zeros((n, -(-n // tile)), np.int64)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def visit(ra: slice, rb: slice, D: np.ndarray) -> None:
        for rows, cols, dist in ((ra, rb, D), (rb, ra, D.T)):
            if rows == cols:
                np.fill_diagonal(dist, top)
            counts[rows, cols.start // tile] = (dist < sure[rows, None]).sum(axis=1)
            i, j = np.nonzero((dist >= sure[rows, None]) & (dist <= unsure[rows, None]))
            pairs.append((i + rows.start, j + cols.start))
            if rows == cols:
                break

    _chebyshev_tiles(Z, visit, tile)
    i, j = (np.concatenate(p) for p in zip(*pairs, strict=True))
    inside = (i != j) & (np.abs(Y[i] - Y[j]).max(axis=1) < eps[i])
    return counts.sum(axis=1) + np.bincount(i[inside], minlength=n)


def neighbour_distances(Y: np.ndarray, k: int) -> np.ndarray:
    """(N, k) Chebyshev distances from each row of Y to its 1st..k-th nearest other rows."""
    n, d = Y.shape
    if d == 1:
        return _distances_1d(Y[:, 0], k)
    if d <= KDTREE_MAX_DIM:
        return cKDTree(Y).query(Y, k=k + 1, p=np.inf, workers=-1)[0][:, 1:]
    return _knn_brute_distances(Y, k)


def kth_neighbour_distance(Y: np.ndarray, k: int) -> np.ndarray:
    """Chebyshev distance from each row of Y to its k-th nearest other row (float64)."""
    return neighbour_distances(Y, k)[:, -1]


def count_within(Y: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Number of other rows strictly closer than eps[i] to row i (Chebyshev)."""
    n, d = Y.shape
    if d == 1:
        y = Y[:, 0]
        s = np.sort(y)
        inside = np.searchsorted(s, y + eps, "left") - np.searchsorted(s, y - eps, "right")
        return inside - 1
    if d <= KDTREE_MAX_DIM:
        radius = np.nextafter(eps, 0)  # query_ball_point counts <= r; we need < eps
        return cKDTree(Y).query_ball_point(Y, radius, p=np.inf, return_length=True, workers=-1) - 1
    return _count_within_brute(Y, eps)


def ksg(
    X: np.ndarray, blocks: list[np.ndarray], k: int, rng: np.random.Generator, rank: bool = True
) -> float:
    """KSG estimate (algorithm 1) of M between m blocks, in nats:

    M = psi(k) + (m - 1) psi(N) - < sum_j psi(n_j(i) + 1) >,
    eps_i the joint Chebyshev distance to the k-th neighbour, n_j(i) the number of points strictly
    within eps_i in block j.
    """
    Z = prepare(X, rng, rank)
    return _ksg_at(Z, blocks, k, kth_neighbour_distance(Z, k))


def _ksg_at(Z: np.ndarray, blocks: list[np.ndarray], k: int, eps: np.ndarray) -> float:
    """KSG's M on the prepared Z, given eps = each row's joint distance to its k-th neighbour."""
    marginal = sum(digamma(count_within(Z[:, b], eps) + 1) for b in blocks)
    return float(digamma(k) + (len(blocks) - 1) * digamma(len(Z)) - np.mean(marginal))


def ksg_extrapolated(
    X: np.ndarray, blocks: list[np.ndarray], k: int, rng: np.random.Generator, rank: bool = True
) -> float:
    """KSG extrapolated to neighbour balls of radius zero, in nats.

    KSG assumes the density constant within each point's k-neighbour ball; where it bends (curved
    maps, strong dependence) the estimate is biased low by a term of second order in the radius,
    so it falls as k grows (Beyond-Normal's spiral 3 x 3, N = 5000: 0.85 at k = 1, 0.64 at k = 10,
    truth 1.02). With KSG's M_j (algorithm 1) at j = 1..k and s_j = < eps_j(i)^2 >, the mean
    squared joint radius, this fits M_j = M_0 + b s_j by least squares and returns M_0.
    """
    if k < 2:
        return ksg(X, blocks, k, rng, rank)
    Z = prepare(X, rng, rank)
    radii = neighbour_distances(Z, k).T
    values = [_ksg_at(Z, blocks, j, eps) for j, eps in enumerate(radii, start=1)]
    _, intercept = np.polyfit(np.mean(radii**2, axis=1), values, 1)
    return float(intercept)


def kl_entropy_terms(Y: np.ndarray, k: int) -> np.ndarray:
    """Per-row terms h_i of the Kozachenko-Leonenko entropy (Chebyshev balls of volume
    (2 eps_i)^d): h_i = psi(N) - psi(k) + d log 2 + d log eps_i; their mean is the estimate."""
    n, d = Y.shape
    eps = kth_neighbour_distance(Y, k)
    return digamma(n) - digamma(k) + d * np.log(2.0) + d * np.log(eps)


def kl_entropy(Y: np.ndarray, k: int) -> float:
    """Kozachenko-Leonenko entropy in nats: H = < psi(N) - psi(k) + d log 2 + d log eps_i >."""
    return float(np.mean(kl_entropy_terms(Y, k)))


def kl(
    X: np.ndarray, blocks: list[np.ndarray], k: int, rng: np.random.Generator, rank: bool = False
) -> float:
    """M = sum_j H(X_j) - H(X) with Kozachenko-Leonenko entropies (NPEET's `tc`), in nats.

    rank=True (method "kl_copula"): on normal scores every column is exactly N(0, 1) distributed,
    so a one-column block has H = 1/2 log(2 pi e) exactly; only the joint (and any vector block) is
    estimated. The KL estimate of the evenly spread scores themselves would be biased upwards.
    """
    Z = prepare(X, rng, rank)

    def block_entropy(b: np.ndarray) -> float:
        return GAUSS_ENTROPY if rank and len(b) == 1 else kl_entropy(Z[:, b], k)

    return float(sum(block_entropy(b) for b in blocks) - kl_entropy(Z, k))
