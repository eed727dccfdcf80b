"""The run configuration's schema: one typed dataclass per section, the allowed choices."""

import dataclasses
from dataclasses import dataclass, field


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
    # The audit's departures (../shared/reviews/sparsity-head-audit.md), each switchable:
    # per-channel batch standardisation of the reconstruction target (not in REFERENCE section 4,
    # which reconstructs the layer-normed h; it makes the latents explain near-constant channels);
    standardize_target: bool = True
    # the data term W's SGD steps on (threshold w_lr * lam either way): "element" = the per-element
    # mean reconstruction, "token" = a token's summed reconstruction (D x the step), as in oi-VAE;
    lam_per: str = "element"
    # the generators' last layer starting at 0: the first reconstruction is the mean predictor's
    # (about 1) and no head gradient reaches the encoder until the generators have learned;
    zero_init_generator: bool = False
    # the head's encoder gradient ramped 0 -> encoder_grad linearly between these fractions of
    # training (0, 0: constant); (0.67, 0.67) switches it on for the last third.
    encoder_grad_ramp: tuple[float, float] = (0.0, 0.0)


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
    "sparsity.lam_per": ("element", "token"),
    "data.dataset": ("cifar100", "shapes"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("auto", "fp32", "bf16"),
}


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
