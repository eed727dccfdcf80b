"""Batched input pipeline on the training device: normalisation, random resized crop, batch indices.

No DataLoader and no per-sample Python loop: a whole split lives in one uint8 tensor,
`batch_indices` says which rows form the batch of a step, and the crop is one `grid_sample`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A copy of CPU tensor `t` on `device`; to CUDA through pinned memory without blocking, so the
    host does not wait for the device's queued work (a pageable copy does)."""
    if torch.device(device).type != "cuda":
        return t.to(device, copy=True)
    return t.pin_memory().to(device, non_blocking=True)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W) with x' = (x / 255 - mean) / std per channel."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"normalize expects uint8 (B, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 entries each with std > 0, got {mean}, {std}")
    mean_t = to_device(torch.tensor(mean, dtype=torch.float32), x.device).view(1, 3, 1, 1)
    std_t = to_device(torch.tensor(std, dtype=torch.float32), x.device).view(1, 3, 1, 1)
    images = x.permute(0, 3, 1, 2).float().div_(255.0)
    return images.sub_(mean_t).div_(std_t).contiguous()


def crop_boxes(
    batch: int,
    generator: torch.Generator,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    hflip: bool = False,
    tries: int = 10,
) -> tuple[torch.Tensor, ...]:
    """Random crop boxes as float64 (batch,) tensors on the generator's device.

    Per sample: area fraction a ~ U(scale), aspect ratio r = exp(U(log ratio)); the box has width
    sqrt(a r) and height sqrt(a / r) (fractions of the image side), redrawn `tries` times while it
    does not fit (a fixed number of rounds: no device sync), then clamped to 1. Returned in
    affine_grid units (the image spans [-1, 1]): half-width w, half-height h, centre (cx, cy)
    uniform over the positions where the box fits, and a flip sign (-1 with probability 1/2 if
    `hflip`).
    """
    device = generator.device

    def uniform(low: float | torch.Tensor, high: float | torch.Tensor) -> torch.Tensor:
        u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
        return low + (high - low) * u

    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    width = torch.full((batch,), 2.0, dtype=torch.float64, device=device)
    height = width.clone()
    for _ in range(tries):  # vectorised rejection: redraw only the boxes that do not fit
        redo = (width > 1) | (height > 1)
        area, aspect = uniform(*scale), torch.exp(uniform(*log_ratio))
        width = torch.where(redo, torch.sqrt(area * aspect), width)
        height = torch.where(redo, torch.sqrt(area / aspect), height)
    width, height = width.clamp(max=1.0), height.clamp(max=1.0)
    centre_x, centre_y = uniform(width - 1, 1 - width), uniform(height - 1, 1 - height)
    flip = torch.ones(batch, dtype=torch.float64, device=device)
    if hflip:
        flip = torch.where(uniform(0.0, 1.0) < 0.5, -flip, flip)
    return width, height, centre_x, centre_y, flip


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = False,
) -> torch.Tensor:
    """I-JEPA's augmentation: crop a random box per image (see `crop_boxes`) and resize it back to
    (H, W) by bilinear sampling, all images in one affine_grid + grid_sample call. The boxes are
    drawn from `generator` on its own device and moved to x's device.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"random_resized_crop expects float (B, C, H, W), got {x.dtype} {x.shape}")
    if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
        raise ValueError(
            f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1], got {scale}, {ratio}"
        )
    width, height, centre_x, centre_y, flip = crop_boxes(x.shape[0], generator, scale, ratio, hflip)
    theta = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64, device=generator.device)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    # affine_grid maps output coords in [-1, 1] to input coords: x_in = flip * w * x_out + cx
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _seed_for_epoch(seed: int, epoch: int) -> int:
    """A 63-bit seed mixing (seed, epoch), so nearby seeds give unrelated permutations."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(_seed_for_epoch(seed, epoch))
    return torch.randperm(n, generator=generator)


def batch_indices(
    n: int, batch_size: int, step: int, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Indices (int64, on `device`) of the batch at global `step`: a pure function of its arguments.

    Epoch e = step // (n // batch_size) uses a permutation of range(n) seeded by (seed, e); the
    batch is its slice number step % (n // batch_size); the last incomplete batch is dropped. A
    resumed run therefore needs only the step counter, no loader state.
    """
    if batch_size < 1 or n < batch_size:
        raise ValueError(f"need 1 <= batch_size <= n, got batch_size={batch_size}, n={n}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    steps_per_epoch = n // batch_size
    epoch, position = divmod(step, steps_per_epoch)
    permutation = _epoch_permutation(n, seed, epoch)
    batch = permutation[position * batch_size : (position + 1) * batch_size]
    return to_device(batch, device)  # a copy, so callers cannot change the cached permutation
