"""Tabular embeddings evaluated: downstream heads, selective prediction, uncertainty vs ambiguity.

- Downstream: logistic regression, an MLP and HistGradientBoosting (scikit-learn) fitted on the
  train split of raw features, T-JEPA embeddings or Var-T-JEPA embeddings; test accuracy.
- Latent uncertainty of a row (Var-T-JEPA), aggregates of Gaussian standard deviations:
  "target_posterior": mean over features and latent dims of the std of q(s_y | whole row);
  "predictor": the same for the predictor p(s_y|s_x,z), the context encoder run on the context
  only, averaged over `mask_draws` random masks;
  "target_posterior_x", "predictor_x": the same distributions pushed through the numeric
  decoders' mean, std_j = sqrt(sum_k a_jk^2 sigma_k^2), averaged over the numeric features (latent
  dims the decoder ignores carry no weight; the plain mean gives them as much as the used ones);
  "predictor_loo": the decoded predictor std of each numeric feature predicted from all the
  others (leave one out; a larger context than the training masks give), averaged over them;
  "z": mean std of q(z|s_x).
  "predictive" (the headline): the model's own predictive std of each numeric feature given all
  the others, p(x_j | x_-j) = E_{q(s_x|x_-j) q(z|s_x)} int p(x_j|s_y) p(s_y|s_x,z) ds_y,
  by the law of total variance over `predictive_samples` draws of (s_x, z): decoder variance +
  mean decoded predictor variance + variance of the decoded predictor mean; averaged over the
  numeric features. It reads only the generative path (encoder on x_-j, predictor, decoder), never
  the target value, unlike q(s_y | whole row), whose std is a coding precision (audit, finding 6).
  Its mean gives the predictor's leave-one-out R^2 ("predictor_r2"), a check of whether the
  predictor has learned the conditional at all.
- Selective prediction: accuracy on the test rows left after dropping the fraction q with the
  highest uncertainty, for each q in `drop_fractions`; the head's own confidence (1 - max
  probability) is reported beside it as a reference.
- On the simulated mixture: Spearman correlation of each uncertainty with the exact entropy of
  p(component | row), beside that of the exact predictive std of held-out features ("oracle",
  `data.make_mixture`): what a perfect predictive-variance estimate would reach.
"""

import math
import warnings

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..gaussian import LOGVAR_RANGE, reparameterise
from ..runtime import seeded_generator
from .config import EvalConfig
from .data import Table
from .masks import sample_feature_masks
from .models import pool
from .train import TabState, encoder_of

UNCERTAINTY_KINDS = (
    "target_posterior",
    "target_posterior_x",
    "predictor",
    "predictor_x",
    "predictor_loo",
    "z",
    "predictive",
)


def _tensors(table: Table, split: str, device):
    return (
        torch.as_tensor(getattr(table, f"x_num_{split}"), device=device),
        torch.as_tensor(getattr(table, f"x_cat_{split}"), device=device),
    )


@torch.no_grad()
def embeddings(
    state: TabState,
    table: Table,
    split: str,
    how: str = "mean",
    var_embedding: str = "posterior_mean",
) -> np.ndarray:
    """(N, d) pooled tokens of the whole row: T-JEPA's EMA target backbone output; Var-T-JEPA's
    posterior means of s_x ("posterior_mean") or its backbone output ("backbone")."""
    x_num, x_cat = _tensors(table, split, state.device)
    if state.target is None and var_embedding == "posterior_mean":
        tokens = state.model.posterior_sx(x_num, x_cat)[0]
    else:
        tokens = encoder_of(state)(x_num, x_cat)
    return pool(tokens, how).cpu().numpy()


def _decoded_std(feature: torch.Tensor, logvar: torch.Tensor, model) -> tuple:
    """Std of the numeric decoder mean a_j . s under s ~ N(., diag e^lv): sqrt(sum_k a_jk^2 e^lv_k)
    per token of feature `feature` (n, L); -> (sum over numeric tokens (n,), their count (n,))."""
    dec = model.decoder
    if not dec.n_num:
        zeros = torch.zeros(len(feature), device=feature.device)
        return zeros, zeros
    a2 = dec.num_w[feature.clamp(max=dec.n_num - 1), :, 0].square()  # (n, L, k)
    std = (a2 * logvar.exp()).sum(-1).sqrt()
    numeric = (feature < dec.n_num).float()
    return (std * numeric).sum(1), numeric.sum(1)


@torch.no_grad()
def uncertainties(
    state: TabState, table: Table, split: str, draws: int = 8, seed: int = 0, samples: int = 16
) -> dict[str, np.ndarray]:
    """Per-row latent uncertainties of Var-T-JEPA, keyed by UNCERTAINTY_KINDS (see module doc),
    and "predictor_r2" (one value, `predictive`)."""
    model, cfg = state.model, state.cfg
    x_num, x_cat = _tensors(table, split, state.device)
    n, d = len(x_num), model.backbone.n_tokens - 1
    h = model.backbone(x_num, x_cat)
    mu_sx = model.gaussian(model.sx_head(h), model.var.posterior_logvar)[0]
    lv_sy = model.gaussian(model.sy_head(h), model.var.posterior_logvar)[1][:, 1:]
    lv_z = model.posterior_z(mu_sx)[1]
    features = torch.arange(d, device=state.device).expand(n, -1)
    dec_sum, dec_count = _decoded_std(features, lv_sy, model)
    out = {
        "target_posterior": (0.5 * lv_sy).exp().reshape(n, -1).mean(1),
        "target_posterior_x": dec_sum / dec_count.clamp(min=1),
        "z": (0.5 * lv_z).exp().mean(1),
    }
    plain, dec_sum, dec_count = torch.zeros(3, n, device=state.device)
    for r in range(draws):
        masks = sample_feature_masks(
            n,
            d,
            seeded_generator(torch.device("cpu"), seed, r, 7),
            cfg.mask.num_targets,
            cfg.mask.context_share,
            cfg.mask.target_share,
        )
        ctx, tgt = masks.context.to(state.device), masks.targets.to(state.device)
        s_x = model.posterior_sx(x_num, x_cat, ctx)[0]  # the context encoder sees the context
        lv_p = model.prior_sy(s_x, ctx, tgt, model.posterior_z(s_x)[0])[1]
        lv_p = lv_p.reshape(n, -1, lv_sy.shape[-1])  # (n, M * Kt, k), row-major like tgt
        plain += (0.5 * lv_p).exp().reshape(n, -1).mean(1) / draws
        total, count = _decoded_std((tgt - 1).reshape(n, -1), lv_p, model)
        dec_sum, dec_count = dec_sum + total, dec_count + count
    out["predictor"] = plain
    out["predictor_x"] = dec_sum / dec_count.clamp(min=1)
    loo = torch.zeros(n, device=state.device)
    for j in range(model.decoder.n_num):  # feature j the target, all the others the context
        ctx = torch.tensor([0] + [i + 1 for i in range(d) if i != j], device=state.device)
        ctx, tgt = ctx.expand(n, -1), torch.full((n, 1, 1), j + 1, device=state.device)
        s_x = model.posterior_sx(x_num, x_cat, ctx)[0]
        lv_p = model.prior_sy(s_x, ctx, tgt, model.posterior_z(s_x)[0])[1]
        loo += _decoded_std(tgt[:, 0] - 1, lv_p, model)[0] / model.decoder.n_num
    out["predictor_loo"] = loo
    out["predictive"], out["predictor_r2"] = predictive(state, table, split, samples, seed)
    return {k: out[k].cpu().numpy() for k in (*UNCERTAINTY_KINDS, "predictor_r2")}


@torch.no_grad()
def predictive(state: TabState, table: Table, split: str, samples: int = 16, seed: int = 0):
    """(n,) predictive std of the numeric features, each given all the others, averaged over
    them, and (1,) the leave-one-out R^2 of the predictive mean, averaged over the features that
    vary on the split (see the module doc; 0 = the predictor outputs the marginal; a constant
    feature, e.g. an MNIST border pixel, has no R^2)."""
    model = state.model
    dec = model.decoder
    x_num, x_cat = _tensors(table, split, state.device)
    n, d = len(x_num), model.backbone.n_tokens - 1
    if not dec.n_num:
        return torch.zeros(n, device=state.device), torch.zeros(1, device=state.device)
    gen = seeded_generator(state.device, seed, 11)
    std, r2s = torch.zeros(n, device=state.device), []
    for j in range(dec.n_num):
        ctx = torch.tensor([0] + [i + 1 for i in range(d) if i != j], device=state.device)
        ctx, tgt = ctx.expand(n, -1), torch.full((n, 1, 1), j + 1, device=state.device)
        mu_sx, lv_sx = model.posterior_sx(x_num, x_cat, ctx)
        means, variances = [], []
        for _ in range(samples):
            s_x = reparameterise(mu_sx, lv_sx, gen)
            z = reparameterise(*model.posterior_z(s_x), gen)
            mu_p, lv_p = (t[:, 0] for t in model.prior_sy(s_x, ctx, tgt, z))
            w, b = dec.num_w[j], dec.num_b[j]  # (k, 2): decoded mean and log-variance
            if dec.fixed_logvar is None:
                noise = (mu_p @ w[:, 1] + b[1]).clamp(*LOGVAR_RANGE).exp()
            else:
                noise = torch.full_like(mu_p[:, 0], math.exp(dec.fixed_logvar))
            means.append(mu_p @ w[:, 0] + b[0])
            variances.append(noise + (w[:, 0].square() * lv_p.exp()).sum(-1))
        means = torch.stack(means)  # (samples, n)
        spread = means.var(0, unbiased=False)  # Var over (s_x, z) of the decoded mean
        std += (torch.stack(variances).mean(0) + spread).sqrt() / dec.n_num
        variance = x_num[:, j].var(unbiased=False)
        if variance > 1e-8:
            r2s.append(1 - (means.mean(0) - x_num[:, j]).square().mean() / variance)
    if not r2s:  # every numeric feature constant on the split
        return std, torch.full((1,), math.nan, device=state.device)
    return std, torch.stack(r2s).mean().reshape(1)


def make_head(name: str, seed: int, ecfg: EvalConfig):
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier((ecfg.mlp_hidden,), max_iter=ecfg.mlp_epochs, random_state=seed),
        )
    if name == "hgb":
        return HistGradientBoostingClassifier(random_state=seed)
    raise ValueError(f"unknown head '{name}'; choose logreg, mlp or hgb")


def fit_heads(x_train, y_train, x_test, y_test, ecfg: EvalConfig, seed: int) -> dict[str, dict]:
    """{head: {'acc': test accuracy, 'correct': bool (N,), 'confidence': max prob (N,)}}."""
    out = {}
    for name in ecfg.heads:
        head = make_head(name, seed, ecfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            head.fit(x_train, y_train)
        proba = head.predict_proba(x_test)
        correct = head.classes_[proba.argmax(1)] == y_test
        out[name] = {"acc": float(correct.mean()), "correct": correct, "confidence": proba.max(1)}
    return out


def selective_accuracy(
    correct: np.ndarray, uncertainty: np.ndarray, fractions: list[float]
) -> list[float]:
    """Accuracy on the rows left after dropping the ceil(q N) most uncertain, for each q
    (ties broken by row order, stable)."""
    order = np.argsort(uncertainty, kind="stable")  # most certain first
    n = len(correct)
    return [float(correct[order[: n - math.ceil(q * n)]].mean()) for q in fractions]


def simulation_metrics(state: TabState, table: Table) -> dict[str, float]:
    """Var-JEPA's simulation-study columns (its Table 1), on the posterior means of the whole row:
    test accuracy of a linear probe (logistic regression, fitted on the train rows) for the
    mixture component from the token mean of s_x (q(s_x|x)) and of s_y (q(s_y|.) at the feature
    tokens); and, for the aggregate posterior of the s_x tokens over the test rows, moment-matched
    to N(m, C) (C = covariance of the means + mean posterior variance), KL(N(m, C) || N(0, I)) in
    nats and ||C - I||_F."""
    model = state.model
    reads = {}
    with torch.no_grad():
        for split in ("train", "test"):
            h = model.backbone(*_tensors(table, split, state.device))
            mu_sx, lv_sx = model.gaussian(model.sx_head(h), model.var.posterior_logvar)
            mu_sy = model.gaussian(model.sy_head(h), model.var.posterior_logvar)[0][:, 1:]
            reads[split] = (mu_sx.mean(1).cpu().numpy(), mu_sy.mean(1).cpu().numpy())
    out = {}
    for i, name in enumerate(("probe_sx", "probe_sy")):
        probe = make_head("logreg", 0, EvalConfig())
        probe.fit(reads["train"][i], table.y_train)
        out[name] = float(probe.score(reads["test"][i], table.y_test))
    mu = mu_sx[:, 1:].reshape(-1, mu_sx.shape[-1]).double().cpu()  # test rows' feature tokens
    var = lv_sx[:, 1:].reshape(-1, lv_sx.shape[-1]).double().exp().cpu()
    cov = torch.cov(mu.T) + torch.diag(var.mean(0))
    m, k = mu.mean(0), len(cov)
    out["kl_aggregate"] = float(0.5 * (cov.trace() + m @ m - k - torch.logdet(cov)))
    out["cov_minus_i"] = float(torch.linalg.norm(cov - torch.eye(k, dtype=cov.dtype)))
    return out


def evaluate(
    state: TabState | None,
    table: Table,
    ecfg: EvalConfig,
    seed: int,
    pool: str = "mean",
    uncertainty: bool = True,
) -> dict:
    """Heads on the embeddings of `state` pooled by `pool` (raw features when None); for
    Var-T-JEPA with `uncertainty` also the uncertainties, selective-prediction curves and, on the
    mixture, Spearman vs the exact ambiguity and the simulation-study metrics."""
    if state is None:
        x_train, x_test = table.raw_features("train"), table.raw_features("test")
    else:
        x_train, x_test = (
            embeddings(state, table, split, pool, ecfg.var_embedding) for split in ("train", "test")
        )
    heads = fit_heads(x_train, table.y_train, x_test, table.y_test, ecfg, seed)
    result = {"acc": {h: r["acc"] for h, r in heads.items()}, "dim": int(x_train.shape[1])}
    result["selective_confidence"] = {
        h: selective_accuracy(r["correct"], -r["confidence"], ecfg.drop_fractions)
        for h, r in heads.items()
    }
    if state is not None and state.target is None and uncertainty:
        unc = uncertainties(state, table, "test", ecfg.mask_draws, seed, ecfg.predictive_samples)
        result["predictor_r2"] = float(unc.pop("predictor_r2")[0])
        result["uncertainty_test"] = {k: v.tolist() for k, v in unc.items()}
        result["selective_uncertainty"] = {
            h: {k: selective_accuracy(r["correct"], u, ecfg.drop_fractions) for k, u in unc.items()}
            for h, r in heads.items()
        }
        if table.ambiguity_test is not None:
            unc = {**unc, "oracle": table.oracle_std_test}
            result["spearman"] = {
                k: float(spearmanr(v, table.ambiguity_test).statistic) for k, v in unc.items()
            }
            result["simulation"] = simulation_metrics(state, table)
    return result
