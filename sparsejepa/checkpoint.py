"""Atomic checkpoints holding everything needed to resume a run; loading the target encoder.

A checkpoint holds only tensors and plain Python types (the numpy RNG state is stored as a tensor
plus numbers), so it is read with `torch.load(weights_only=True)`: loading never runs code from the
file. With a sparsity head it also holds the head's group-connectivity matrix (`group_matrix`,
groups x latents column norms of W) for the figures.
"""

import contextlib
import os
import pickle
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import torch

from .config import Config, ConfigError, from_dict, to_dict
from .version import __version__
from .vit import Encoder


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, unsafe to load or does not fit this code."""


class NonFiniteCheckpoint(CheckpointError):
    """A state to save, or a saved one, holds nan / inf values: never written, never loaded."""


def _git(*args: str) -> str | None:
    """stdout of a git command in this package's folder, None outside a checkout or on error.
    --no-optional-locks: `git status` must not take the index lock, which a timed-out (killed)
    git would leave behind, breaking the user's next git command."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict:
    """Package version and, from a git checkout, the commit hash and whether tracked files had
    uncommitted changes (`dirty`); None for both outside a checkout."""
    commit = _git("rev-parse", "HEAD") or None
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "version": __version__,
        "git_commit": commit,
        "dirty": None if status is None else bool(status),
    }


def save(path: str | Path, state) -> None:
    """Write the state to `path` atomically (`atomic_torch_save`)."""
    payload = {
        "step": state.step,
        "config": to_dict(state.cfg),
        "student": state.student.state_dict(),
        "target": state.target.state_dict(),
        "adamw": state.adamw.state_dict(),
        "sgd": state.sgd.state_dict() if state.sgd is not None else None,
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_rng_state(),
            "python": random.getstate(),
        },
        "code": code_version(),
    }
    head = getattr(state.student, "head", None)
    if head is not None:
        payload["group_matrix"] = head.column_norms().cpu()
    bad = nonfinite_tensors(payload)
    if bad:
        raise NonFiniteCheckpoint(
            f"the state at step {state.step} holds nan / inf values in {len(bad)} tensors "
            f"({_names(bad)}), so {path} was not written"
        )
    atomic_torch_save(path, payload)


def nonfinite_tensors(tree, prefix: str = "") -> list[str]:
    """Dotted names of the floating-point tensors in a nested dict / list / tuple that hold a nan
    or an inf."""
    if isinstance(tree, torch.Tensor):
        finite = not tree.is_floating_point() or bool(torch.isfinite(tree).all())
        return [] if finite else [prefix.rstrip(".") or "tensor"]
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, (list, tuple))
        else ()
    )
    return [name for key, value in items for name in nonfinite_tensors(value, f"{prefix}{key}.")]


def _names(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )


def atomic_torch_save(path: str | Path, payload) -> None:
    """`torch.save(payload)` to `path` atomically: temp file in the same folder, fsync,
    os.replace, so a crash mid-write leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _numpy_rng_state() -> dict:
    """numpy's legacy global RNG state as a tensor and plain numbers (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_rng_state(saved: dict) -> None:
    keys = saved["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
    )


def load(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by `save` with `torch.load(weights_only=True)`.

    Raises CheckpointError for a missing, truncated or corrupt file, and for a file that holds
    pickled objects other than tensors and plain types (such a file is refused, never executed).
    """
    path = Path(path)
    payload = read_payload(path, device, "sparsejepa train")
    missing = (
        {"step", "config", "student", "target", "adamw"} - set(payload)
        if isinstance(payload, dict)
        else {"everything"}
    )
    if missing:
        raise CheckpointError(
            f"'{path}' is not a sparsejepa checkpoint (missing {sorted(missing)})"
        )
    bad = nonfinite_tensors(payload)
    if bad:
        raise NonFiniteCheckpoint(
            f"checkpoint '{path}' holds nan / inf values in {len(bad)} tensors ({_names(bad)}): "
            "it was written after training diverged (by a sparsejepa that did not check), so it "
            "is not resumed, probed or exported. Use an earlier checkpoint, or train again "
            "(`--fresh`) with a lower optim.lr"
        )
    return payload


def read_payload(path: str | Path, device: torch.device | str, command: str):
    """The object stored in checkpoint file `path`, read with `torch.load(weights_only=True)`.

    Raises CheckpointError for a missing (naming `command`, which writes DIR/ckpt.pt with
    `--out DIR`), truncated or corrupt file, and for a file that holds pickled objects other than
    tensors and plain types (such a file is refused, never executed).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a folder; pass the ckpt.pt file in it")
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' does not exist; pass the ckpt.pt written by "
            f"`{command} --out DIR` (DIR/ckpt.pt)"
        )
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if unsafe is None:
            raise _corrupt(path, err) from None
        raise CheckpointError(
            f"checkpoint '{path}' holds a pickled object ({unsafe.group(1)}) besides tensors and "
            "plain types, so it is not loaded: loading it could run code from the file. A "
            "checkpoint of an older sparsejepa (pickled numpy RNG state) or of another program "
            "cannot be resumed; re-run training to write a safe one"
        ) from None
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise _corrupt(path, err) from None


def _corrupt(path: Path, err: Exception) -> CheckpointError:
    text = str(err)
    reason = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    lines = [line for line in text.splitlines() if line.strip()]
    detail = reason.group(1) if reason else (lines[-1] if lines else "")
    return CheckpointError(
        f"checkpoint '{path}' is unreadable or corrupt ({type(err).__name__}: {detail}); "
        "re-run training or use an earlier checkpoint"
    )


def config_of(payload: dict) -> Config:
    """The run's Config, or CheckpointError when it does not fit this code version."""
    if not isinstance(payload.get("config"), dict):
        raise CheckpointError("the checkpoint's config is not a mapping; the file is corrupt")
    try:
        return from_dict(payload["config"])
    except ConfigError as err:
        raise CheckpointError(
            f"checkpoint config does not match this code version: {err}"
        ) from None


# Settings a resumed run may change: bookkeeping, where the data lives, how the machine it continues
# on runs it, and the evaluation. Anything else changes the run (train.epochs moves every
# schedule), so resuming would not continue it exactly.
RESUMABLE_KEYS = {
    "name",
    "data.path",
    "data.download",
    "train.device",
    "train.precision",
    "train.compile",
    "train.log_every",
    "train.rankme_every",
    "train.ckpt_every",
}
RESUMABLE_SECTIONS = ("probe.", "eval.")


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = list(value) if isinstance(value, tuple) else value
    return out


def config_changes(saved: dict, now: dict) -> list[str]:
    """'key: old -> new' for each setting in which two configs (`to_dict` trees, the saved one
    completed with this code's defaults) differ, apart from those a resumed run may change and
    the settings of a sparsity head that neither run has."""
    a, b = _flat(saved), _flat(now)
    ignored = RESUMABLE_SECTIONS
    if not a.get("sparsity.enabled") and not b.get("sparsity.enabled"):
        ignored = (*RESUMABLE_SECTIONS, "sparsity.")
    keys = sorted(
        k
        for k in a.keys() | b.keys()
        if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS and not k.startswith(ignored)
    )
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def check_resumable(saved: dict, now: dict, source: str | Path = "the checkpoint") -> None:
    """CheckpointError naming the settings in which `now` differs from the run of `source`."""
    changes = config_changes(saved, now)
    if changes:
        raise CheckpointError(
            f"{source} was trained with other settings ({'; '.join(changes)}); continuing it with "
            "these would not resume that run. Use the run's own settings, or start a new run in "
            "another folder (`sparsejepa train --fresh` starts over in this one, moving the old "
            "run's files to a replaced-<time>/ subfolder)"
        )


def restore(state, payload: dict, source: str | Path = "the checkpoint") -> None:
    """Load model, EMA target, optimisers, step and RNG states into a freshly built state whose
    config matches the checkpoint's (`check_resumable`)."""
    check_resumable(to_dict(config_of(payload)), to_dict(state.cfg), source)
    with _does_not_fit(source, "the model and optimisers its config builds"):
        state.student.load_state_dict(payload["student"])
        state.target.load_state_dict(payload["target"])
        state.adamw.load_state_dict(payload["adamw"])
        if state.sgd is not None:  # sparsity.enabled is the same, so the checkpoint has it too
            state.sgd.load_state_dict(payload["sgd"])
        step = int(payload["step"])
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        _set_numpy_rng_state(rng["numpy"])
        random.setstate(rng["python"])
    state.step = step


@contextlib.contextmanager
def _does_not_fit(source, what: str):
    """Turn the errors of loading a checkpoint's contents (a tensor missing or of another shape,
    an entry of the wrong type) into one CheckpointError naming the file."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise CheckpointError(
            f"{source} does not fit {what} ({type(err).__name__}: {first}); the file is "
            "incomplete, edited or from another code version: use an intact checkpoint or "
            "train again"
        ) from None


def load_target_encoder(path: str | Path, device: torch.device | str = "cpu"):
    """(target encoder in eval mode, config) from a training checkpoint."""
    payload = load(path, device)
    cfg = config_of(payload)
    return fit_encoder(cfg, payload["target"], path).to(device).eval(), cfg


def fit_encoder(cfg: Config, tensors, source):
    """The encoder of `cfg` holding `tensors` (a checkpoint's target state dict); CheckpointError
    naming `source` when a tensor is missing, extra or of another shape."""
    encoder = Encoder.from_config(cfg.model)
    with _does_not_fit(source, "the encoder its config builds"):
        encoder.load_state_dict(tensors)
    return encoder
