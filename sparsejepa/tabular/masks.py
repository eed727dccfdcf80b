"""Feature masks for tabular JEPA: one context set and M target sets that never overlap it."""

from dataclasses import dataclass

import torch


@dataclass
class FeatureMasks:
    context: torch.Tensor  # (B, 1 + Kc) token positions: [REG] (0) first, then Kc features
    targets: torch.Tensor  # (B, M, Kt) token positions of features, disjoint from the context


def sample_feature_masks(
    batch: int,
    n_features: int,
    generator: torch.Generator,
    num_targets: int = 4,
    context_share: tuple[float, float] = (0.4, 0.7),
    target_share: tuple[float, float] = (0.15, 0.3),
) -> FeatureMasks:
    """Per batch, draw the sizes Kc = round(u n), Kt = round(v n) (u, v uniform in the shares,
    clipped so 1 <= Kc and 1 <= Kt <= n - Kc); per row, a random permutation gives the context
    (its first Kc features) and each target set is a random Kt-subset of the remaining features.
    Target sets may overlap each other, never the context. Needs n_features >= 2."""
    if n_features < 2:
        raise ValueError(f"feature masks need at least 2 features, got {n_features}")
    u, v = torch.rand(2, generator=generator).tolist()
    kc = round((context_share[0] + u * (context_share[1] - context_share[0])) * n_features)
    kc = min(max(kc, 1), n_features - 1)
    kt = round((target_share[0] + v * (target_share[1] - target_share[0])) * n_features)
    kt = min(max(kt, 1), n_features - kc)
    perm = torch.rand(batch, n_features, generator=generator).argsort(1) + 1  # token positions
    context = torch.cat([torch.zeros(batch, 1, dtype=torch.long), perm[:, :kc].sort(1).values], 1)
    rest = perm[:, kc:]
    pick = torch.rand(batch, num_targets, n_features - kc, generator=generator).argsort(2)[..., :kt]
    targets = torch.gather(rest[:, None].expand(-1, num_targets, -1), 2, pick).sort(2).values
    return FeatureMasks(context, targets)
