"""A training run's state: models, optimisers and the on-device training set, from a config."""

import contextlib
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from . import data, var_jepa
from .config import Config
from .runtime import resolve_device, use_bf16
from .sparsity import w_learning_rate
from .student import Student
from .vit import Encoder


@dataclass
class TrainState:
    cfg: Config
    device: torch.device
    student: Student | var_jepa.VarJEPA
    model: nn.Module  # the student as called in the forward pass (DDP / compiled wrapper)
    target: Encoder  # var_jepa: the student's own encoder (no EMA)
    adamw: torch.optim.AdamW
    sgd: torch.optim.SGD | None
    x_train: torch.Tensor  # uint8 (N, H, W, 3) on device
    mean: tuple
    std: tuple
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    rank: int = 0
    world: int = 1
    # The first step whose loss was nan / inf (-1: none), kept on the device so that a step never
    # waits for the device; `read_metrics` checks it.
    nonfinite_step: torch.Tensor = field(default_factory=lambda: torch.tensor(-1))

    @property
    def autocast(self):
        if use_bf16(self.cfg.train.precision, self.device):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _param_groups(student: Student):
    """AdamW groups (decay: weight matrices; none: biases, norms, mask token) and the W group."""
    decay, no_decay, w = [], [], []
    for name, p in student.named_parameters():
        if name == "head.W":
            w.append(p)
        elif p.ndim < 2 or "mask_token" in name or name.startswith("head.gen_b"):
            no_decay.append(p)
        else:
            decay.append(p)
    return decay, no_decay, w


def load_training_set(cfg: Config) -> data.ImageDataset:
    """The ImageDataset `cfg.data` names (path, download, subset sizes; subsets drawn with
    `train.seed`)."""
    d = cfg.data
    return data.load_dataset(
        d.dataset,
        path=d.path,
        download=d.download,
        seed=cfg.train.seed,
        n_train=d.n_train,
        n_test=d.n_test,
    )


def build(cfg: Config, dataset, device: torch.device | None = None) -> TrainState:
    """Models, optimisers and the on-device training set from a config and an ImageDataset."""
    device = device or resolve_device(cfg.train.device)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if cfg.train.batch_size % world:
        raise ValueError(
            f"train.batch_size {cfg.train.batch_size} not divisible by {world} processes"
        )
    size = cfg.model.img_size
    if tuple(dataset.x_train.shape[1:]) != (size, size, 3):
        raise ValueError(
            f"dataset images {tuple(dataset.x_train.shape[1:])} do not match "
            f"model.img_size={size}; set model.img_size"
        )
    steps_per_epoch = len(dataset.x_train) // cfg.train.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"train.batch_size {cfg.train.batch_size} > {len(dataset.x_train)} images")
    torch.manual_seed(cfg.train.seed)
    if cfg.method == "var_jepa":
        student = var_jepa.VarJEPA(cfg).to(device)
        target = student.encoder  # no EMA: probes and diagnostics read the posterior encoder
    else:
        student = Student(cfg).to(device)
        target = Encoder.from_config(cfg.model).to(device)
        target.load_state_dict(student.encoder.state_dict())
        target.requires_grad_(False)
    decay, no_decay, w = _param_groups(student)
    o = cfg.optim
    adamw = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o.wd_start}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o.lr,
        betas=o.betas,
        fused=True,
    )
    w_lr = w_learning_rate(cfg.sparsity, cfg.model.width)
    sgd = torch.optim.SGD(w, lr=w_lr, momentum=0.0, weight_decay=0.0) if w else None
    model: nn.Module = student
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            student, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.train.compile:
        model = torch.compile(model)
    return TrainState(
        cfg=cfg,
        device=device,
        student=student,
        model=model,
        target=target,
        adamw=adamw,
        sgd=sgd,
        x_train=torch.as_tensor(dataset.x_train).to(device),
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        steps_per_epoch=steps_per_epoch,
        total_steps=max(1, round(cfg.train.epochs * steps_per_epoch)),
        rank=rank,
        world=world,
        nonfinite_step=torch.tensor(-1, device=device),
    )
