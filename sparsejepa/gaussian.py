"""Diagonal-Gaussian pieces shared by the sparsity head, Var-JEPA (images) and Var-T-JEPA (tables):
closed-form KLs, log-likelihoods, reparameterisation, and the log-variance clamp.
"""

import math

import torch

LOGVAR_RANGE = (-12.0, 8.0)  # log-variance clamp of every posterior and prior head


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 0.5 * sum_k (mu^2 + exp(logvar) - 1 - logvar)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_kl_diag(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, diag e^lv_q) || N(mu_p, diag e^lv_p)), summed over the last axis:
    0.5 * sum_k [ lv_p - lv_q + (e^lv_q + (mu_q - mu_p)^2) / e^lv_p - 1 ]."""
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).square()) * (-logvar_p).exp() - 1.0
    ).sum(-1)


def gaussian_log_prob(x, mu, logvar) -> torch.Tensor:
    """Elementwise log N(x; mu, e^lv) = -0.5 * [ (x - mu)^2 e^-lv + lv + log 2 pi ]."""
    return -0.5 * ((x - mu).square() * (-logvar).exp() + logvar + math.log(2 * math.pi))


def reparameterise(mu, logvar, generator: torch.Generator) -> torch.Tensor:
    """s = mu + exp(lv / 2) * eps, eps ~ N(0, I) drawn from `generator` (for exact resume)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps
