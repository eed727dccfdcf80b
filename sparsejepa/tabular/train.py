"""Tabular T-JEPA / Var-T-JEPA training: build the state, one plain `train_step`, resumable loop.

Batch rows, masks and reparameterisation noise come from generators seeded by (seed, step), so a
run resumed from its checkpoint replays exactly the steps of an uninterrupted one. Schedules are
the core's (warm-up + cosine LR, cosine weight decay, linear EMA momentum) plus a linear KL
annealing weight beta for Var-T-JEPA.
"""

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import batch_indices
from ..checkpoint import (
    CheckpointError,
    atomic_torch_save,
    check_resumable,
    code_version,
    read_payload,
)
from ..config import ConfigError
from ..data import DatasetError
from ..metrics import rankme
from ..run_folder import log_row
from ..runtime import NonFiniteLoss, resolve_device, seeded_generator
from ..schedules import cosine_lr, cosine_wd, ema_momentum
from ..train import ema_update
from ..vit import gather_tokens
from .config import TabularConfig, from_dict, to_dict
from .data import Table, load_table
from .masks import sample_feature_masks
from .models import TJEPA, VarTJEPA, elbo_loss


@dataclass
class TabState:
    cfg: TabularConfig
    device: torch.device
    model: nn.Module  # TJEPA or VarTJEPA: everything that receives gradients
    target: nn.Module | None  # T-JEPA's EMA target backbone; None for Var-T-JEPA
    optimizer: torch.optim.AdamW
    x_num: torch.Tensor  # train split on the device
    x_cat: torch.Tensor
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    seconds: float = 0.0  # training wall-clock time, summed over resumed runs


@dataclass
class Batch:
    x_num: torch.Tensor
    x_cat: torch.Tensor
    context_idx: torch.Tensor  # (B, 1 + Kc)
    target_idx: torch.Tensor  # (B, M, Kt)
    step: int


def build_model(cfg: TabularConfig, table: Table) -> nn.Module:
    n_num, cards = table.x_num_train.shape[1], table.cardinalities
    if cfg.model.method == "t_jepa":
        return TJEPA(n_num, cards, cfg.model)
    return VarTJEPA(n_num, cards, cfg.model, cfg.var)


def _param_groups(model: nn.Module):
    """AdamW groups: weight matrices decay; biases, norms, tokens and feature embeddings do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        embedding = "token" in name or "tokenizer" in name
        (no_decay if p.ndim < 2 or embedding else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def build(cfg: TabularConfig, table: Table, device: torch.device | None = None) -> TabState:
    device = device or resolve_device(cfg.train.device)
    if table.n_features < 2:
        raise DatasetError(f"table '{table.name}' has {table.n_features} features; JEPA needs >= 2")
    n, batch = len(table.y_train), cfg.train.batch_size
    if batch > n:
        raise ConfigError(
            f"train.batch_size {batch} exceeds the {n} training rows of "
            f"'{table.name}'; lower it, e.g. --set train.batch_size={n // 2}"
        )
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, table).to(device)
    target = None
    if cfg.model.method == "t_jepa":
        target = copy.deepcopy(model.backbone).requires_grad_(False)
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        _param_groups(model), lr=o.lr, betas=o.betas, weight_decay=o.wd_start
    )
    steps_per_epoch = n // batch
    state = TabState(
        cfg,
        device,
        model,
        target,
        optimizer,
        torch.as_tensor(table.x_num_train, device=device),
        torch.as_tensor(table.x_cat_train, device=device),
        steps_per_epoch,
        max(1, math.ceil(cfg.train.epochs * steps_per_epoch)),
    )
    return state


def sample_batch(state: TabState, step: int) -> Batch:
    """Rows and masks of step `step`: a pure function of (seed, step)."""
    cfg, dev = state.cfg, state.device
    idx = batch_indices(len(state.x_num), cfg.train.batch_size, step, cfg.train.seed, dev)
    m = cfg.mask
    masks = sample_feature_masks(
        len(idx),
        state.model.backbone.n_tokens - 1,
        seeded_generator(torch.device("cpu"), cfg.train.seed, step, 2),
        m.num_targets,
        m.context_share,
        m.target_share,
    )
    return Batch(
        state.x_num[idx], state.x_cat[idx], masks.context.to(dev), masks.targets.to(dev), step
    )


def schedules(state: TabState, step: int) -> dict[str, float]:
    """lr, weight decay, EMA momentum (T-JEPA) and KL weight beta (Var-T-JEPA) at `step`:
    beta = min(1, step / (anneal_epochs * steps_per_epoch))."""
    o, total = state.cfg.optim, state.total_steps
    warmup = round(o.warmup_epochs * state.steps_per_epoch)
    anneal = state.cfg.var.anneal_epochs * state.steps_per_epoch
    return {
        "lr": cosine_lr(step, total, warmup, o.lr, o.final_lr, o.start_lr),
        "wd": cosine_wd(step, total, o.wd_start, o.wd_end),
        "momentum": ema_momentum(step, total, o.ema_start, o.ema_end),
        "beta": min(1.0, step / anneal) if anneal > 0 else 1.0,
    }


def compute_loss(state: TabState, batch: Batch, beta: float) -> dict[str, torch.Tensor]:
    model, cfg = state.model, state.cfg
    if state.target is None:
        noise = seeded_generator(state.device, cfg.train.seed, batch.step, 3)
        out = model(batch.x_num, batch.x_cat, batch.context_idx, batch.target_idx, noise)
        out["loss"] = elbo_loss(out, cfg.var, beta, model.backbone.n_tokens - 1)
        return out
    b, m, lt = batch.target_idx.shape
    with torch.no_grad():
        t = state.target(batch.x_num, batch.x_cat)
        if cfg.model.layer_norm_targets:
            t = F.layer_norm(t, t.shape[-1:])
        targets = gather_tokens(t, batch.target_idx.reshape(b, m * lt)).reshape(b * m, lt, -1)
    return model(
        batch.x_num, batch.x_cat, batch.context_idx, batch.target_idx, targets, cfg.optim.loss
    )


def train_step(state: TabState, batch: Batch) -> dict[str, float]:
    """One step: scheduled lr / wd, loss, backward, clip, AdamW, EMA update (T-JEPA)."""
    sched = schedules(state, state.step)
    for group in state.optimizer.param_groups:
        group["lr"] = sched["lr"]
    state.optimizer.param_groups[0]["weight_decay"] = sched["wd"]
    out = compute_loss(state, batch, sched["beta"])
    loss = out["loss"]
    if not torch.isfinite(loss):
        raise NonFiniteLoss(
            f"loss became {loss.item()} at step {state.step} "
            f"({ {k: v.item() for k, v in out.items()} })"
        )
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = float("nan")
    if state.cfg.optim.clip_grad > 0:
        grad_norm = float(
            nn.utils.clip_grad_norm_(state.model.parameters(), state.cfg.optim.clip_grad)
        )
    state.optimizer.step()
    if state.target is not None:
        ema_update(state.target, state.model.backbone, sched["momentum"])
    state.step += 1
    result = {k: float(v.detach()) for k, v in out.items()}
    result.update(sched, grad_norm=grad_norm)
    return result


def encoder_of(state: TabState) -> nn.Module:
    """The backbone used for embeddings: T-JEPA's EMA target, Var-T-JEPA's (only) backbone."""
    return state.target if state.target is not None else state.model.backbone


# ----------------------------------------------------------------------------- checkpoints


def save(path: str | Path, state: TabState) -> None:
    """Write the state to `path` atomically (`checkpoint.atomic_torch_save`). Only tensors and
    plain types, so `load` reads it with `torch.load(weights_only=True)`; no RNG state is needed
    to resume, as every random draw comes from a generator seeded by (seed, step)."""
    atomic_torch_save(
        path,
        {
            "kind": "sparsejepa.tabular",
            "step": state.step,
            "seconds": state.seconds,
            "config": to_dict(state.cfg),
            "model": state.model.state_dict(),
            "target": state.target.state_dict() if state.target is not None else None,
            "optimizer": state.optimizer.state_dict(),
            "code": code_version(),
        },
    )


def load(path: str | Path, device="cpu") -> dict:
    """Read a checkpoint written by `save` with `torch.load(weights_only=True)`; CheckpointError
    (as `checkpoint.load`) for a missing, corrupt, foreign or unsafe (pickled objects) file."""
    path = Path(path)
    payload = read_payload(path, device, "sparsejepa tabular train")
    if not isinstance(payload, dict) or payload.get("kind") != "sparsejepa.tabular":
        raise CheckpointError(f"'{path}' is not a sparsejepa tabular checkpoint")
    missing = {"step", "seconds", "config", "model", "target", "optimizer"} - set(payload)
    if missing:
        raise CheckpointError(
            f"'{path}' lacks {sorted(missing)} (written by an older version); "
            "train again with --fresh"
        )
    return payload


def restore(state: TabState, payload: dict, source: str | Path = "the checkpoint") -> None:
    check_resumable(to_dict(from_dict(payload["config"])), to_dict(state.cfg), source)
    state.model.load_state_dict(payload["model"])
    if state.target is not None:
        state.target.load_state_dict(payload["target"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step = int(payload["step"])
    state.seconds = float(payload["seconds"])


def load_trained(path: str | Path, table: Table | None = None, device="cpu") -> TabState:
    """A TabState (eval mode) from a checkpoint; loads the config's table unless given."""
    payload = load(path, device)
    cfg = from_dict(payload["config"])
    state = build(cfg, table if table is not None else load_table(cfg.data), torch.device(device))
    restore(state, payload)
    return state


# ----------------------------------------------------------------------------- loop


def train(
    cfg: TabularConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    stop_at: int | None = None,
    table: Table | None = None,
    log=print,
) -> TabState:
    """Train for cfg.train.epochs, writing config.json, metrics.jsonl and ckpt.pt to out_dir.

    resume: continue from out_dir/ckpt.pt when present. stop_at: stop (with a checkpoint) after
    this global step, as if killed there. `log` gets one line per log_every steps (None: quiet).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = table if table is not None else load_table(cfg.data)
    state = build(cfg, table)
    ckpt = out / "ckpt.pt"
    if resume and ckpt.exists():
        restore(state, load(ckpt, state.device), ckpt)
    (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    fixed = (
        torch.as_tensor(table.x_num_train[:512], device=state.device),
        torch.as_tensor(table.x_cat_train[:512], device=state.device),
    )
    end = state.total_steps if stop_at is None else min(stop_at, state.total_steps)
    tic = time.perf_counter()
    with open(out / "metrics.jsonl", "a") as metrics_file:
        while state.step < end:
            try:
                step_tic = time.perf_counter()
                m = train_step(state, sample_batch(state, state.step))
                state.seconds += time.perf_counter() - step_tic
            except NonFiniteLoss as err:
                raise NonFiniteLoss(
                    f"{err}. The last good checkpoint is kept at {ckpt} "
                    "(lower optim.lr or raise optim.warmup_epochs)"
                ) from None
            step = state.step
            if step % cfg.train.log_every == 0 or step == end:
                if step % cfg.train.rankme_every == 0 or step == end:
                    with torch.no_grad():
                        m["rankme"] = rankme(encoder_of(state)(*fixed).mean(1))
                m.update(
                    step=step, epoch=step / state.steps_per_epoch, seconds=time.perf_counter() - tic
                )
                log_row(metrics_file, m)
                if log:
                    log(
                        f"[{cfg.name}] step {step}/{end} loss {m['loss']:.4f} "
                        f"lr {m['lr']:.2e}"
                        + (f" rankme {m['rankme']:.1f}" if "rankme" in m else "")
                    )
            if step % cfg.train.ckpt_every == 0 or step == end:
                save(ckpt, state)
    return state
