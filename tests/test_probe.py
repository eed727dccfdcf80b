"""Frozen-encoder probes: linear heads on known structure, kNN by hand, the encoder path, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from sparsejepa.data import make_shapes
from sparsejepa.probe import (
    WEIGHT_DECAYS,
    extract_features,
    fit_softmax,
    knn_probe,
    linear_probe,
    run_probes,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These problems are tiny: one thread avoids thread-sync overhead on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FakeEncoder(torch.nn.Module):
    """4x4 patches -> linear embedding -> `depth` tanh layers, with the encoder's layer_outputs."""

    def __init__(self, dim: int = 8, depth: int = 5, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Linear(3 * 16, dim)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(dim, dim) for _ in range(depth))
        self.calls = 0

    def layer_outputs(self, images: torch.Tensor, n_last: int) -> list[torch.Tensor]:
        if not 1 <= n_last <= len(self.blocks):
            raise ValueError(f"n_last={n_last} must be in [1, {len(self.blocks)}]")
        self.calls += 1
        tokens = F.unfold(images, kernel_size=4, stride=4).transpose(1, 2)  # (B, T, 48)
        h, outputs = self.embed(tokens), []
        for block in self.blocks:
            h = torch.tanh(block(h))
            outputs.append(F.layer_norm(h, h.shape[-1:]))
        return outputs[-n_last:]


def linear_task(n: int, dim: int = 32, classes: int = 5, seed: int = 0):
    """Labels from a fixed linear rule, argmax(x W), on features of uneven scales."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.5, 2, dim)
    x = torch.randn(n, dim, generator=generator) * scales
    w = torch.randn(dim, classes, generator=generator) / scales[:, None]
    return x, (x @ w).argmax(1)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_linear_probe_learns_a_linear_rule(batchnorm):
    x, y = linear_task(3000)
    result = linear_probe(x[:2000], y[:2000], x[2000:], y[2000:], 5, batchnorm=batchnorm)
    assert result["top1"] > 88 and result["top5"] == 100.0
    assert result["weight_decay"] in WEIGHT_DECAYS
    assert result["C"] == pytest.approx(1 / (result["weight_decay"] * 2000))
    assert set(result["val_top1"]) <= {f"{wd:g}" for wd in WEIGHT_DECAYS}


def test_linear_probe_stays_at_chance_on_random_labels():
    x, _ = linear_task(3000)
    y = torch.randint(0, 5, (3000,), generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match="chose weight decay 0.1, an end of its grid"):
        result = linear_probe(x[:2000], y[:2000], x[2000:], y[2000:], 5)  # no signal: strongest
    assert result["top1"] < 20 + 5  # chance is 20 %, one standard error is about 1.3 %


def test_linear_probe_is_deterministic_by_seed():
    x, y = linear_task(600, seed=3)
    y = torch.where(torch.rand(600, generator=torch.Generator().manual_seed(0)) < 0.3, 0, y)
    args = (x[:400], y[:400], x[400:], y[400:], 5)
    a, b, c = (linear_probe(*args, seed=seed) for seed in (0, 0, 1))
    a.pop("train_s"), b.pop("train_s"), c.pop("train_s")
    assert a == b and a["val_top1"] != c["val_top1"]  # the seed draws the held-out split


def noisy_task(n: int = 1500, dim: int = 20, classes: int = 4, seed: int = 0):
    """Overlapping classes on correlated features: the L2 penalty decides the optimum."""
    generator = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=generator)
    x = torch.randn(n, dim, generator=generator) @ mix
    y = (x @ torch.randn(dim, classes, generator=generator) / dim**0.5
         + 2 * torch.randn(n, classes, generator=generator)).argmax(1)  # fmt: skip
    return x, y


@pytest.mark.parametrize("weight_decay", [1e-1, 1e-3])
def test_fit_softmax_reaches_scikit_learns_optimum(weight_decay):
    x, y = noisy_task()
    x = (x - x.mean(0)) / x.std(0)
    wb, _ = fit_softmax(x, y, 4, weight_decay, tol=1e-10)
    wb_default, _ = fit_softmax(x, y, 4, weight_decay)
    reference = LogisticRegression(C=1 / (weight_decay * len(x)), tol=1e-10, max_iter=10_000)
    reference.fit(x.double().numpy(), y.numpy())
    w_ref = torch.from_numpy(reference.coef_.T).float()
    b_ref = torch.from_numpy(reference.intercept_).float()

    def objective(w, b):
        return F.cross_entropy(x @ w + b, y) + 0.5 * weight_decay * w.pow(2).sum()

    # softmax is invariant to a shift shared by all classes: compare centred logits
    logits, logits_ref = x @ wb[:-1] + wb[-1], x @ w_ref + b_ref
    centred = lambda z: z - z.mean(1, keepdim=True)  # noqa: E731
    assert objective(wb[:-1], wb[-1]) <= objective(w_ref, b_ref) + 1e-6
    assert objective(wb_default[:-1], wb_default[-1]) <= objective(w_ref, b_ref) * (1 + 1e-4)
    # float32 solve: logits agree to ~1e-3 of their scale (~5)
    torch.testing.assert_close(centred(logits), centred(logits_ref), atol=5e-3, rtol=0)


def test_linear_probe_matches_scikit_learn_at_its_chosen_penalty():
    x, y = noisy_task(2500)
    result = linear_probe(x[:2000], y[:2000], x[2000:], y[2000:], 4, batchnorm=True)
    mean, std = x[:2000].mean(0), x[:2000].std(0)
    reference = LogisticRegression(C=result["C"], tol=1e-10, max_iter=10_000)
    reference.fit(((x[:2000] - mean) / std).numpy(), y[:2000].numpy())
    top1 = 100 * reference.score(((x[2000:] - mean) / std).numpy(), y[2000:].numpy())
    assert abs(result["top1"] - top1) <= 0.3


def test_linear_probe_warns_when_the_choice_is_at_the_grid_end():
    x, y = linear_task(1000)
    with pytest.warns(UserWarning, match="end of its grid"):
        linear_probe(x[:800], y[:800], x[800:], y[800:], 5, weight_decays=(10.0, 1.0))


def test_probe_input_errors():
    x, y = linear_task(100)
    with pytest.raises(ValueError, match="labels must lie in 0..4"):
        linear_probe(x, y + 1, x, y, 5)
    with pytest.raises(ValueError, match="NaN"):
        knn_probe(x, y, x * float("nan"), y, 5)
    with pytest.raises(ValueError, match="feature dims differ"):
        knn_probe(x, y, x[:, :3], y, 5)


def test_knn_weights_by_similarity_over_the_k_nearest():
    # two class-0 neighbours at cosine 0.6 and one class-1 neighbour at cosine 0.99
    train = torch.tensor([[0.6, 0.8], [0.6, -0.8], [0.99, (1 - 0.99**2) ** 0.5], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2])
    query, target = torch.tensor([[2.0, 0.0]]), torch.tensor([1])
    # T small: exp(0.99/T) beats 2 exp(0.6/T); T large: the two class-0 votes win
    assert knn_probe(train, labels, query, target, 3, k=3, temperature=0.07)["top1"] == 100.0
    assert knn_probe(train, labels, query, target, 3, k=3, temperature=10.0)["top1"] == 0.0
    # class 2 (cosine -1) is outside the k=3 nearest, so it gets no vote and ranks last
    assert knn_probe(train, labels, query, torch.tensor([2]), 3, k=3)["top5"] == 100.0  # 3 classes


def test_knn_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(4)
    train, test = torch.randn(300, 6, generator=generator), torch.randn(50, 6, generator=generator)
    y_train = torch.randint(0, 4, (300,), generator=generator)
    sims = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    expected = []
    for row in sims:
        top = row.topk(7)
        votes = torch.zeros(4).index_add_(0, y_train[top.indices], (top.values / 0.07).exp())
        expected.append(votes.argmax())
    y_test = torch.stack(expected)
    result = knn_probe(train, y_train, test, y_test, 4, k=7, chunk=16)
    assert result["top1"] == 100.0
    assert knn_probe(train, y_train, test, (y_test + 1) % 4, 4, k=7)["top1"] == 0.0


def test_extract_features_pools_layers_and_restores_mode():
    encoder = FakeEncoder(dim=8, depth=5).train()
    images = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    feats = extract_features(encoder, images, (0.5,) * 3, (0.25,) * 3, device="cpu", batch_size=4)
    assert feats["last"].shape == (10, 8) and feats["last4"].shape == (10, 32)
    assert feats["last"].dtype == np.float32 and encoder.training and encoder.calls == 3
    np.testing.assert_allclose(feats["last4"][:, -8:], feats["last"])
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)
        layers = encoder.layer_outputs(x, 4)
    np.testing.assert_allclose(feats["last4"][:, :8], layers[0].mean(1).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="uint8 images"):
        extract_features(encoder, images.astype(np.float32), (0.5,) * 3, (0.25,) * 3, device="cpu")
    shallow = FakeEncoder(dim=8, depth=2)  # fewer than 4 layers: "last4" holds the 2 there are
    feats = extract_features(shallow, images, (0.5,) * 3, (0.25,) * 3, device="cpu")
    assert feats["last4"].shape == (10, 16)


def test_run_probes_with_a_fake_encoder_and_the_feature_cache(tmp_path):
    dataset = make_shapes(n_train=300, n_test=100, seed=1)
    encoder = FakeEncoder(dim=8, depth=5)
    cache = tmp_path / "features" / "step100.npz"
    with torch.no_grad():  # as a caller holding the frozen encoder might
        result = run_probes(encoder, dataset, cache_path=cache)
    json.dumps(result)  # serialisable
    assert result["feature_dims"] == {"last": 8, "last4": 32} and not result["from_cache"]
    assert set(result["tasks"]) == {"shape", "count", "dist"}
    for task, classes in dataset.num_classes.items():
        res = result["tasks"][task]
        probes = ["last/linear", "last/bn_linear", "last4/linear", "last4/bn_linear"]
        assert all(0 <= res[p]["top1"] <= res[p]["top5"] <= 100 for p in probes)
        assert res["best"]["top1"] == max(res[p]["top1"] for p in probes)
        assert res["best_by_val"]["probe"] in probes and 0 <= res["knn"]["top1"] <= 100
        assert res["knn"]["k"] == 20 and classes >= 5
    calls = encoder.calls
    again = run_probes(encoder, dataset, tasks=["count"], cache_path=cache)
    assert again["from_cache"] and encoder.calls == calls
    for run in (again, result):  # same features and seed: same numbers, except the timings
        for values in run["tasks"]["count"].values():
            values.pop("train_s", None)
    assert again["tasks"]["count"] == result["tasks"]["count"]
    with torch.no_grad():
        encoder.embed.weight.add_(0.1)  # new weights: the cache no longer matches
    third = run_probes(encoder, dataset, tasks=["count"], cache_path=cache)
    assert not third["from_cache"] and encoder.calls > calls
    with pytest.raises(ValueError, match="unknown tasks"):
        run_probes(encoder, dataset, tasks=["fine"])
