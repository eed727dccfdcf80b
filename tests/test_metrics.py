"""RankMe and the effective rank on matrices with a known spectrum."""

from __future__ import annotations

import pytest
import torch

from sparsejepa.metrics import effective_rank, rankme


def with_spectrum(singular_values: list[float], n: int = 200, d: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(n, d, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    s = torch.zeros(d, dtype=torch.float64)
    s[: len(singular_values)] = torch.tensor(singular_values, dtype=torch.float64)
    return (u * s) @ v.T


@pytest.mark.parametrize("k", [1, 5, 32])
def test_rankme_counts_equal_singular_values(k):
    assert abs(rankme(with_spectrum([3.0] * k)) - k) < 1e-3


def test_rankme_is_scale_invariant_and_between_one_and_min_dim():
    x = with_spectrum([10.0, 5.0, 1.0, 0.5, 0.1])
    value = rankme(x)
    assert 1 < value < 5
    assert abs(rankme(1000 * x.float()) - value) < 1e-4
    gaussian = torch.randn(1000, 64, generator=torch.Generator().manual_seed(1))
    assert 55 < rankme(gaussian) <= 64


def test_rankme_drops_when_a_direction_dominates():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(2))
    collapsed = x + 100 * torch.ones(16)  # all rows near one vector: one huge singular value
    assert rankme(collapsed) < 0.2 * rankme(x)


def test_effective_rank_edge_cases_and_errors():
    assert effective_rank(torch.zeros(4)) == 0.0
    assert abs(effective_rank(torch.tensor([1.0, 1.0])) - 2) < 1e-5
    with pytest.raises(ValueError, match="non-negative"):
        effective_rank(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        rankme(torch.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        rankme(torch.tensor([[1.0, float("nan")]]))
