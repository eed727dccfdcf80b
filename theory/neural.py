"""Classifier density-ratio estimator of multiinformation, for wide embeddings (d of 64 and more).

A classifier D is trained to tell joint samples x ~ P from product samples (each block's rows
permuted independently, x ~ prod_j P_j). At the optimum its logit is log dP/d(prod_j P_j), so
M = E_P[log D / (1 - D)], averaged over held-out joint samples. torch is imported here only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from theory.scores import normal_scores


def gaussian_log_ratio(Z: np.ndarray, blocks: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """(A, c) with x^T A x + c = log N(x; 0, R) - sum_g log N(x_g; 0, R_gg), R the correlation of
    Z's rows: A = (blockdiag_g(R_gg^-1) - R^-1) / 2, c = (sum_g log det R_gg - log det R) / 2."""
    R = np.corrcoef(Z, rowvar=False)
    inv_blocks = np.zeros_like(R)
    logdet_blocks = 0.0
    for b in blocks:
        inv_blocks[np.ix_(b, b)] = np.linalg.inv(R[np.ix_(b, b)])
        logdet_blocks += np.linalg.slogdet(R[np.ix_(b, b)])[1]
    return (inv_blocks - np.linalg.inv(R)) / 2, (logdet_blocks - np.linalg.slogdet(R)[1]) / 2


class RatioNet(nn.Module):
    """logit(x) = x^T A x + c + MLP(x) + sum_r w_r (u_r . x)^2 + sum_i v_i x_i^2.

    x^T A x + c (fixed) is the exact log-density ratio of the Gaussian fitted to the training rows
    (the Gaussian-copula model, as inputs are normal scores); the trained low-rank-plus-diagonal
    quadratic and the MLP, both starting at 0, learn what the Gaussian model misses.
    """

    def __init__(
        self, d: int, baseline: tuple[np.ndarray, float] | None, hidden: int = 256, rank: int = 64
    ):
        super().__init__()
        A, c = baseline if baseline is not None else (np.zeros((d, d)), 0.0)
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float32))
        self.register_buffer("c", torch.tensor(float(c)))
        self.mlp = nn.Sequential(
            nn.Linear(d, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.project = nn.Linear(d, min(rank, d), bias=False)
        self.weight = nn.Parameter(torch.zeros(min(rank, d)))
        self.diagonal = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quadratic = ((x @ self.A) * x).sum(-1) + self.c + (x**2) @ self.diagonal
        return quadratic + (self.project(x) ** 2) @ self.weight + self.mlp(x).squeeze(-1)


def _product_sample(
    x: torch.Tensor, column_block: torch.Tensor, n_blocks: int, gen: torch.Generator
) -> torch.Tensor:
    """Rows of each block permuted independently: a sample of prod_j P_j (one gather)."""
    perms = torch.rand(len(x), n_blocks, generator=gen).argsort(dim=0)
    return x.gather(0, perms[:, column_block])


def neural(
    X: np.ndarray,
    blocks: list[np.ndarray],
    rng: np.random.Generator,
    epochs: int = 60,
    batch: int | None = None,
    lr: float = 3e-3,
    held_out: float = 0.25,
    patience: int = 6,
) -> float:
    """M in nats: held-out mean logit of a classifier trained with binary cross-entropy on joint vs
    freshly permuted product samples (new permutations every epoch), with early stopping on the
    held-out loss (the untrained Gaussian baseline included). Inputs are mapped to normal scores
    first (M is invariant to that). The Gaussian baseline is used when the training rows number at
    least 2d and their correlation matrix is not singular (else it is too noisy to invert).
    batch: default about 16 steps per epoch, clipped to [256, 1024]."""
    n, d = X.shape
    if n < 100:
        raise ValueError(f"neural needs at least 100 samples, got N = {n}; use method='ksg'")
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    Z = torch.from_numpy(normal_scores(X)).float()
    Z = Z[torch.randperm(n, generator=gen)]
    n_test = max(int(held_out * n), 50)
    train, test = Z[n_test:], Z[:n_test]
    column_block = torch.empty(d, dtype=torch.long)
    for j, b in enumerate(blocks):
        column_block[torch.from_numpy(b)] = j
    test_product = _product_sample(test, column_block, len(blocks), gen)
    batch = min(batch or int(np.clip(len(train) // 16, 256, 1024)), len(train))
    rows = train.double().numpy()
    usable = len(rows) >= 2 * d and np.linalg.eigvalsh(np.corrcoef(rows, rowvar=False))[0] > 1e-8
    baseline = gaussian_log_ratio(rows, blocks) if usable else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**63)))
        model = RatioNet(d, baseline)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = nn.BCEWithLogitsLoss()
    labels = torch.cat([torch.ones(batch), torch.zeros(batch)])
    test_labels = torch.cat([torch.ones(len(test)), torch.zeros(len(test))])

    def test_loss() -> float:
        model.eval()
        with torch.no_grad():
            return loss_fn(model(torch.cat([test, test_product])), test_labels).item()

    best_loss, bad_epochs = test_loss(), 0
    best_state = {key: v.clone() for key, v in model.state_dict().items()}
    for _ in range(epochs):
        model.train()
        product = _product_sample(train, column_block, len(blocks), gen)
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(train) - batch + 1, batch):
            idx = order[i : i + batch]
            loss = loss_fn(model(torch.cat([train[idx], product[idx]])), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        loss = test_loss()
        if loss < best_loss - 1e-4:
            best_loss, bad_epochs = loss, 0
            best_state = {key: v.clone() for key, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        return float(model(test).mean())
