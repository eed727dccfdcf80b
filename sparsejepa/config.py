"""Typed run configuration: dataclasses, YAML presets, `key=value` overrides with clear errors."""

import dataclasses
import functools
import math
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
    # EC-IJEPA: "ec" gives the context encoder one token per target window and the target encoder
    # one token for the context window, each a learned token + the mean sin-cos position of the
    # window's patches (vit.Encoder.forward); "none" is I-JEPA. The probe never conditions.
    conditioning: str = "none"


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
    # lowered RankMe to ~2.3 vs 4.5 for JEPA in CIFAR-100 CPU runs (docs/reproduction.md, notes).
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
    "model.conditioning": ("none", "ec"),
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


def _fail(key: str, value, requirement: str) -> ConfigError:
    return ConfigError(f"{key}={value!r}: {requirement}")


def _apply(rules) -> None:
    """Raise ConfigError for the first failing (key, value, ok, requirement) of `rules`, a
    generator: a rule after a failed one is never evaluated, so it may rely on the earlier ones
    (no division by a zero patch size, say)."""
    for key, value, ok, requirement in rules:
        if not ok:
            raise _fail(key, value, requirement)


def _finite_numbers(obj, prefix: str = "") -> None:
    """Every float of a config (tuples included) is finite: no nan / inf reaches a run."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _finite_numbers(value, key + ".")
            continue
        items = value if isinstance(value, (tuple, list)) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            raise _fail(key, value, "must be a finite number")


def _interval(key: str, pair, low: float, high: float | None, low_open: bool = True):
    """A (lo, hi) range field: low < lo <= hi <= high (low <= lo when not low_open)."""
    lo, hi = pair
    above = lo > low if low_open else lo >= low
    bound = f"{low} {'<' if low_open else '<='} low <= high" + (f" <= {high}" if high else "")
    yield key, pair, above and lo <= hi and (high is None or hi <= high), f"must satisfy {bound}"


def _optim_rules(o: OptimConfig):
    yield "optim.lr", o.lr, o.lr > 0, "must be > 0 (e.g. 1e-3)"
    for name in ("start_lr", "final_lr", "warmup_epochs", "wd_start", "wd_end", "clip_grad"):
        value = getattr(o, name)
        note = " (0 disables clipping)" if name == "clip_grad" else ""
        yield f"optim.{name}", value, value >= 0, f"must be >= 0{note}"
    yield "optim.betas", o.betas, all(0 <= b < 1 for b in o.betas), "both must lie in [0, 1)"
    for name in ("ema_start", "ema_end"):
        value = getattr(o, name)
        yield f"optim.{name}", value, 0 <= value <= 1, "an EMA momentum must lie in [0, 1]"


def _train_rules(t: TrainConfig):
    yield "train.epochs", t.epochs, t.epochs > 0, "must be > 0"
    yield "train.batch_size", t.batch_size, t.batch_size >= 1, "must be >= 1"
    yield "train.seed", t.seed, t.seed >= 0, "must be >= 0"
    for name in ("log_every", "rankme_every", "ckpt_every"):
        value = getattr(t, name)
        yield f"train.{name}", value, value >= 1, "an interval in steps must be >= 1"


# Range checks of the sections two config families share (the tabular package reuses them).
SECTION_RULES = {OptimConfig: _optim_rules, TrainConfig: _train_rules}


def _section_rules(cfg):
    for f in dataclasses.fields(cfg):
        rules = SECTION_RULES.get(type(getattr(cfg, f.name)))
        if rules is not None:
            yield from rules(getattr(cfg, f.name))


def _model_rules(m: ModelConfig):
    for name in (
        "img_size",
        "patch",
        "width",
        "depth",
        "heads",
        "pred_width",
        "pred_depth",
        "pred_heads",
    ):
        yield f"model.{name}", getattr(m, name), getattr(m, name) >= 1, "must be >= 1"
    yield (
        "model.img_size",
        m.img_size,
        m.img_size % m.patch == 0,
        f"must be divisible by model.patch={m.patch} (whole patches)",
    )
    for width, heads in (("width", "heads"), ("pred_width", "pred_heads")):
        w, h = getattr(m, width), getattr(m, heads)
        yield f"model.{heads}", h, w % h == 0, f"must divide model.{width}={w}"
        yield (
            f"model.{width}",
            w,
            w % 4 == 0,
            "must be divisible by 4 (2-D sin-cos position embedding)",
        )
    yield (
        "model.mlp_ratio",
        m.mlp_ratio,
        int(m.width * m.mlp_ratio) >= 1,
        "must be > 0 (the MLP needs at least one hidden unit)",
    )
    yield (
        "model.patch_embed_std",
        m.patch_embed_std,
        m.patch_embed_std > 0,
        "must be > 0 (the std of a truncated normal)",
    )


def _mask_rules(k: MaskConfig, grid: int):
    n = grid * grid
    yield (
        "mask.num_targets",
        k.num_targets,
        1 <= k.num_targets <= n,
        f"must lie in [1, {n}] (the {grid}x{grid} patch grid)",
    )
    yield "mask.min_keep", k.min_keep, 1 <= k.min_keep <= n, f"must lie in [1, {n}] patches"
    if grid > MAX_MASK_GRID:  # the estimate below would hold (1, num_targets, grid^2) masks
        return
    yield from _interval("mask.target_scale", k.target_scale, 0, 1)
    yield from _interval("mask.context_scale", k.context_scale, 0, 1)
    yield from _interval("mask.target_aspect", k.target_aspect, 0, None)
    rate = mask_success_rate(
        grid, k.num_targets, k.target_scale, k.target_aspect, k.context_scale, k.min_keep
    )
    yield (
        "mask",
        f"{rate:.0%} of draws usable",
        rate >= MIN_MASK_RATE,
        f"the context must keep mask.min_keep={k.min_keep} of {n} patches after "
        f"mask.num_targets={k.num_targets} target blocks (mask.target_scale={k.target_scale}) "
        f"are cut out in at least {MIN_MASK_RATE:.0%} of mask draws; lower mask.num_targets, "
        "mask.target_scale or mask.min_keep, or raise mask.context_scale",
    )


def _sparsity_rules(s: SparsityConfig, width: int):
    yield "sparsity.groups", s.groups, s.groups >= 1, "must be >= 1"
    yield (
        "sparsity.groups",
        s.groups,
        width % s.groups == 0,
        f"must divide model.width={width} (contiguous channel groups)",
    )
    for name in ("latent_dim", "group_latent", "hidden"):
        yield f"sparsity.{name}", getattr(s, name), getattr(s, name) >= 1, "must be >= 1"
    for name in ("alpha", "beta", "lam", "w_init_std", "gen_prior", "encoder_grad"):
        yield f"sparsity.{name}", getattr(s, name), getattr(s, name) >= 0, "must be >= 0"
    yield "sparsity.w_lr", s.w_lr, s.w_lr > 0, "must be > 0"


def _var_rules(cfg: Config):
    v = cfg.var
    yield (
        "sparsity.enabled",
        cfg.sparsity.enabled,
        not cfg.sparsity.enabled,
        "method=var_jepa does not combine with the sparsity head; set sparsity.enabled=false",
    )
    yield (
        "model.conditioning",
        cfg.model.conditioning,
        cfg.model.conditioning == "none",
        "method=var_jepa has no EMA target encoder to condition; set model.conditioning=none",
    )
    yield (
        "var.latent_dim",
        v.latent_dim,
        v.latent_dim is None or v.latent_dim >= 1,
        "must be >= 1 or null (= model.width)",
    )
    yield "var.z_dim", v.z_dim, v.z_dim >= 1, "must be >= 1"
    for name in ("w_recon_x", "w_recon_y", "w_kl_sx", "w_kl_z", "w_kl_sy", "anneal_epochs"):
        yield f"var.{name}", getattr(v, name), getattr(v, name) >= 0, "must be >= 0"


def _data_rules(cfg: Config):
    d, t = cfg.data, cfg.train
    for name in ("n_train", "n_test"):
        value = getattr(d, name)
        yield f"data.{name}", value, value is None or value >= 1, "must be >= 1 or null (all)"
    yield from _interval("data.crop_scale", d.crop_scale, 0, 1)
    if d.n_train is not None:  # else train() checks against the loaded set
        yield from steps_rules(t.epochs, t.batch_size, d.n_train, "data.n_train")


def steps_rules(epochs: float, batch_size: int, n_images: int, source: str):
    """A batch fits in the training set and train.epochs asks for at least one step."""
    yield (
        "train.batch_size",
        batch_size,
        batch_size <= n_images,
        f"is larger than the {n_images} training images ({source}); lower it",
    )
    per_epoch = n_images // batch_size
    yield (
        "train.epochs",
        epochs,
        epochs * per_epoch >= 1,
        f"asks for {epochs * per_epoch:.3g} steps (an epoch is {per_epoch} steps of "
        f"train.batch_size={batch_size} over {n_images} images); train at least one step: "
        f"train.epochs >= {1 / per_epoch:.4g}",
    )


def check_training_set(cfg: Config, dataset) -> None:
    """ConfigError unless the loaded training set (an `ImageDataset`: uint8 x_train (N, H, W, 3),
    name, num_classes per task) fits the config: images of model.img_size, a batch fits in them,
    train.epochs gives a step, and probe.tasks are tasks of this set."""
    shape, size = dataset.x_train.shape, cfg.model.img_size
    found, known = tuple(shape[1:]), list(dataset.num_classes)

    def rules():
        yield (
            "model.img_size",
            size,
            found == (size, size, 3),
            f"does not match the training images {found}; set model.img_size={found[0]}",
        )
        yield from steps_rules(
            cfg.train.epochs, cfg.train.batch_size, shape[0], f"the {dataset.name} training set"
        )
        tasks = cfg.probe.tasks or []
        yield (
            "probe.tasks",
            tasks,
            set(tasks) <= set(known),
            f"{dataset.name} has the tasks {known}; choose among them or null (all)",
        )

    _apply(rules())


def _probe_rules(p: ProbeConfig):
    yield (
        "probe.tasks",
        p.tasks,
        p.tasks is None or len(p.tasks) >= 1,
        "must be null (every task of the dataset) or a non-empty list",
    )


def _rules(cfg: Config):
    yield from _model_rules(cfg.model)
    yield from _mask_rules(cfg.mask, cfg.model.img_size // cfg.model.patch)
    yield from _sparsity_rules(cfg.sparsity, cfg.model.width)
    if cfg.method == "var_jepa":
        yield from _var_rules(cfg)
    yield from _data_rules(cfg)
    yield from _probe_rules(cfg.probe)


def _check(cfg: Config) -> None:
    """What each field of an image run means (ranges, divisibility, masks that can be drawn on
    the patch grid, at least one training step), checked before anything is built."""
    _apply(_rules(cfg))


# A mask draw fails when its context keeps fewer than min_keep patches; the sampler redraws such
# samples up to 50 times, so with a success rate p >= 0.4 one sample fails with probability
# 0.6^50 < 1e-11 (a billion samples: < 1%), while p -> 0 stops a run at its first batch.
MIN_MASK_RATE = 0.4
MAX_MASK_GRID = 64  # larger patch grids are not estimated (4096 patches: a 256 px image at 4 px)


@functools.lru_cache(maxsize=64)
def mask_success_rate(
    grid: int,
    num_targets: int,
    target_scale,
    target_aspect,
    context_scale,
    min_keep: int,
    draws: int = 200,
) -> float:
    """Share of single mask draws (seeded, so the check is deterministic) whose context keeps
    min_keep patches."""
    import torch

    from .masks import sample_masks

    g, ok = torch.Generator().manual_seed(0), 0
    for _ in range(draws):
        try:
            sample_masks(
                1,
                grid,
                g,
                num_targets,
                target_scale,
                target_aspect,
                context_scale,
                min_keep,
                max_tries=1,
            )
            ok += 1
        except RuntimeError:
            pass
    return ok / draws


def from_dict(values: dict, *, cls=Config, check=_check):
    """A `cls` (default: the image `Config`) from nested `values`, type-checked key by key, then
    validated: every float finite, the shared sections (`SECTION_RULES`), then `check`;
    ConfigError names the offending key and what it must be."""
    cfg = cls()
    _update(cfg, values)
    _finite_numbers(cfg)
    _apply(_section_rules(cfg))
    check(cfg)
    return cfg


def parse_override(text: str) -> dict:
    """'optim.lr=1e-3' -> {'optim': {'lr': 0.001}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    value = _yaml(raw, f"override {text!r}") if raw.strip() else None
    if isinstance(value, str) and raw.strip().lower() in ("none", "null"):
        value = None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _yaml(text: str, where: str):
    """YAML text parsed, or ConfigError naming `where` and the line and column at fault."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        hint = "; YAML indents with spaces, never tabs" if "\t" in text else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}{hint}") from None


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
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} {path} is not a readable text file ({err})") from None
    values = _yaml(text, f"{what} {path}") or {}
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
