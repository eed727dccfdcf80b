"""Representation metrics that need no labels: RankMe and the effective rank of a spectrum."""

from __future__ import annotations

import torch


def effective_rank(spectrum: torch.Tensor, eps: float = 1e-7) -> float:
    """exp(H(p)) with p_k = s_k / sum(s) + eps: the entropy-based effective rank of s >= 0.

    Equals k for k equal nonzero values and 1 for a single one (up to eps).
    """
    if spectrum.ndim != 1 or spectrum.numel() == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D tensor, got {tuple(spectrum.shape)}")
    s = spectrum.double()
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("spectrum must be finite and non-negative")
    total = s.sum()
    if total <= 0:
        return 0.0  # the zero matrix has no directions at all
    p = s / total + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def rankme(features: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023): effective rank of the singular values of an (N, D) embedding.

    It depends on N (at most min(N, D)); compare values at a fixed N.
    """
    if features.ndim != 2:
        raise ValueError(f"rankme expects features of shape (N, D), got {tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise ValueError("rankme: features contain NaN or Inf")
    singular_values = torch.linalg.svdvals(features.detach().double().cpu())
    return effective_rank(singular_values, eps)
