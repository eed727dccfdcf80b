"""What each field of an image run means: ranges, divisibility, masks that can be drawn on the
patch grid, at least one training step. Each rule yields (key, value, ok, requirement)."""

import dataclasses
import functools
import math

from .schema import (
    Config,
    ConfigError,
    MaskConfig,
    ModelConfig,
    OptimConfig,
    ProbeConfig,
    SparsityConfig,
    TrainConfig,
)


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
    yield from _interval("sparsity.encoder_grad_ramp", s.encoder_grad_ramp, 0.0, 1.0, False)


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


def check(cfg: Config) -> None:
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

    from ..masks import sample_masks

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


def validate(cfg, check=check) -> None:
    """Every float finite, the shared sections' rules (`SECTION_RULES`), then `check(cfg)`;
    ConfigError names the offending key and what it must be."""
    _finite_numbers(cfg)
    _apply(_section_rules(cfg))
    check(cfg)
