"""Typed configuration of tabular T-JEPA / Var-T-JEPA runs, on the core's YAML + `--set` machinery.

The optimiser and training-loop sections are the image core's `OptimConfig` and `TrainConfig`
(same keys, same meaning); the other sections are tabular. Parsing, type checking, presets and
overrides use `sparsejepa.config` (`from_dict`, `load_config`, `presets`), so errors read the same.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as core
from ..config import ConfigError, OptimConfig, TrainConfig

PRESET_DIR = Path(__file__).parent / "configs"
DATASETS = ("breast_cancer", "wine", "digits", "mixture", "adult", "mnist", "covertype")
METHODS = ("t_jepa", "var_t_jepa")
HEADS = ("logreg", "mlp", "hgb")


@dataclass
class TableConfig:
    name: str = "breast_cancer"  # one of DATASETS
    # adult: a folder with the UCI adult.data + adult.test (official split) or one file (75/25);
    # mnist: the CSV (784 pixels + label) or its folder; covertype: covtype.data(.gz)
    path: str | None = None
    download: bool = False  # adult / covertype: fetch into the cache (sha256-checked)
    test_fraction: float = 0.25
    split_seed: int = 0  # the train/test split is fixed across training seeds
    max_rows: int | None = None  # stratified subsample (of the train rows when the split is given)
    pixel_pool: int = 1  # mnist: average-pool the 28x28 image in blocks of this size
    # simulated Gaussian mixture (name: mixture)
    mixture_rows: int = 3000
    mixture_components: int = 3
    mixture_dims: int = 6
    mixture_separation: float = 1.5  # distance of the component means in units of the noise std
    mixture_categories: int = 4  # one categorical feature drawn from p(c | component); 0 = none


@dataclass
class TabModelConfig:
    method: str = "var_t_jepa"  # one of METHODS
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    pred_width: int = 32
    pred_depth: int = 2
    pred_heads: int = 4
    latent_dim: int = 16  # Var-T-JEPA: per-feature latent s (context s_x and target s_y)
    z_dim: int = 16  # Var-T-JEPA: global latent z
    layer_norm_targets: bool = True  # T-JEPA: layer-norm the EMA target tokens (as I-JEPA)


@dataclass
class FeatureMaskConfig:
    num_targets: int = 4  # target feature sets per row (T-JEPA: 4)
    context_share: tuple[float, float] = (0.4, 0.7)  # of the features, drawn per batch
    target_share: tuple[float, float] = (0.15, 0.3)


@dataclass
class VarConfig:
    """Weights of the Var-T-JEPA ELBO terms and its fixed-variance switches."""

    w_recon: float = 1.0  # E_q log p(x_ctx | s_x)
    w_gen: float = 1.0  # E_q log p(y | s_y)
    w_kl_sx: float = 1.0  # KL(q(s_x|x) || N(0, I))
    w_kl_z: float = 1.0  # KL(q(z|s_x) || N(0, I))
    w_kl_sy: float = 1.0  # KL(q(s_y|s_x,z,y) || p(s_y|s_x,z))
    anneal_epochs: float = 10.0  # KL weight beta rises linearly 0 -> 1 over these epochs
    target_posterior: str = "joint"  # q(s_y|.) reads "joint": context + target features; "target"
    posterior_logvar: float | None = None  # fixed log-variance of q(s_x), q(s_y); None = learned
    prior_logvar: float | None = None  # fixed log-variance of the predictor p(s_y|s_x,z)
    # Fixed log-variance of the numeric decoders p(x_j|s_j); None = learned per row. Learned
    # variances let the decoders explain standardised features as noise and the latents collapse
    # to the prior (measured: KL(q(s_x)) ~ 0.5 nats per row on the mixture); fixed small noise
    # makes the latents carry the feature values.
    decoder_logvar: float | None = -2.0


@dataclass
class EvalConfig:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    heads: list[str] = field(default_factory=lambda: list(HEADS))
    # embeddings measured: "mean" of the feature tokens + [REG], "reg": the [REG] token alone
    pools: list[str] = field(default_factory=lambda: ["mean", "reg"])
    # Var-T-JEPA tokens that are pooled: "posterior_mean" (mu of q(s_x|x)) or "backbone" (the
    # encoder output before the posterior head, as for T-JEPA's target encoder)
    var_embedding: str = "posterior_mean"
    mask_draws: int = 8  # random masks averaged for the "predictor" uncertainty
    predictive_samples: int = 16  # draws of (s_x, z) for the "predictive" uncertainty
    drop_fractions: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    mlp_hidden: int = 128
    mlp_epochs: int = 200


@dataclass
class TabularConfig:
    name: str = "tabular"
    data: TableConfig = field(default_factory=TableConfig)
    model: TabModelConfig = field(default_factory=TabModelConfig)
    mask: FeatureMaskConfig = field(default_factory=FeatureMaskConfig)
    var: VarConfig = field(default_factory=VarConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _check(cfg: TabularConfig) -> None:
    choices = {
        "data.name": (cfg.data.name, DATASETS),
        "model.method": (cfg.model.method, METHODS),
        "var.target_posterior": (cfg.var.target_posterior, ("joint", "target")),
        "eval.var_embedding": (cfg.eval.var_embedding, ("posterior_mean", "backbone")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: must be one of {allowed}, got {value!r}")
    if not cfg.eval.pools or set(cfg.eval.pools) - {"mean", "reg"}:
        raise ConfigError(
            f"eval.pools: a non-empty list from ['mean', 'reg'], got {cfg.eval.pools}"
        )
    bad_heads = sorted(set(cfg.eval.heads) - set(HEADS))
    if bad_heads or not cfg.eval.heads:
        raise ConfigError(f"eval.heads: choose a non-empty list from {HEADS}, got {cfg.eval.heads}")
    positive = {
        "model.width": cfg.model.width,
        "model.depth": cfg.model.depth,
        "model.pred_depth": cfg.model.pred_depth,
        "model.latent_dim": cfg.model.latent_dim,
        "model.z_dim": cfg.model.z_dim,
        "mask.num_targets": cfg.mask.num_targets,
        "train.batch_size": cfg.train.batch_size,
        "train.epochs": cfg.train.epochs,
        "optim.lr": cfg.optim.lr,
        "eval.mask_draws": cfg.eval.mask_draws,
        "eval.predictive_samples": cfg.eval.predictive_samples,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    for key, (lo, hi) in {
        "mask.context_share": cfg.mask.context_share,
        "mask.target_share": cfg.mask.target_share,
    }.items():
        if not 0 < lo <= hi < 1:
            raise ConfigError(f"{key}: need 0 < low <= high < 1, got ({lo}, {hi})")
    if cfg.mask.context_share[1] + cfg.mask.target_share[1] > 1:
        raise ConfigError(
            "mask.context_share[1] + mask.target_share[1] must be <= 1: targets never overlap "
            f"the context, got {cfg.mask.context_share[1]} + {cfg.mask.target_share[1]}"
        )
    if not 0 < cfg.data.test_fraction < 1:
        raise ConfigError(f"data.test_fraction must lie in (0, 1), got {cfg.data.test_fraction}")
    if any(not 0 <= f < 1 for f in cfg.eval.drop_fractions):
        raise ConfigError(f"eval.drop_fractions must lie in [0, 1), got {cfg.eval.drop_fractions}")
    if cfg.train.compile or cfg.train.precision == "bf16":
        raise ConfigError(
            "tabular runs are fp32 and eager: set train.compile=false and train.precision=fp32"
        )


def from_dict(values: dict) -> TabularConfig:
    old = values.get("eval", {})
    if "pool" in old:  # configs saved before eval.pools measured both embeddings
        new = {k: v for k, v in old.items() if k != "pool"}
        values = {**values, "eval": {**new, "pools": [old["pool"]]}}
    return core.from_dict(values, cls=TabularConfig, check=_check)


def presets() -> list[str]:
    return core.presets(PRESET_DIR)


def load_config(name_or_path: str, overrides: list[str] = ()) -> TabularConfig:
    """A tabular preset name (see `presets()`) or a YAML file, then `key=value` overrides."""
    return core.load_config(
        name_or_path, overrides, preset_dir=PRESET_DIR, build=from_dict, what="tabular config"
    )


def to_dict(cfg: TabularConfig) -> dict:
    return dataclasses.asdict(cfg)
