"""Typed run configuration: dataclasses, YAML presets, `key=value` overrides with clear errors."""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelConfig:
    img_size: int = 32
    patch: int = 4
    width: int = 192
    depth: int = 12
    heads: int = 3
    mlp_ratio: float = 4.0
    pred_width: int = 96
    pred_depth: int = 6
    pred_heads: int = 3
    # I-JEPA initialises the patch embedding with std 0.02. At patch 4 (fan-in 48) that makes the
    # content part of a token ~5x smaller than its sin-cos position (norms 1.7 vs 8 at width 128),
    # and the targets mostly encode position; 1 / sqrt(fan-in) = 0.144 makes content dominate.
    patch_embed_std: float = 0.02


@dataclass
class MaskConfig:
    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    min_keep: int = 10
    pad_context: bool = True  # keep each sample's whole context (padded); False: cut to batch min


@dataclass
class SparsityConfig:
    enabled: bool = False
    latent_dim: int = 8  # K
    groups: int = 8  # G contiguous channel groups
    group_latent: int = 4  # p: rows of each W^(g)
    hidden: int = 64  # hidden width of each generator f_g
    alpha: float = 1.0  # reconstruction weight
    beta: float = 1.0  # KL weight
    lam: float = 1.0  # group-lasso lambda (0 = VAE-head ablation)
    w_lr: float = 1e-3  # plain-SGD learning rate of W; prox threshold = w_lr * lam
    w_init_std: float = 1.0
    gen_prior: float = 1e-4  # weight of the N(0,1) prior (L2) on generator weights
    # Scale of the head's gradient into the context encoder (the head itself trains at full weight).
    # At init the recon gradient reaching the encoder is ~1700x the JEPA one; scales 1 to 0.01
    # lowered RankMe to ~2.3 vs 4.5 for JEPA in CIFAR-100 CPU runs (README, reproduction notes).
    encoder_grad: float = 1e-3
    # Where the head reads the context encoder: every context token is one sample (False), or the
    # mean of each image's context tokens is (True: image-level latents, B samples per batch).
    pool: bool = False
    # What the head reconstructs: "self" = the context encoder's own tokens h (REFERENCE design;
    # rewards an h of low rank), "ema" = the EMA target encoder's tokens at the same positions
    # (no gradient; the encoder cannot make that target easier by collapsing h).
    recon_target: str = "self"


@dataclass
class VarConfig:
    """Var-JEPA (`method: var_jepa`, sparsejepa/var_jepa.py): latent sizes, ELBO weights, KL
    annealing and fixed-variance switches (log-variances; None = learned)."""

    latent_dim: int | None = None  # k of each patch latent s_x / s_y; None = model.width
    z_dim: int = 32  # global latent z
    w_recon_x: float = 1.0  # E_q log p(x | s_x), context patches
    w_recon_y: float = 1.0  # E_q log p(y | s_y), target patches
    w_kl_sx: float = 1.0  # KL(q(s_x|x) || N(0, I))
    w_kl_z: float = 1.0  # KL(q(z|s_x) || N(0, I))
    w_kl_sy: float = 1.0  # KL(q(s_y|s_x,z,y) || p(s_y|s_x,z))
    anneal_epochs: float = 1.0  # KL weight rises linearly 0 -> 1 over these epochs (0 = off)
    # Fixed log-variance of the Gaussian pixel decoders p(x|s) (pixels are normalised to unit
    # variance); None = learned per pixel. Fixed by default, as in the tabular Var-T-JEPA, where
    # learned variances let the decoders explain the data as noise and the latents collapsed.
    decoder_logvar: float | None = -2.0
    posterior_logvar: float | None = None  # fixed log-variance of q(s_x|x), q(s_y|.) and q(z|s_x)
    prior_logvar: float | None = None  # fixed log-variance of the predictor p(s_y|s_x,z)


@dataclass
class OptimConfig:
    lr: float = 1e-3
    start_lr: float = 2e-4
    final_lr: float = 1e-6
    warmup_epochs: float = 5.0
    wd_start: float = 0.04
    wd_end: float = 0.4
    betas: tuple[float, float] = (0.9, 0.999)
    clip_grad: float = 3.0  # 0 disables clipping
    ema_start: float = 0.996
    ema_end: float = 1.0
    loss: str = "smooth_l1"  # or "l2"


@dataclass
class DataConfig:
    dataset: str = "cifar100"  # "cifar100" or "shapes"
    path: str | None = None
    download: bool = False  # fetch the official CIFAR-100 archive (md5-checked) into the cache
    n_train: int | None = None
    n_test: int | None = None
    crop_scale: tuple[float, float] = (0.3, 1.0)


@dataclass
class TrainConfig:
    epochs: float = 100.0
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda"
    # "auto" (bf16 on CUDA and CPUs with AMX or AVX512-BF16, else fp32), "fp32", "bf16"
    precision: str = "auto"
    compile: bool = False
    log_every: int = 20
    rankme_every: int = 200
    ckpt_every: int = 500


@dataclass
class ProbeConfig:
    tasks: list[str] | None = None  # None: every task of the probe set


# Keys of earlier versions that no longer mean anything; stored configs (checkpoints, releases)
# still hold them, so they are dropped on reading instead of being unknown-key errors.
RETIRED_KEYS = {"probe.epochs", "probe.batch_size"}  # the Adam probe's; the probe is now L-BFGS


@dataclass
class Config:
    name: str = "run"
    method: str = "jepa"  # "jepa" (EMA target, stop-gradient) or "var_jepa" (one ELBO)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    var: VarConfig = field(default_factory=VarConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)


class ConfigError(ValueError):
    pass


CHOICES = {
    "method": ("jepa", "var_jepa"),
    "optim.loss": ("smooth_l1", "l2"),
    "sparsity.recon_target": ("self", "ema"),
    "data.dataset": ("cifar100", "shapes"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("auto", "fp32", "bf16"),
}


def _coerce(value, tp, key: str):
    """Check/convert a YAML value to the annotated type `tp`, or raise ConfigError naming `key`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)) or (origin is tuple and len(value) != len(args)):
            raise ConfigError(
                f"{key}: expected a list of {len(args) if origin is tuple else 'N'} "
                f"values like [0.1, 0.2], got {value!r}"
            )
        items = [
            _coerce(v, args[i] if origin is tuple else args[0], key) for i, v in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "5e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _update(obj, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if full in RETIRED_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"unknown config key '{full}'; valid keys here: {sorted(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a mapping of sub-keys, got {value!r}")
            _update(current, value, full + ".")
            continue
        value = _coerce(value, hints[key], full)
        if full in CHOICES and value not in CHOICES[full]:
            raise ConfigError(f"{full}: must be one of {CHOICES[full]}, got {value!r}")
        setattr(obj, key, value)


def _check(cfg: Config) -> None:
    positive = {
        "model.width": cfg.model.width,
        "model.depth": cfg.model.depth,
        "model.pred_depth": cfg.model.pred_depth,
        "train.batch_size": cfg.train.batch_size,
        "train.epochs": cfg.train.epochs,
        "optim.lr": cfg.optim.lr,
        "mask.num_targets": cfg.mask.num_targets,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    if cfg.model.img_size % cfg.model.patch:
        raise ConfigError(f"model.img_size {cfg.model.img_size} not divisible by model.patch")
    if cfg.sparsity.lam < 0 or cfg.sparsity.w_lr <= 0:
        raise ConfigError("sparsity.lam must be >= 0 and sparsity.w_lr > 0")
    if cfg.method == "var_jepa":
        _check_var(cfg)
    if cfg.model.width % cfg.sparsity.groups:
        raise ConfigError(
            f"model.width {cfg.model.width} not divisible by sparsity.groups {cfg.sparsity.groups}"
        )


def _check_var(cfg: Config) -> None:
    v = cfg.var
    if cfg.sparsity.enabled:
        raise ConfigError("method=var_jepa does not combine with sparsity.enabled=true")
    if (v.latent_dim is not None and v.latent_dim <= 0) or v.z_dim <= 0:
        raise ConfigError(
            f"var.latent_dim and var.z_dim must be > 0, got {v.latent_dim} and {v.z_dim}"
        )
    weights = {k: getattr(v, k) for k in ("w_recon_x", "w_recon_y", "w_kl_sx", "w_kl_z", "w_kl_sy")}
    bad = {k: w for k, w in {**weights, "anneal_epochs": v.anneal_epochs}.items() if w < 0}
    if bad:
        raise ConfigError(f"var: weights and anneal_epochs must be >= 0, got {bad}")


def from_dict(values: dict, *, cls=Config, check=_check):
    """A `cls` (default: the image `Config`) from nested `values`, type-checked key by key, then
    validated by `check`; ConfigError names the offending key."""
    cfg = cls()
    _update(cfg, values)
    check(cfg)
    return cfg


def parse_override(text: str) -> dict:
    """'optim.lr=1e-3' -> {'optim': {'lr': 0.001}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str) and raw.strip().lower() in ("none", "null"):
        value = None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in preset_dir.glob("*.yaml"))


def load_config(
    name_or_path: str,
    overrides: list[str] = (),
    *,
    preset_dir: Path = PRESET_DIR,
    build=from_dict,
    what: str = "config",
):
    """Load a preset name (see `presets()`) or a YAML file, then apply `key=value` overrides.

    Other config families (the tabular package) pass their `preset_dir`, their `build` (nested
    dict -> checked config, e.g. `from_dict` with `cls` and `check`) and `what` for the
    not-found message.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = preset_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{what} '{name_or_path}' not found: give a YAML file or one of the presets "
            f"{presets(preset_dir)}"
        )
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return build(apply_overrides(values, overrides))


def apply_overrides(values: dict, overrides=()) -> dict:
    """Merge `key=value` override strings into a nested config dict (in place; returned)."""
    for text in overrides:
        _merge(values, parse_override(text))
    return values


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
