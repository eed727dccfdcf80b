"""Var-JEPA for images (REFERENCE section 7, Goegl & Yau 2026): the variational student, its ELBO.

Generative model of an image's context patches x and one target block y (of the M blocks):
    p(s_x) p(z) p(x | s_x) p(s_y | s_x, z) p(y | s_y),       p(s_x) = p(z) = N(0, I),
with one latent token s_i in R^k per patch. All distributions are diagonal Gaussians:
    q(s_x | x)          (mu, lv) = A h_i + a,   h = encoder(context patches)       per context token
    q(z | s_x)          (mu, lv) = MLP(mean_i s_x,i)                               global, R^z_dim
    p(s_y | s_x, z)     (mu, lv) = Predictor(tokens [s_x,i ; B z]) at the target positions
    q(s_y | s_x, z, y)  (mu, lv) = A h'_j + a,  h' = the SAME encoder on the full image, read at
                        the target positions j (gradients flow; no EMA, no stop-gradient)
    p(x_i | s_i)        N(dec(s_i), e^lv_dec) over the 3 p^2 normalised pixels of patch i
The ELBO of (x, y_m) with one reparameterised sample of s_x, z and s_y, averaged over the M blocks:
    ELBO = E log p(x|s_x) + mean_m E log p(y_m|s_y) - KL(q(s_x)||N(0,I)) - KL(q(z)||N(0,I))
           - mean_m KL(q(s_y_m) || p(s_y_m|s_x,z))            (nats per image, KLs closed form)
and the training loss is the weighted, annealed negative ELBO per pixel value:
    loss = -[w_rx recon_x + w_ry recon_y - beta (w_sx kl_sx + w_z kl_z + w_sy kl_sy)] / (3 H W).
The deterministic limit (point-mass q, fixed prior variance, w_rx = w_ry = w_sx = w_z = 0) leaves
0.5 e^-lv_p mean_m ||mu_q - mu_p||^2 / (3 H W) + const: the JEPA squared error, with the target
encoder being the student's own encoder.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .gaussian import LOGVAR_RANGE, gaussian_kl, gaussian_kl_diag, gaussian_log_prob, reparameterise
from .vit import Encoder, Predictor, gather_tokens, init_weights


def kl_weight(step: int, anneal_steps: float) -> float:
    """Linear KL annealing: beta = min(1, step / anneal_steps); 1 when anneal_steps = 0."""
    return min(1.0, step / anneal_steps) if anneal_steps > 0 else 1.0


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, N, 3 p^2), patches in the encoder's token order (row-major)."""
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def _gaussian(out: torch.Tensor, fixed_logvar: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split (..., 2k) into (mu, logvar) in float32; logvar clamped, or the fixed value."""
    mu, logvar = out.float().chunk(2, dim=-1)
    if fixed_logvar is not None:
        return mu, torch.full_like(logvar, fixed_logvar)
    return mu, logvar.clamp(*LOGVAR_RANGE)


def _masked_sum(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """(B, L) -> (B,): sum over the real (valid) tokens."""
    return x.sum(1) if valid is None else (x * valid).sum(1)


class VarJEPA(nn.Module):
    """Var-JEPA student: encoder, posterior head, q(z) head, conditional-prior predictor, pixel
    decoder; everything receives gradients from the one ELBO (see the module docstring)."""

    head = None  # no group-sparse head (train.py and checkpoint.py read `student.head`)

    def __init__(self, cfg: Config):
        super().__init__()
        m, v = cfg.model, cfg.var
        k = v.latent_dim or m.width
        self.encoder = Encoder.from_config(m)
        self.posterior_head = nn.Linear(m.width, 2 * k)
        self.z_head = nn.Sequential(
            nn.Linear(k, m.width), nn.GELU(), nn.Linear(m.width, 2 * v.z_dim)
        )
        self.z_embed = nn.Linear(v.z_dim, k)
        self.predictor = Predictor.from_config(m, self.encoder.grid, 2 * k)
        pixels = 3 * m.patch**2
        self.decoder = nn.Sequential(
            nn.Linear(k, m.width),
            nn.GELU(),
            nn.Linear(m.width, pixels if v.decoder_logvar is not None else 2 * pixels),
        )
        init_weights(nn.ModuleList([self.posterior_head, self.z_head, self.z_embed, self.decoder]))
        self.var = v

    def posterior(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder tokens (..., width) -> (mu, logvar) of q(s|.) (..., k). Linear, so the mean
        over tokens of mu is the posterior mean of the token-mean features."""
        return _gaussian(self.posterior_head(tokens), self.var.posterior_logvar)

    def posterior_z(self, s_x: torch.Tensor, valid: torch.Tensor | None):
        """q(z | s_x) from the mean of the real context latents s_x (B, Lc, k) -> (B, z_dim) x2."""
        w = torch.ones_like(s_x[..., 0]) if valid is None else valid.to(s_x)
        pooled = (s_x * w[..., None]).sum(1) / w.sum(1, keepdim=True)
        return _gaussian(self.z_head(pooled), self.var.posterior_logvar)

    def prior(self, s_x, z, context_idx, target_idx, valid=None):
        """p(s_y | s_x, z): the Predictor on tokens [s_x,i ; B z] -> (mu, logvar) (B*M, Lt, k)."""
        cond = self.z_embed(z)[:, None].expand(-1, s_x.shape[1], -1)
        out = self.predictor(torch.cat([s_x, cond], dim=-1), context_idx, target_idx, valid)
        return _gaussian(out, self.var.prior_logvar)

    def log_likelihood(self, s: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """log p(patch | s) summed over its pixels: s (..., k), pixels (..., 3 p^2) -> (...)."""
        out = self.decoder(s).float()
        fixed = self.var.decoder_logvar
        if fixed is None:
            mu, logvar = _gaussian(out, None)
        else:
            mu, logvar = out, torch.full_like(out, fixed)
        return gaussian_log_prob(pixels.float(), mu, logvar).sum(-1)

    def forward(
        self,
        images: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        context_valid: torch.Tensor | None,
        generator: torch.Generator,
        kl_weight: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """ELBO terms (nats per image, means over the batch), `elbo` (unweighted, beta = 1),
        `sigma_sy` (mean posterior std of the target latents) and the weighted `loss`; the
        reparameterisation noise is drawn from `generator`."""
        b, m, lt = target_idx.shape
        v = self.var
        mu_sx, lv_sx = self.posterior(self.encoder(images, context_idx, context_valid))
        s_x = reparameterise(mu_sx, lv_sx, generator)
        mu_z, lv_z = self.posterior_z(s_x, context_valid)
        z = reparameterise(mu_z, lv_z, generator)
        mu_p, lv_p = self.prior(s_x, z, context_idx, target_idx, context_valid)
        flat_idx = target_idx.reshape(b, m * lt)
        h_full = gather_tokens(self.encoder(images), flat_idx).reshape(b * m, lt, -1)
        mu_q, lv_q = self.posterior(h_full)
        s_y = reparameterise(mu_q, lv_q, generator)

        patches = patchify(images, self.encoder.patch_size)
        ctx_pixels = gather_tokens(patches, context_idx)
        tgt_pixels = gather_tokens(patches, flat_idx).reshape(b * m, lt, -1)
        terms = {
            "recon_x": _masked_sum(self.log_likelihood(s_x, ctx_pixels), context_valid).mean(),
            "recon_y": self.log_likelihood(s_y, tgt_pixels).sum(1).mean(),
            "kl_sx": _masked_sum(gaussian_kl(mu_sx, lv_sx), context_valid).mean(),
            "kl_z": gaussian_kl(mu_z, lv_z).mean(),
            "kl_sy": gaussian_kl_diag(mu_q, lv_q, mu_p, lv_p).sum(1).mean(),
        }
        nll = -(v.w_recon_x * terms["recon_x"] + v.w_recon_y * terms["recon_y"])
        kl = v.w_kl_sx * terms["kl_sx"] + v.w_kl_z * terms["kl_z"] + v.w_kl_sy * terms["kl_sy"]
        terms["loss"] = (nll + kl_weight * kl) / images[0].numel()
        terms["elbo"] = (
            terms["recon_x"] + terms["recon_y"] - terms["kl_sx"] - terms["kl_z"] - terms["kl_sy"]
        ).detach()
        terms["sigma_sy"] = (0.5 * lv_q).exp().mean().detach()
        return terms
