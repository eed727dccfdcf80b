"""(Sparse)JEPA training: a batch, one plain `train_step(state, batch)`, and the resumable training
loop (the state is built by `state.build`, the student's forward is `student.Student`).

All data randomness (batch indices, crops, masks, reparameterisation noise) comes from generators
seeded by (seed, step, rank), so a resumed run replays exactly the batches of an uninterrupted one.
"""

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import theory

from . import augment, checkpoint, metrics, run_folder, var_jepa
from .config import Config, ConfigError, check_training_set, to_dict
from .masks import sample_masks
from .runtime import NonFiniteLoss, seeded_generator
from .schedules import cosine_lr, cosine_wd, ema_momentum
from .sparsity import head_encoder_grad, prox_group_lasso
from .state import TrainState, build, load_training_set
from .vit import gather_tokens


@dataclass
class Batch:
    images: torch.Tensor  # (B, 3, H, W) normalised, augmented
    context_idx: torch.Tensor  # (B, Lc), padded with 0 where context_valid is False
    target_idx: torch.Tensor  # (B, M, Lt)
    noise: torch.Tensor | None  # (context tokens, K) reparameterisation noise
    context_valid: torch.Tensor | None = None  # (B, Lc) bool; None when no row is padded


def sample_batch(state: TrainState, step: int) -> Batch:
    """Augmented images, masks, noise of step `step` for this rank, pure in (seed, step)."""
    cfg, dev = state.cfg, state.device
    seed = cfg.train.seed
    idx = augment.batch_indices(len(state.x_train), cfg.train.batch_size, step, seed, dev)
    idx = idx[state.rank :: state.world]
    images = augment.normalize(state.x_train[idx], state.mean, state.std)
    images = augment.random_resized_crop(
        images, seeded_generator(dev, seed, step, state.rank, 1), scale=cfg.data.crop_scale
    )
    m = cfg.mask
    masks = sample_masks(
        len(idx),
        state.student.encoder.grid,
        seeded_generator(torch.device("cpu"), seed, step, state.rank, 2),
        m.num_targets,
        m.target_scale,
        m.target_aspect,
        m.context_scale,
        m.min_keep,
        m.pad_context,
    )
    valid = None if masks.context_valid is None else augment.to_device(masks.context_valid, dev)
    noise = None
    if state.student.head is not None:
        if cfg.sparsity.pool:
            n = len(idx)
        else:
            n = masks.context.numel() if valid is None else int(masks.context_valid.sum())
        noise = torch.randn(
            n,
            cfg.sparsity.latent_dim,
            device=dev,
            generator=seeded_generator(dev, seed, step, state.rank, 3),
        )
    context, targets = augment.to_device(masks.context, dev), augment.to_device(masks.targets, dev)
    return Batch(images, context, targets, noise, valid)


def schedules(state: TrainState, step: int) -> tuple[float, float, float]:
    """(lr, weight decay, EMA momentum) at `step`."""
    o, total = state.cfg.optim, state.total_steps
    warmup = round(o.warmup_epochs * state.steps_per_epoch)
    return (
        cosine_lr(step, total, warmup, o.lr, o.final_lr, o.start_lr),
        cosine_wd(step, total, o.wd_start, o.wd_end),
        ema_momentum(step, total, o.ema_start, o.ema_end),
    )


def jepa_loss(state: TrainState, batch: Batch) -> dict[str, torch.Tensor]:
    """JEPA (+ the sparsity head's terms): the student predicts the EMA target encoder's
    layer-normed tokens at the target blocks from the context. With model.conditioning=ec the
    target encoder is told where the context window is (its patches' mean position)."""
    b, m, lt = batch.target_idx.shape
    with state.autocast:
        with torch.no_grad():
            cond = None
            if state.target.cond_token is not None:
                valid = None if batch.context_valid is None else batch.context_valid[:, None]
                cond = state.target.window_positions(batch.context_idx[:, None], valid)
            t = state.target(batch.images, cond=cond).float()
            t = F.layer_norm(t, t.shape[-1:])
            targets = gather_tokens(t, batch.target_idx.reshape(b, m * lt)).reshape(b * m, lt, -1)
            context_targets = None
            if state.student.head is not None and state.cfg.sparsity.recon_target == "ema":
                context_targets = gather_tokens(t, batch.context_idx)
        return state.model(
            batch.images,
            batch.context_idx,
            batch.target_idx,
            targets,
            batch.noise,
            batch.context_valid,
            context_targets,
            head_encoder_grad(state.cfg.sparsity, state.step, state.total_steps),
        )


def var_jepa_loss(state: TrainState, batch: Batch) -> dict[str, torch.Tensor]:
    """Var-JEPA: the negative ELBO with the KL terms' annealing weight of this step."""
    cfg = state.cfg
    beta = var_jepa.kl_weight(state.step, cfg.var.anneal_epochs * state.steps_per_epoch)
    noise = seeded_generator(state.device, cfg.train.seed, state.step, state.rank, 3)
    with state.autocast:
        out = state.model(
            batch.images,
            batch.context_idx,
            batch.target_idx,
            batch.context_valid,
            noise,
            beta,
        )
    return {**out, "kl_weight": beta}


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - momentum)


def train_step(state: TrainState, batch: Batch) -> dict[str, torch.Tensor | float]:
    """One optimisation step in three parts: (1) the method's loss, (2) backward, clip, AdamW and
    the head's SGD + proximal group-lasso step, (3) the EMA update of the target encoder (JEPA only;
    Var-JEPA's target is the student's encoder). Nothing here waits for the device: losses and
    norms come back as 0-d tensors and a nan / inf loss is only recorded (`state.nonfinite_step`);
    `read_metrics` syncs, checks and converts."""
    lr, wd, momentum = schedules(state, state.step)
    variational, student, cfg = state.cfg.method == "var_jepa", state.student, state.cfg

    # 1. the loss
    out = var_jepa_loss(state, batch) if variational else jepa_loss(state, batch)
    loss = out["loss"]
    first = state.nonfinite_step
    first.copy_(torch.where((first < 0) & ~torch.isfinite(loss.detach()), state.step, first))

    # 2. backward, per-part clipping, AdamW; the head's W by SGD and the proximal group lasso
    for group in state.adamw.param_groups:
        group["lr"] = lr
    state.adamw.param_groups[0]["weight_decay"] = wd
    state.adamw.zero_grad(set_to_none=True)
    if state.sgd is not None:
        state.sgd.zero_grad(set_to_none=True)
    loss.backward()
    norms = {"grad_norm": float("nan")}
    if cfg.optim.clip_grad > 0:
        # Clipped apart: one global norm would let the head's large gradients (~20x the JEPA
        # ones) shrink the JEPA update and change the encoder's trajectory. (Var-JEPA: no head.)
        jepa_params = [p for n, p in student.named_parameters() if not n.startswith("head.")]
        norms["grad_norm"] = nn.utils.clip_grad_norm_(jepa_params, cfg.optim.clip_grad)
        if student.head is not None:
            head_params = [p for n, p in student.head.named_parameters() if n != "W"]
            norms["head_grad_norm"] = nn.utils.clip_grad_norm_(head_params, cfg.optim.clip_grad)
    elif student.head is not None:
        norms["head_grad_norm"] = float("nan")
    state.adamw.step()
    if state.sgd is not None:
        state.sgd.step()
        prox_group_lasso(student.head.W.data, cfg.sparsity.w_lr * cfg.sparsity.lam)

    # 3. the EMA target
    if not variational:
        ema_update(state.target, student.encoder, momentum)
    state.step += 1
    schedule = {"lr": lr, "wd": wd} if variational else {"lr": lr, "wd": wd, "momentum": momentum}
    return {
        **{k: v.detach() if torch.is_tensor(v) else v for k, v in out.items()},
        **schedule,
        **norms,
    }


def read_metrics(state: TrainState, metrics: dict) -> dict[str, float]:
    """A step's metrics as floats (the one wait for the device); NonFiniteLoss if the loss of any
    step so far was nan / inf."""
    first = state.nonfinite_step
    if state.world > 1:  # every rank stops together, or the others would wait in all_reduce
        first = first.clone()
        dist.all_reduce(first, op=dist.ReduceOp.MAX)
    first = int(first)
    if first >= 0:
        raise NonFiniteLoss(f"the loss became nan / inf at step {first}")
    return {k: float(v) for k, v in metrics.items()}


@torch.no_grad()
def diagnostics(state: TrainState, fixed_images: torch.Tensor) -> dict:
    """On the mean-pooled target features of a fixed batch: RankMe, and the total and between-group
    multiinformation (nats; `theory.monitor`, bias-corrected Gaussian copula, fixed N) over the
    head's G contiguous channel groups; with a head, the groups x latents matrix ||w_j^(g)|| and
    its count of active connections."""
    with state.autocast:
        feats = state.target(fixed_images).float().mean(1)
    out = {"rankme": float(metrics.rankme(feats))}
    if isinstance(state.student, var_jepa.VarJEPA):  # mean of mu over tokens = mu of the mean
        out["rankme_posterior"] = float(metrics.rankme(state.student.posterior(feats)[0]))
    n, d = feats.shape
    if n > d:  # the copula monitor needs a non-singular d x d correlation
        g = state.cfg.sparsity.groups
        mi = theory.monitor(
            feats.cpu().numpy(), [list(range(i * d // g, (i + 1) * d // g)) for i in range(g)]
        )
        out.update(mi_total=mi["total"], mi_between=mi["between"])
    if state.student.head is not None:
        norms = state.student.head.column_norms()
        out["active_connections"] = int((norms > 0).sum())
        out["total_connections"] = norms.numel()
        out["group_matrix"] = [[round(float(v), 5) for v in row] for row in norms.cpu()]
    return out


def _fixed_batch(state: TrainState, n: int = 512) -> torch.Tensor:
    """A seeded random subset of the train images (CIFAR-100 files are sorted by class)."""
    g = torch.Generator().manual_seed(state.cfg.train.seed)
    idx = torch.randperm(len(state.x_train), generator=g)[:n].to(state.x_train.device)
    return augment.normalize(state.x_train[idx], state.mean, state.std)


def _init_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def train(
    cfg: Config,
    out_dir: str | Path,
    *,
    resume: bool | str = True,
    stop_at: int | None = None,
    progress: bool = True,
    dataset=None,
) -> TrainState:
    """Train for cfg.train.epochs, writing metrics.jsonl and ckpt.pt to out_dir.

    resume: True = continue from out_dir/ckpt.pt if present; a path = from that checkpoint;
    False = start fresh: the folder's previous run (ckpt.pt, metrics.jsonl, config.json, probe and
    feature files) is first moved into out_dir/replaced-<time>/ (said on stderr), never mixed in.
    A resumed run's metrics.jsonl is cut back to the checkpoint's step (`run_folder.trim_log`).
    stop_at: stop (with a checkpoint) after this global step, as if killed there.
    One process trains in a folder at a time (`run_folder.locked_run_folder`). A checkpoint is
    written only when every tensor is finite; a loss or state turning nan / inf stops the run
    with NonFiniteLoss saying which checkpoint, if any, is the last good one.
    """
    _init_distributed()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    with run_folder.locked_run_folder(out) if is_main else contextlib.nullcontext():
        if dataset is None:
            dataset = load_training_set(cfg)
        check_training_set(cfg, dataset)
        if cfg.train.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "train.device='cuda': no CUDA device is available here; use "
                "train.device=cpu (or auto)"
            )
        state = build(cfg, dataset)
        ckpt_path = out / "ckpt.pt"
        source = Path(resume) if isinstance(resume, (str, Path)) else ckpt_path
        good = None  # (path, step) of this run's last checkpoint known finite
        if resume and (isinstance(resume, (str, Path)) or ckpt_path.exists()):
            checkpoint.restore(state, checkpoint.load(source, state.device), source)
            good = (source, state.step)
        if is_main:
            if not resume:
                aside = run_folder.set_aside_previous_run(out)
                if aside is not None:
                    print(
                        f"fresh run in {out}: the previous run's files were moved to {aside}",
                        file=sys.stderr,
                    )
            else:
                run_folder.trim_log(out / "metrics.jsonl", state.step)
            (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
        return _loop(state, out, ckpt_path, good, stop_at, progress, is_main)


def _loop(state: TrainState, out: Path, ckpt_path: Path, good, stop_at, progress, is_main):
    """The training loop of `train`: steps, metrics rows, finite checkpoints."""
    cfg = state.cfg

    def stopped(err) -> NonFiniteLoss:
        last = (
            f"the last good checkpoint is {good[0]} (step {good[1]}; a checkpoint is only "
            "written with finite tensors and target features)"
            if good
            else "no good checkpoint of this run exists (none was written before it diverged)"
        )
        return NonFiniteLoss(
            f"{err}. Training stopped; {last}. Lower optim.lr or raise optim.warmup_epochs"
        )

    fixed = _fixed_batch(state)

    def checked(metrics: dict) -> dict[str, float]:
        try:
            return read_metrics(state, metrics)
        except NonFiniteLoss as err:
            raise stopped(err) from None

    @torch.no_grad()
    def check_target() -> None:
        """A nan / inf loss is raised at the next log or checkpoint step (`read_metrics`); the
        target encoder's weights and its features of a few fixed images must be finite too."""
        bad = checkpoint.nonfinite_tensors(state.target.state_dict())
        with state.autocast:
            feats = state.target(fixed[:32]).float()
        if bad or not torch.isfinite(feats).all():
            what = f"{len(bad)} tensors" if bad else "its features of fixed training images"
            raise stopped(
                f"training diverged: after step {state.step} the target encoder holds "
                f"nan / inf values ({what})"
            )

    end = state.total_steps if stop_at is None else min(stop_at, state.total_steps)
    log = open(out / "metrics.jsonl", "a") if is_main else None
    bar = tqdm(
        total=end,
        initial=state.step,
        disable=not (progress and is_main),
        desc=cfg.name,
        dynamic_ncols=True,
    )
    tic = time.perf_counter()
    try:
        while state.step < end:
            m = train_step(state, sample_batch(state, state.step))
            bar.update(1)
            step = state.step
            if step % cfg.train.log_every == 0 or step == end:
                m = checked(m)
                if step % cfg.train.rankme_every == 0 or step == end:
                    check_target()
                    m.update(diagnostics(state, fixed))
                m.update(
                    step=step,
                    epoch=step / state.steps_per_epoch,
                    images_per_s=cfg.train.log_every
                    * cfg.train.batch_size
                    / max(time.perf_counter() - tic, 1e-9),
                )
                tic = time.perf_counter()
                bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{m['lr']:.2e}")
                if log:
                    run_folder.log_row(log, m)
            if step % cfg.train.ckpt_every == 0 or step == end:
                checked({})  # on every rank: under DDP it is a collective
                if is_main:
                    check_target()
                    try:
                        checkpoint.save(ckpt_path, state)
                    except checkpoint.NonFiniteCheckpoint as err:
                        raise stopped(f"training diverged: {err}") from None
                    good = (ckpt_path, step)
    finally:
        bar.close()
        if log:
            log.close()
    return state
