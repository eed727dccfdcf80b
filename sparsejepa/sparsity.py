"""oi-VAE group-sparse head on the context encoder's output tokens (REFERENCE section 4).

Each token h in R^D is one sample. q(z|h) = N(mu(h), diag sigma^2(h)), z in R^K. The D channels
form G contiguous groups of D/G; group g is generated as f_g(W^(g) z), W^(g) in R^{p x K}.
Loss terms:
    recon = mean_tokens ||standardize(layer_norm(h)) - f(z)||^2 / D   (standardize optional)
    kl    = mean_tokens KL(q(z|h) || N(0, I)) / D
    prior = 0.5 * ||theta_f||^2                 (N(0,1) prior on the generator weights)
With recon_target="ema" (train.py) the head reconstructs the EMA encoder's tokens at the same
positions instead of h, a target the encoder cannot make easier by collapsing h.
standardize() centres and scales each channel over the tokens of the batch (statistics kept in
the graph). Layer norm alone removes the scale of a token but not collapse across tokens: with
gradients flowing into the encoder, a constant h would make recon and KL trivially zero. After
standardisation every channel has unit variance, so the head can only lower its loss through the
structure (grouping) of h, not by the encoder discarding information. The `fixed` head
(`standardize_target=False`) reconstructs layer_norm(h) as REFERENCE describes, leaving the
scaled head gradient and the zero-initialised generators to hold off that collapse; it still
lowers the features' rank (docs/results.md, "SparseJEPA: what the head does"), unless the target
is the EMA encoder's tokens (`recon_target="ema"`, the presets' head), which keeps JEPA's rank.
The group lasso lambda * sum_{g,j} ||w_j^(g)||_2 on the columns of W is applied by
`prox_group_lasso` (threshold w_lr * lam) after each plain-SGD step on W (`w_learning_rate`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .gaussian import LOGVAR_RANGE, gaussian_kl
from .schedules import linear_ramp


def standardize_tokens(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(x - mean_n x) / sqrt(var_n x + eps) per channel over the n tokens of x (n, D)."""
    var, mean = torch.var_mean(x, dim=0, correction=0)
    return (x - mean) * torch.rsqrt(var + eps)


def w_learning_rate(s, dim: int) -> float:
    """W's plain-SGD rate. s.lam_per="element": s.w_lr on the per-element mean reconstruction, so
    the threshold w_lr * lam is D times oi-VAE's relative to the data step; "token": the step of a
    token's summed reconstruction as in oi-VAE (D x the mean's gradient), threshold unchanged.
    s: the run's SparsityConfig."""
    return s.w_lr * (dim if s.lam_per == "token" else 1)


def head_encoder_grad(s, step: int, total: int) -> float:
    """The scale of the head's gradient into the encoder at `step`: s.encoder_grad, ramped in
    linearly over the fractions s.encoder_grad_ramp of training."""
    return s.encoder_grad * linear_ramp(step, total, *s.encoder_grad_ramp)


@torch.no_grad()
def prox_group_lasso(w: torch.Tensor, t: float) -> None:
    """In place block soft-threshold of the columns w_j^(g) = w[g, :, j]:
    w <- w / ||w|| * max(||w|| - t, 0)."""
    if t < 0:
        raise ValueError(f"threshold t={t} must be >= 0")
    norms = w.norm(dim=1, keepdim=True)
    w.mul_(torch.clamp(norms - t, min=0.0) / norms.clamp_min(1e-12))


class GroupSparseHead(nn.Module):
    """q(z|h) encoder and generators f_g(W^(g) z), all groups at once with einsum / bmm."""

    def __init__(
        self,
        dim: int,
        latent_dim: int = 8,
        groups: int = 8,
        group_latent: int = 4,
        hidden: int = 64,
        w_init_std: float = 1.0,
        standardize_target: bool = True,
        zero_init_generator: bool = False,
    ):
        super().__init__()
        if dim % groups:
            raise ValueError(f"width {dim} not divisible into {groups} channel groups")
        self.groups, self.group_dim = groups, dim // groups
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 2 * latent_dim))
        self.W = nn.Parameter(torch.randn(groups, group_latent, latent_dim) * w_init_std)
        self.gen_w1 = nn.Parameter(torch.randn(groups, group_latent, hidden) / group_latent**0.5)
        self.gen_b1 = nn.Parameter(torch.zeros(groups, 1, hidden))
        self.gen_w2 = nn.Parameter(torch.randn(groups, hidden, self.group_dim) / hidden**0.5)
        self.gen_b2 = nn.Parameter(torch.zeros(groups, 1, self.group_dim))
        if zero_init_generator:
            nn.init.zeros_(self.gen_w2)
        self.standardize_target = standardize_target

    def generator_weights(self) -> list[nn.Parameter]:
        return [self.gen_w1, self.gen_w2]

    def column_norms(self) -> torch.Tensor:
        """(G, K) matrix of ||w_j^(g)||_2: which latent j reaches group g."""
        return self.W.detach().float().norm(dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (n, K) -> (n, D): group g's channels = f_g(W^(g) z)."""
        a = torch.einsum("nk,gpk->gnp", z, self.W.to(z.dtype))
        hid = F.gelu(torch.baddbmm(self.gen_b1.to(a.dtype), a, self.gen_w1.to(a.dtype)))
        out = torch.baddbmm(self.gen_b2.to(a.dtype), hid, self.gen_w2.to(a.dtype))  # (G, n, D/G)
        return out.transpose(0, 1).reshape(z.shape[0], -1)

    def forward(
        self, h: torch.Tensor, noise: torch.Tensor, target: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """h (..., D) samples, noise (n, K) standard normal -> recon, kl, prior losses (scalars).
        target (..., D): what to reconstruct (default h itself), layer-normed (and standardised)."""
        h = h.reshape(-1, h.shape[-1])
        mu, logvar = self.encoder(h).float().chunk(2, dim=-1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        z = mu + torch.exp(0.5 * logvar) * noise
        target = h if target is None else target.reshape(-1, target.shape[-1])
        target = F.layer_norm(target.float(), target.shape[-1:])
        if self.standardize_target:
            target = standardize_tokens(target)
        recon = (self.decode(z.to(h.dtype)).float() - target).square().mean()
        kl = gaussian_kl(mu, logvar).mean() / h.shape[-1]
        prior = 0.5 * sum(w.float().square().sum() for w in self.generator_weights())
        return {"recon": recon, "kl": kl, "gen_prior": prior}
