"""ViT encoder and narrow predictor for (Sparse)JEPA: no cls token, fixed 2-D sin-cos positions."""

import math

import torch
import torch.nn.functional as F
from torch import nn


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed (grid*grid, dim) embedding [sin, cos](row * w_k) ++ [sin, cos](col * w_k),
    w_k = 1e4^(-k / (dim/4))."""
    if dim % 4:
        raise ValueError(f"embedding width {dim} must be divisible by 4 for 2-D sin-cos positions")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coord in (rows.flatten(), cols.flatten()):
        angle = coord[:, None].double() * omega[None]
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1).float()


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), idx (B, L) -> (B, L, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} not divisible by heads {heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """x (b, n, d); key_valid (b, n) bool or None: padded tokens are never attended to."""
        b, n, d = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .view(b, n, 3, self.heads, d // self.heads)
            .transpose(1, 3)
            .unbind(2)
        )  # (b, heads, n, dh)
        if q.device.type == "cpu":
            # Measured: for these short sequences the CPU SDPA kernels (flash, bf16 above all) are
            # 2-4x slower in forward+backward than the plain softmax(q k^T / sqrt(dh)) v below.
            scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
            if key_valid is not None:
                scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
            a = scores.softmax(-1) @ v
        else:
            mask = None if key_valid is None else key_valid[:, None, None, :]
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """I-JEPA's init: truncated-normal (std 0.02) Linear weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def _rescale_residual_branches(blocks: nn.ModuleList) -> None:
    """I-JEPA's init: divide the output projections of block i (attention proj, second MLP layer)
    by sqrt(2 (i + 1)), so the residual stream's variance does not grow with depth at init."""
    for i, blk in enumerate(blocks):
        blk.proj.weight.div_(math.sqrt(2.0 * (i + 1)))
        blk.mlp[2].weight.div_(math.sqrt(2.0 * (i + 1)))


class Encoder(nn.Module):
    """ViT encoder; forward on optional kept-patch indices (the context encoder sees only those)."""

    def __init__(
        self,
        img_size: int = 32,
        patch: int = 4,
        width: int = 192,
        depth: int = 12,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        patch_embed_std: float = 0.02,
        conditioning: str = "none",
    ):
        super().__init__()
        if conditioning not in ("none", "ec"):
            raise ValueError(f"conditioning={conditioning!r}: choose none or ec")
        if img_size % patch:
            raise ValueError(f"img_size {img_size} not divisible by patch {patch}")
        self.grid = img_size // patch
        self.width = width
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.register_buffer("pos", sincos_2d(self.grid, width)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        init_weights(self)
        _rescale_residual_branches(self.blocks)
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=patch_embed_std)
        nn.init.zeros_(self.patch_embed.bias)
        self.cond_token = None  # EC-IJEPA: marks the tokens that carry another window's position
        if conditioning == "ec":
            self.cond_token = nn.Parameter(torch.zeros(1, 1, width))
            nn.init.trunc_normal_(self.cond_token, std=0.02)

    @classmethod
    def from_config(cls, m) -> "Encoder":
        """The encoder of a `ModelConfig` (the one construction path of every caller)."""
        return cls(
            m.img_size,
            m.patch,
            m.width,
            m.depth,
            m.heads,
            m.mlp_ratio,
            m.patch_embed_std,
            m.conditioning,
        )

    def window_positions(self, idx: torch.Tensor, valid: torch.Tensor | None = None):
        """Each window's mean sin-cos position, (1/L) sum_l pos[idx[b, w, l]]: idx (B, W, L) patch
        indices -> (B, W, D); `valid` (B, W, L) marks the real entries of padded windows."""
        pos = self.pos[0][idx]
        if valid is None:
            return pos.mean(2)
        weight = valid.to(pos)[..., None]
        return (pos * weight).sum(2) / weight.sum(2)

    def embed(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if (
            images.ndim != 4
            or images.shape[1] != 3
            or images.shape[2] != self.grid * self.patch_size
        ):
            raise ValueError(
                f"expected images (B, 3, {self.grid * self.patch_size}, "
                f"{self.grid * self.patch_size}), got {tuple(images.shape)}"
            )
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos
        return x if keep is None else gather_tokens(x, keep)

    @property
    def patch_size(self) -> int:
        return self.patch_embed.kernel_size[0]

    def forward(
        self,
        images: torch.Tensor,
        keep: torch.Tensor | None = None,
        keep_valid: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """images (B, 3, H, W) normalised -> final-normed tokens (B, L, D), L = N or len(keep).
        keep_valid (B, L) marks the real entries of a padded `keep`; padding is never attended.
        cond (B, C, D): positions of C other windows (`window_positions`; EC-IJEPA), appended as
        C tokens cond_token + cond that every patch attends to and that are dropped at the end."""
        x = self.embed(images, keep)
        n = x.shape[1]
        if cond is not None:
            if self.cond_token is None:
                raise ValueError("cond given to an encoder built with model.conditioning=none")
            x = torch.cat([x, (self.cond_token + cond).to(x.dtype)], dim=1)
            if keep_valid is not None:
                keep_valid = F.pad(keep_valid, (0, cond.shape[1]), value=True)
        for blk in self.blocks:
            x = blk(x, keep_valid)
        return self.norm(x if cond is None else x[:, :n])

    def layer_outputs(self, images: torch.Tensor, n_last: int) -> list[torch.Tensor]:
        """Outputs of the last n_last blocks on all patches, each through the final LayerNorm."""
        if not 1 <= n_last <= len(self.blocks):
            raise ValueError(f"n_last={n_last} must be in [1, {len(self.blocks)}]")
        x, outs = self.embed(images), []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i >= len(self.blocks) - n_last:
                outs.append(self.norm(x))
        return outs


class Predictor(nn.Module):
    """Narrow ViT: context tokens + (mask token + position) at target slots -> predicted targets.

    All M target blocks run in one pass: the context is repeated M times along the batch.
    """

    def __init__(
        self,
        grid: int,
        enc_width: int,
        width: int = 96,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        self.embed = nn.Linear(enc_width, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer("pos", sincos_2d(grid, width)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, enc_width)
        init_weights(self)
        _rescale_residual_branches(self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    @classmethod
    def from_config(cls, m, grid: int, enc_width: int) -> "Predictor":
        """The predictor of a `ModelConfig` for `enc_width`-wide tokens on a grid x grid image."""
        return cls(grid, enc_width, m.pred_width, m.pred_depth, m.pred_heads, m.mlp_ratio)

    def forward(
        self,
        context: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        context_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """context (B, Lc, D), context_idx (B, Lc), target_idx (B, M, Lt) -> (B*M, Lt, D),
        rows ordered sample-major (b, m). context_valid (B, Lc) marks real (unpadded) tokens."""
        b, m, lt = target_idx.shape
        pos = self.pos.expand(b, -1, -1)
        ctx = self.embed(context) + gather_tokens(pos, context_idx)
        ctx = ctx.repeat_interleave(m, dim=0)
        tgt_pos = gather_tokens(pos, target_idx.reshape(b, m * lt)).reshape(b * m, lt, -1)
        x = torch.cat([ctx, self.mask_token.to(tgt_pos.dtype) + tgt_pos], dim=1)
        key_valid = None
        if context_valid is not None:
            key_valid = F.pad(context_valid.repeat_interleave(m, dim=0), (0, lt), value=True)
        for blk in self.blocks:
            x = blk(x, key_valid)
        return self.out(self.norm(x[:, -lt:]))
