"""The JEPA student: context encoder + predictor (+ the sparsity head), everything that receives
gradients, and its loss on one batch."""

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .sparsity import GroupSparseHead
from .vit import Encoder, Predictor


class Student(nn.Module):
    """Context encoder + predictor (+ sparsity head): everything that receives gradients."""

    def __init__(self, cfg: Config):
        super().__init__()
        m, s = cfg.model, cfg.sparsity
        self.encoder = Encoder.from_config(m)
        self.predictor = Predictor.from_config(m, self.encoder.grid, m.width)
        self.head = (
            GroupSparseHead(
                m.width,
                s.latent_dim,
                s.groups,
                s.group_latent,
                s.hidden,
                s.w_init_std,
                s.standardize_target,
                s.zero_init_generator,
            )
            if s.enabled
            else None
        )
        self.loss_kind, self.sparsity = cfg.optim.loss, s

    def forward(
        self,
        images,
        context_idx,
        target_idx,
        targets,
        noise,
        context_valid=None,
        context_targets=None,
        head_grad: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """JEPA loss, predicted vs layer-normed target tokens (+ alpha recon + beta KL + prior).
        context_targets (B, Lc, D): the EMA encoder's tokens at the context positions, what the
        head reconstructs when sparsity.recon_target="ema" (else it reconstructs h itself).
        head_grad: the scale of the head's gradient into the encoder at this step (default
        sparsity.encoder_grad)."""
        cond = None  # EC-IJEPA: the context encoder sees where the targets are, not what
        if self.encoder.cond_token is not None:
            cond = self.encoder.window_positions(target_idx)
        h = self.encoder(images, context_idx, context_valid, cond)
        pred = self.predictor(h, context_idx, target_idx, context_valid).float()
        if self.loss_kind == "l2":
            jepa = (pred - targets).square().mean()
        else:
            jepa = F.smooth_l1_loss(pred, targets)
        out = {"jepa": jepa, "loss": jepa}
        if self.head is not None:
            s = self.sparsity
            rows = None  # the real tokens' rows of (B * L, D) in order, without a host sync
            if context_valid is not None and not s.pool:
                rows = (~context_valid.flatten()).byte().argsort(stable=True)[: len(noise)]
            tokens = _head_samples(h, context_valid, rows, s.pool)
            recon_target = None
            if context_targets is not None:
                recon_target = _head_samples(context_targets, context_valid, rows, s.pool)
            # Same values as h; the gradient reaching the encoder is scaled by head_grad.
            head_grad = s.encoder_grad if head_grad is None else head_grad
            tokens = tokens.detach() + head_grad * (tokens - tokens.detach())
            terms = self.head(tokens, noise, recon_target)
            out.update(terms)
            out["loss"] = (
                jepa
                + s.alpha * terms["recon"]
                + s.beta * terms["kl"]
                + s.gen_prior * terms["gen_prior"]
            )
        return out


def _head_samples(
    x: torch.Tensor, valid: torch.Tensor | None, rows: torch.Tensor | None, pool: bool
) -> torch.Tensor:
    """The head's samples from context tokens x (B, L, D): every real token (n, D; `rows` are
    their positions in the flattened (B * L) tokens when some are padding), or the mean of each
    image's real tokens (B, D)."""
    if not pool:
        flat = x.reshape(-1, x.shape[-1])
        return flat if rows is None else flat[rows]
    w = torch.ones_like(x[..., 0]) if valid is None else valid.to(x)
    return (x * w[..., None]).sum(1) / w.sum(1, keepdim=True)
