"""Multi-block mask sampler (I-JEPA), vectorised over the batch, official collator's flaws fixed.

Fixes relative to the official collator:
1. Inclusive upper bound: a block of height h can start at any row in [0, H - h], so blocks
   touch the last row/column.
2. Scale and aspect ratio are independent draws.
3. No truncation to the shortest mask in raster order. Target blocks share one (h, w) per batch
   (as in the official collator), so they all hold h*w patches and stack into one predictor pass.
   Context sizes differ per sample (targets are cut out). By default (`pad=True`) every sample
   keeps its whole context: indices are padded to the batch maximum and `context_valid` marks the
   real entries (the encoder and predictor mask padded keys out of attention). With `pad=False`
   every sample keeps a uniformly random subset of the batch-minimum size (the official collator
   cuts to the minimum too, in raster order; on the 8x8 grid that leaves 10-19 of 15-50 patches).
"""

import math
from dataclasses import dataclass

import torch


@dataclass
class Masks:
    context: torch.Tensor  # (B, Lc) long, patch indices seen by the context encoder
    targets: torch.Tensor  # (B, M, Lt) long, sorted patch indices of each target block
    # (B, Lc) bool, True where `context` is a real patch (padding is index 0 and False); None
    # when every row is full (the cut-to-minimum mode)
    context_valid: torch.Tensor | None = None


def _block_size(u_scale: torch.Tensor, u_aspect: torch.Tensor, grid: int, scale, aspect):
    """Block (h, w) from independent uniforms: area = s * grid^2, h / w = a, clamped to the grid."""
    s = scale[0] + (scale[1] - scale[0]) * u_scale
    log_a = math.log(aspect[0]) + (math.log(aspect[1]) - math.log(aspect[0])) * u_aspect
    a = torch.exp(log_a)
    area = s * grid * grid
    h = torch.sqrt(area * a).round().clamp(1, grid).long()
    w = torch.sqrt(area / a).round().clamp(1, grid).long()
    return h, w


def _block_masks(
    h: torch.Tensor, w: torch.Tensor, shape: tuple[int, ...], grid: int, generator: torch.Generator
) -> torch.Tensor:
    """Boolean (*shape, grid*grid) masks of h x w blocks, top-left uniform on [0, grid - size]."""
    top = (torch.rand(shape, generator=generator) * (grid - h + 1)).long()
    left = (torch.rand(shape, generator=generator) * (grid - w + 1)).long()
    rows = torch.arange(grid).view(*([1] * len(shape)), grid, 1)
    cols = torch.arange(grid).view(*([1] * len(shape)), 1, grid)
    t, lft = top[..., None, None], left[..., None, None]
    hh, ww = h.expand(shape)[..., None, None], w.expand(shape)[..., None, None]
    inside = (rows >= t) & (rows < t + hh) & (cols >= lft) & (cols < lft + ww)
    return inside.flatten(-2)


def _first_true(mask: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted indices of the True entries of each row (each row has exactly `count` True)."""
    return (
        mask.to(torch.int8)
        .argsort(dim=-1, descending=True, stable=True)[..., :count]
        .sort(-1)
        .values
    )


def sample_masks(
    batch_size: int,
    grid: int,
    generator: torch.Generator,
    num_targets: int = 4,
    target_scale=(0.15, 0.2),
    target_aspect=(0.75, 1.5),
    context_scale=(0.85, 1.0),
    min_keep: int = 10,
    pad: bool = True,
    max_tries: int = 50,
) -> Masks:
    """One context block and `num_targets` target blocks per image on a grid x grid patch grid.

    Context = context block minus all target patches, needing >= min_keep patches; samples that
    fall short get all their blocks redrawn (vectorised over the failing samples). `pad`: keep all
    context patches (sorted, padded to the longest row) or cut each row to the batch minimum.
    """
    if min_keep < 1 or min_keep > grid * grid:
        raise ValueError(f"min_keep={min_keep} must be in [1, {grid * grid}]")
    g = generator
    th, tw = _block_size(
        torch.rand((), generator=g), torch.rand((), generator=g), grid, target_scale, target_aspect
    )
    n = grid * grid
    targets = torch.zeros(batch_size, num_targets, n, dtype=torch.bool)
    context = torch.zeros(batch_size, n, dtype=torch.bool)
    todo = torch.arange(batch_size)
    for _ in range(max_tries):
        k = len(todo)
        tgt = _block_masks(th, tw, (k, num_targets), grid, g)
        ch, cw = _block_size(
            torch.rand(k, generator=g), torch.full((k,), 0.5), grid, context_scale, (1.0, 1.0)
        )
        ctx = _block_masks(ch, cw, (k,), grid, g) & ~tgt.any(dim=1)
        targets[todo], context[todo] = tgt, ctx
        todo = todo[ctx.sum(-1) < min_keep]
        if len(todo) == 0:
            break
    else:
        raise RuntimeError(
            f"could not keep min_keep={min_keep} context patches in {max_tries} "
            "tries; lower mask.min_keep or the target scale"
        )
    targets_idx = _first_true(targets, int(th * tw))
    counts = context.sum(-1)
    if pad:
        longest = int(counts.max())
        ctx_idx = context.to(torch.int8).argsort(dim=-1, descending=True, stable=True)[:, :longest]
        valid = torch.arange(longest) < counts[:, None]
        return Masks(ctx_idx.masked_fill(~valid, 0), targets_idx, valid)
    # Uniformly random subset of `keep` context patches per sample (non-context patches rank last).
    keep = int(counts.min())
    scores = torch.rand(batch_size, n, generator=g).masked_fill(~context, 2.0)
    ctx_idx = scores.argsort(dim=-1)[:, :keep].sort(-1).values
    return Masks(context=ctx_idx, targets=targets_idx)
