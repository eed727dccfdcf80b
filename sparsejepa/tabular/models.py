"""Tabular T-JEPA and Var-T-JEPA: feature tokens, transformer encoder, masked-token predictor.

Token layout of a row with D features: position 0 is the learned [REG] token, position j+1 is
feature j (numeric features first, then categorical). Every token gets a fixed 1-D sin-cos
feature-position encoding. The transformer blocks are the image core's (`sparsejepa.vit.Block`).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..gaussian import (
    LOGVAR_RANGE,
    gaussian_kl,
    gaussian_kl_diag,
    gaussian_log_prob,
    reparameterise,
)
from ..vit import Block, gather_tokens, init_weights


def categorical_log_prob(logits, labels) -> torch.Tensor:
    """log softmax(logits)[label] over the last axis; logits (..., C), labels (...) int64."""
    return torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)


def sincos_1d(n: int, dim: int) -> torch.Tensor:
    """Fixed (n, dim) encoding [sin(p w_k), cos(p w_k)], w_k = 1e4^(-k / (dim/2)), p = 0..n-1."""
    if dim % 2:
        raise ValueError(f"width {dim} must be even for sin-cos feature positions")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angle = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
    return torch.cat([angle.sin(), angle.cos()], dim=1).float()


class FeatureTokenizer(nn.Module):
    """Row -> (B, 1 + D, width) tokens: [REG]; x_j w_j + b_j for numeric j; E_j[c_j] for
    categorical j (one embedding table per feature); plus the position encoding."""

    def __init__(self, n_num: int, cardinalities: list[int], width: int):
        super().__init__()
        self.n_num, self.n_cat = n_num, len(cardinalities)
        self.num_weight = nn.Parameter(torch.randn(n_num, width) * 0.02)
        self.num_bias = nn.Parameter(torch.zeros(n_num, width))
        self.cat_embed = nn.ModuleList(nn.Embedding(c, width) for c in cardinalities)
        for table in self.cat_embed:
            nn.init.trunc_normal_(table.weight, std=0.02)
        self.reg_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        pos = sincos_1d(1 + n_num + self.n_cat, width)[None]
        self.register_buffer("pos", pos, persistent=False)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = [self.reg_token.expand(len(x_num), -1, -1)]
        tokens.append(x_num[:, :, None] * self.num_weight + self.num_bias)
        tokens += [table(x_cat[:, j])[:, None] for j, table in enumerate(self.cat_embed)]
        return torch.cat(tokens, dim=1) + self.pos


class Backbone(nn.Module):
    """Tokenizer + transformer encoder; runs on the kept token positions only (context)."""

    def __init__(
        self,
        n_num: int,
        cardinalities: list[int],
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
    ):
        super().__init__()
        self.tokenizer = FeatureTokenizer(n_num, cardinalities, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        init_weights(self.blocks)
        self.n_tokens = 1 + n_num + len(cardinalities)

    def forward(self, x_num, x_cat, keep: torch.Tensor | None = None) -> torch.Tensor:
        """-> (B, L, width) final-normed tokens, L = 1 + D or keep.shape[1]."""
        x = self.tokenizer(x_num, x_cat)
        if keep is not None:
            x = gather_tokens(x, keep)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class TokenPredictor(nn.Module):
    """I-JEPA-style predictor on feature tokens: embedded context tokens + position, one shared
    mask token + position per target slot, optional conditioning token (Var-T-JEPA: z); all M
    target sets in one pass (the context repeated M times along the batch)."""

    def __init__(
        self,
        n_tokens: int,
        in_dim: int,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        out_dim: int,
        cond_dim: int = 0,
    ):
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.cond = nn.Linear(cond_dim, width) if cond_dim else None
        self.mask_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.register_buffer("pos", sincos_1d(n_tokens, width)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)
        init_weights(nn.ModuleList([self.embed, self.blocks, self.out]))

    def forward(self, context, context_idx, target_idx, cond: torch.Tensor | None = None):
        """context (B, Lc, in_dim), context_idx (B, Lc), target_idx (B, M, Lt), cond (B, c)
        -> (B*M, Lt, out_dim), rows ordered sample-major (b, m)."""
        b, m, lt = target_idx.shape
        pos = self.pos.expand(b, -1, -1)
        parts = [self.embed(context) + gather_tokens(pos, context_idx)]
        if self.cond is not None:
            parts.append(self.cond(cond)[:, None])
        ctx = torch.cat(parts, dim=1).repeat_interleave(m, dim=0)
        tgt = gather_tokens(pos, target_idx.reshape(b, m * lt)).reshape(b * m, lt, -1)
        x = torch.cat([ctx, self.mask_token + tgt], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.out(self.norm(x[:, -lt:]))


def pool(tokens: torch.Tensor, how: str) -> torch.Tensor:
    """(B, 1 + D, d) -> (B, d): mean over all tokens, or the [REG] token."""
    return tokens.mean(1) if how == "mean" else tokens[:, 0]


class TJEPA(nn.Module):
    """T-JEPA student (context backbone + predictor). The EMA target backbone lives in the
    training state; the loss compares predictions with its (layer-normed) target tokens."""

    def __init__(self, n_num: int, cardinalities: list[int], m):
        super().__init__()
        self.backbone = Backbone(n_num, cardinalities, m.width, m.depth, m.heads, m.mlp_ratio)
        self.predictor = TokenPredictor(
            self.backbone.n_tokens,
            m.width,
            m.pred_width,
            m.pred_depth,
            m.pred_heads,
            m.mlp_ratio,
            m.width,
        )

    def forward(self, x_num, x_cat, context_idx, target_idx, target_tokens, loss: str = "l2"):
        """target_tokens (B*M, Lt, width) from the target backbone -> {'loss', 'jepa'}:
        jepa = mean ||predictor(encoder(x_ctx)) - target||^2 (or smooth-L1)."""
        h = self.backbone(x_num, x_cat, context_idx)
        pred = self.predictor(h, context_idx, target_idx)
        if loss == "l2":
            jepa = (pred - target_tokens).square().mean()
        else:
            jepa = F.smooth_l1_loss(pred, target_tokens)
        return {"loss": jepa, "jepa": jepa}


class FeatureDecoder(nn.Module):
    """Feature-wise decoders p(x_j | s_j) from a feature's latent token s_j in R^k:
    numeric j: N(a_j . s_j + c_j, exp(a'_j . s_j + c'_j)) (or a fixed log-variance);
    categorical j: softmax(A_j s_j + c_j)
    over its cardinality (one head per feature, padded to the largest cardinality and masked)."""

    def __init__(
        self,
        latent_dim: int,
        n_num: int,
        cardinalities: list[int],
        fixed_logvar: float | None = None,
    ):
        super().__init__()
        self.n_num, self.fixed_logvar = n_num, fixed_logvar
        self.num_w = nn.Parameter(torch.randn(max(n_num, 1), latent_dim, 2) * latent_dim**-0.5)
        self.num_b = nn.Parameter(torch.zeros(max(n_num, 1), 2))
        width = max(cardinalities, default=1)
        self.cat_w = nn.Parameter(
            torch.randn(max(len(cardinalities), 1), latent_dim, width) * latent_dim**-0.5
        )
        self.cat_b = nn.Parameter(torch.zeros(max(len(cardinalities), 1), width))
        valid = torch.arange(width)[None] < torch.tensor(cardinalities or [width])[:, None]
        self.register_buffer("cat_valid", valid, persistent=False)

    def log_prob(self, s: torch.Tensor, feature: torch.Tensor, x_num, x_cat) -> torch.Tensor:
        """s (B, L, k) latents of feature tokens `feature` (B, L) in 0..D-1 -> log p (B, L)."""
        is_num = feature < self.n_num
        out = torch.zeros(feature.shape, dtype=s.dtype, device=s.device)
        if self.n_num:
            j = feature.clamp(max=self.n_num - 1)
            params = torch.einsum("bld,bldk->blk", s, self.num_w[j]) + self.num_b[j]
            mu, logvar = params.unbind(-1)
            value = torch.gather(x_num, 1, j)
            if self.fixed_logvar is not None:
                logvar = torch.full_like(mu, self.fixed_logvar)
            log_p = gaussian_log_prob(value, mu, logvar.clamp(*LOGVAR_RANGE))
            out = torch.where(is_num, log_p, out)
        if x_cat.shape[1]:
            j = (feature - self.n_num).clamp(min=0)
            logits = torch.einsum("bld,bldc->blc", s, self.cat_w[j]) + self.cat_b[j]
            logits = logits.masked_fill(~self.cat_valid[j], -math.inf)
            out = torch.where(is_num, out, categorical_log_prob(logits, torch.gather(x_cat, 1, j)))
        return out


class VarTJEPA(nn.Module):
    """Var-T-JEPA: p(s_x) p(z) p(x|s_x) p(s_y|s_x,z) p(y|s_y), all Gaussian latents diagonal.

    q(s_x|x): backbone on the context tokens -> per-token (mu, logvar) in R^k.
    q(z|s_x): MLP on the token mean of s_x -> (mu, logvar) in R^z.
    p(s_y|s_x,z): the predictor (context s_x tokens + a z token + mask tokens) -> (mu, logvar).
    q(s_y|s_x,z,y): the same backbone on context + target tokens ("joint") or on [REG] + target
        tokens ("target"), its own head -> (mu, logvar) at the target positions.
    Decoders p(x_j|s_j) are feature-wise (`FeatureDecoder`). No EMA, no stop-gradient.
    """

    def __init__(self, n_num: int, cardinalities: list[int], m, v):
        super().__init__()
        self.backbone = Backbone(n_num, cardinalities, m.width, m.depth, m.heads, m.mlp_ratio)
        k = m.latent_dim
        self.sx_head = nn.Linear(m.width, 2 * k)
        self.sy_head = nn.Linear(m.width, 2 * k)
        self.z_head = nn.Sequential(
            nn.Linear(k, m.width), nn.GELU(), nn.Linear(m.width, 2 * m.z_dim)
        )
        self.predictor = TokenPredictor(
            self.backbone.n_tokens,
            k,
            m.pred_width,
            m.pred_depth,
            m.pred_heads,
            m.mlp_ratio,
            2 * k,
            cond_dim=m.z_dim,
        )
        self.decoder = FeatureDecoder(k, n_num, cardinalities, v.decoder_logvar)
        init_weights(nn.ModuleList([self.sx_head, self.sy_head, self.z_head]))
        self.var = v

    def gaussian(self, out: torch.Tensor, fixed: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = out.chunk(2, dim=-1)
        if fixed is not None:
            return mu, torch.full_like(logvar, fixed)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def posterior_sx(self, x_num, x_cat, keep=None):
        h = self.backbone(x_num, x_cat, keep)
        return self.gaussian(self.sx_head(h), self.var.posterior_logvar)

    def posterior_z(self, s_x: torch.Tensor):
        return self.gaussian(self.z_head(s_x.mean(1)), self.var.posterior_logvar)

    def prior_sy(self, s_x, context_idx, target_idx, z):
        return self.gaussian(self.predictor(s_x, context_idx, target_idx, z), self.var.prior_logvar)

    def posterior_sy(self, x_num, x_cat, context_idx, target_idx):
        """-> (mu, logvar) of shape (B*M, Lt, k) at the target positions of each target set."""
        b, m, lt = target_idx.shape
        rows = lambda t: t.repeat_interleave(m, dim=0)  # noqa: E731
        tgt = target_idx.reshape(b * m, lt)
        if self.var.target_posterior == "joint":
            keep = torch.cat([rows(context_idx), tgt], dim=1)
        else:
            keep = torch.cat([torch.zeros_like(tgt[:, :1]), tgt], dim=1)
        h = self.backbone(rows(x_num), rows(x_cat), keep)[:, -lt:]
        return self.gaussian(self.sy_head(h), self.var.posterior_logvar)

    def forward(self, x_num, x_cat, context_idx, target_idx, generator: torch.Generator):
        """Per-row ELBO terms (means over the batch), noise drawn from `generator`:
        recon = E_q log p(x_ctx|s_x)            (sum over context features)
        gen   = E_q log p(y|s_y)                (sum over the M target sets' features)
        kl_sx = KL(q(s_x|x) || N(0,I)), kl_z = KL(q(z|s_x) || N(0,I))
        kl_sy = KL(q(s_y|s_x,z,y) || p(s_y|s_x,z)), all closed form for one sample of s_x, z."""
        b, m, lt = target_idx.shape
        mu_sx, lv_sx = self.posterior_sx(x_num, x_cat, context_idx)
        s_x = reparameterise(mu_sx, lv_sx, generator)
        mu_z, lv_z = self.posterior_z(s_x)
        z = reparameterise(mu_z, lv_z, generator)
        mu_p, lv_p = self.prior_sy(s_x, context_idx, target_idx, z)
        mu_q, lv_q = self.posterior_sy(x_num, x_cat, context_idx, target_idx)
        s_y = reparameterise(mu_q, lv_q, generator)
        feat_ctx = context_idx[:, 1:] - 1  # drop [REG] (position 0), token j+1 = feature j
        recon = self.decoder.log_prob(s_x[:, 1:], feat_ctx, x_num, x_cat).sum(1)
        feat_tgt = (target_idx - 1).reshape(b, m * lt)
        gen = self.decoder.log_prob(s_y.reshape(b, m * lt, -1), feat_tgt, x_num, x_cat).sum(1)
        kl_sy = gaussian_kl_diag(mu_q, lv_q, mu_p, lv_p).reshape(b, -1).sum(1)
        return {
            "recon": recon.mean(),
            "gen": gen.mean(),
            "kl_sx": gaussian_kl(mu_sx, lv_sx).sum(1).mean(),
            "kl_z": gaussian_kl(mu_z, lv_z).mean(),
            "kl_sy": kl_sy.mean(),
        }


def elbo_loss(terms: dict, v, beta: float, n_features: int) -> torch.Tensor:
    """Negative weighted ELBO per row and per feature:
    loss = [-(w_recon recon + w_gen gen) + beta (w_kl_sx kl_sx + w_kl_z kl_z + w_kl_sy kl_sy)] / D.
    With all weights 1 and beta = 1 this is -ELBO / D (dividing by D only rescales the step)."""
    nll = -(v.w_recon * terms["recon"] + v.w_gen * terms["gen"])
    kl = v.w_kl_sx * terms["kl_sx"] + v.w_kl_z * terms["kl_z"] + v.w_kl_sy * terms["kl_sy"]
    return (nll + beta * kl) / n_features
