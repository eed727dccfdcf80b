"""Atomic checkpoints holding everything needed to resume a run; loading the target encoder."""

import os
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import Config, ConfigError, from_dict, to_dict


class CheckpointError(RuntimeError):
    pass


def code_version() -> dict:
    """Package version and, when run from a git checkout, the commit hash (else None)."""
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"version": __version__, "git_commit": commit}


def save(path: str | Path, state) -> None:
    """Write the state to `path` atomically: temp file in the same folder, fsync, os.replace."""
    path = Path(path)
    payload = {
        "step": state.step,
        "config": to_dict(state.cfg),
        "student": state.student.state_dict(),
        "target": state.target.state_dict(),
        "adamw": state.adamw.state_dict(),
        "sgd": state.sgd.state_dict() if state.sgd is not None else None,
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
        "code": code_version(),
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by `save`, with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' does not exist; pass the ckpt.pt written by "
            "`sparsejepa train --out DIR` (DIR/ckpt.pt)"
        )
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise CheckpointError(
            f"checkpoint '{path}' is unreadable or corrupt ({type(err).__name__}: "
            f"{err}); re-run training or use an earlier checkpoint"
        ) from None
    missing = (
        {"step", "config", "student", "target", "adamw"} - set(payload)
        if isinstance(payload, dict)
        else {"everything"}
    )
    if missing:
        raise CheckpointError(
            f"'{path}' is not a sparsejepa checkpoint (missing {sorted(missing)})"
        )
    return payload


def config_of(payload: dict) -> Config:
    try:
        return from_dict(payload["config"])
    except ConfigError as err:
        raise CheckpointError(
            f"checkpoint config does not match this code version: {err}"
        ) from None


def restore(state, payload: dict) -> None:
    """Load model, EMA target, optimisers, step and RNG states into a freshly built state."""
    state.student.load_state_dict(payload["student"])
    state.target.load_state_dict(payload["target"])
    state.adamw.load_state_dict(payload["adamw"])
    if state.sgd is not None:
        if payload.get("sgd") is None:
            raise CheckpointError("checkpoint has no sparsity optimiser but sparsity.enabled=true")
        state.sgd.load_state_dict(payload["sgd"])
    state.step = int(payload["step"])
    rng = payload["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def load_target_encoder(path: str | Path, device: torch.device | str = "cpu"):
    """(target encoder in eval mode, config) from a training checkpoint."""
    from .vit import Encoder

    payload = load(path, device)
    cfg = config_of(payload)
    m = cfg.model
    encoder = Encoder(m.img_size, m.patch, m.width, m.depth, m.heads, m.mlp_ratio)
    encoder.load_state_dict(payload["target"])
    return encoder.to(device).eval(), cfg
