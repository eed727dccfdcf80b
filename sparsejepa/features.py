"""Pooled features of a frozen encoder, as the probes read them, with an on-disk cache.

As in I-JEPA: the average-pooled tokens of the last layer ("last", D) or the concatenation of the
pooled last 4 layers ("last4", 4D). The cache is keyed by a fingerprint of the encoder weights, the
images and their normalisation.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .augment import normalize
from .data import ImageDataset

FEATURE_SETS = ("last", "last4")


def _normalized_batches(x_uint8: np.ndarray, mean, std, device, batch_size: int):
    """Normalised (B, 3, H, W) batches of uint8 (N, H, W, 3) images, on `device`."""
    x_uint8 = np.asarray(x_uint8)
    if x_uint8.dtype != np.uint8 or x_uint8.ndim != 4 or x_uint8.shape[-1] != 3 or not len(x_uint8):
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x_uint8.dtype} {x_uint8.shape}")
    for start in range(0, len(x_uint8), batch_size):
        batch = torch.from_numpy(x_uint8[start : start + batch_size]).to(device)
        yield normalize(batch, mean, std)


def extract_features(
    encoder: torch.nn.Module,
    x_uint8: np.ndarray,
    mean,
    std,
    *,
    device: torch.device | str,
    batch_size: int = 512,
) -> dict[str, np.ndarray]:
    """Pooled features of uint8 (N, H, W, 3) images: {"last": (N, D), "last4": (N, L*D)} float32.

    Calls `encoder.layer_outputs(images, L)` with L = min(4, len(encoder.blocks)), which returns
    the last L layers' (B, T, D) tokens (final-LayerNormed), last layer last; each is averaged over
    tokens. Runs in eval mode under inference_mode and restores the encoder's mode afterwards.
    """
    if not hasattr(encoder, "layer_outputs"):
        raise TypeError("extract_features needs an encoder with layer_outputs(images, n_last)")
    n_last = min(4, len(encoder.blocks)) if hasattr(encoder, "blocks") else 4
    was_training = encoder.training
    encoder.eval()
    last, last4 = [], []
    try:
        with torch.inference_mode():
            for batch in _normalized_batches(x_uint8, mean, std, device, batch_size):
                layers = encoder.layer_outputs(batch, n_last)
                if not layers or any(t.ndim != 3 or t.shape[0] != len(batch) for t in layers):
                    shapes = [tuple(t.shape) for t in layers]
                    raise ValueError(f"layer_outputs must return (B, T, D) tensors, got {shapes}")
                pooled = [t.float().mean(dim=1) for t in layers]
                last.append(pooled[-1].cpu())
                last4.append(torch.cat(pooled, dim=1).cpu())
    finally:
        encoder.train(was_training)
    return {"last": torch.cat(last).numpy(), "last4": torch.cat(last4).numpy()}


def _fingerprint(encoder: torch.nn.Module, dataset: ImageDataset) -> str:
    """sha256 of what the features depend on: encoder weights, images and normalisation."""
    digest = hashlib.sha256(f"{dataset.name}|{dataset.mean}|{dataset.std}".encode())
    for array in (dataset.x_train, dataset.x_test):
        digest.update(str(array.shape).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cached_features(
    encoder: torch.nn.Module,
    dataset: ImageDataset,
    *,
    device: torch.device | str,
    cache_path: str | os.PathLike | None = None,
    batch_size: int = 512,
) -> tuple[dict[str, np.ndarray], bool]:
    """Features of both splits as {"train_last", "train_last4", "test_last", "test_last4"}.

    With `cache_path` they are loaded from there when its stored fingerprint matches, and written
    there atomically otherwise; an unreadable cache (truncated, corrupt, not an npz, arrays
    missing) is discarded with a warning and recomputed. Returns (features, loaded_from_cache).
    """
    fingerprint = _fingerprint(encoder, dataset) if cache_path is not None else ""
    if cache_path is not None and Path(cache_path).is_file():
        try:
            with np.load(cache_path, allow_pickle=False) as cached:
                if str(cached.get("fingerprint", "")) == fingerprint:
                    keys = [f"{split}_{k}" for split in ("train", "test") for k in FEATURE_SETS]
                    return {k: np.asarray(cached[k]) for k in keys}, True
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(
                f"feature cache {cache_path} is unreadable ({type(err).__name__}: "
                f"{err}); discarding it and recomputing the features",
                stacklevel=2,
            )
            Path(cache_path).unlink(missing_ok=True)
    features = {}
    for split, images in (("train", dataset.x_train), ("test", dataset.x_test)):
        out = extract_features(
            encoder, images, dataset.mean, dataset.std, device=device, batch_size=batch_size
        )
        features.update({f"{split}_{k}": v for k, v in out.items()})
    if cache_path is not None:
        path = Path(cache_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
            np.savez(tmp, fingerprint=np.array(fingerprint), **features)
        os.replace(tmp.name, path)
    return features, False


def head_features(
    encoder: torch.nn.Module,
    head: torch.nn.Module,
    x_uint8: np.ndarray,
    mean,
    std,
    *,
    pool: bool,
    device: torch.device | str,
    batch_size: int = 512,
) -> dict[str, np.ndarray]:
    """The sparsity head's embeddings of whole images through `encoder`'s last-layer tokens h:
    {"z": (N, K) posterior means mu(h), "generated": (N, D) generator outputs f(mu(h))}, each
    averaged over an image's tokens; with `pool` the head reads the mean token, as it trained."""
    z, generated = [], []
    with torch.inference_mode():
        for batch in _normalized_batches(x_uint8, mean, std, device, batch_size):
            h = encoder.layer_outputs(batch, 1)[-1].float()
            samples = h.mean(1) if pool else h.reshape(-1, h.shape[-1])
            mu = head.encoder(samples).chunk(2, dim=-1)[0]
            out = head.decode(mu)
            if not pool:
                mu, out = (t.reshape(len(batch), -1, t.shape[-1]).mean(1) for t in (mu, out))
            z.append(mu.cpu())
            generated.append(out.cpu())
    return {"z": torch.cat(z).numpy(), "generated": torch.cat(generated).numpy()}
