"""Released encoders: target-encoder weights as safetensors plus a manifest; never unpickled.

A release folder (default `checkpoints/` of this repository, or env SPARSEJEPA_CHECKPOINTS) holds
    NAME.safetensors      the target encoder's state dict in float16 (half the bytes; the pooled
                          features move by 2e-4 relative, kNN accuracy unchanged:
                          docs/reproduction.md), metadata: the config sha256
    NAME.metrics.jsonl    the run's training log (the curves of notebook 03), when it had one
    MANIFEST.json         {"format": 1, "entries": {NAME: entry}}
An entry records the file names with their sha256 and size, the full run config, the code version
that trained it, the training step, the probe results per dataset, the sparsity head's
groups x latents connectivity matrix (column norms of W; None for JEPA), and what an image must
look like for the encoder: `img_size` and the training set's per-channel `mean`/`std` of x/255
(`Release.transform` applies them, `Release.embed` returns pooled features). Its `entry_sha256`
covers everything else in the entry (the numbers the notebooks and figures draw), so an edited
number is caught when the manifest is read; `seal` records new checksums after a deliberate edit.

`publish.export(run_dir, name)` writes one entry from a training run folder. `load(name_or_path)`
checks the sha256 of every file and that the weights fit the recorded config, with errors that say
what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from .config import Config, ConfigError, from_dict, to_dict
from .data.common import sha256_of
from .vit import Encoder

MANIFEST = "MANIFEST.json"
FORMAT = 1
ENV_DIR = "SPARSEJEPA_CHECKPOINTS"


class ReleaseError(RuntimeError):
    """A released encoder is missing, fails its checksum or does not match its manifest."""


@dataclass
class Release:
    """A released encoder and what the manifest says about it."""

    name: str
    encoder: torch.nn.Module  # target encoder, eval mode
    config: Config
    probes: dict  # {dataset: run_probes() result}
    group_matrix: np.ndarray | None  # (groups, latents) column norms of W; None for JEPA
    history: list[dict] = field(default_factory=list)  # metrics.jsonl records
    code: dict = field(default_factory=dict)  # {"version", "git_commit"} of the training code
    step: int = 0
    timing: dict = field(default_factory=dict)  # as recorded by `reproduce`: train_s, probe_s, ...
    mean: tuple[float, float, float] | None = None  # input normalisation of training (x/255 scale)
    std: tuple[float, float, float] | None = None
    img_size: int = 32  # the side of the square images the encoder takes

    @property
    def method(self) -> str:
        return method_of(self.config)

    def transform(self, images) -> torch.Tensor:
        """Images as the encoder takes them: uint8 (H, W, 3) or (N, H, W, 3) arrays / tensors, or
        float tensors (N, 3, H, W) in [0, 1] (torchvision's ToTensor), -> float32 (N, 3, S, S)
        normalised with the training set's mean/std, resized to S = img_size when needed."""
        if self.mean is None or self.std is None:
            raise ReleaseError(
                f"release {self.name!r} records no input normalisation (an older export); "
                "re-export it with `sparsejepa export` or `sparsejepa reproduce`"
            )
        return transform(images, self.mean, self.std, self.img_size)

    @torch.no_grad()
    def embed(self, images, batch_size: int = 256) -> torch.Tensor:
        """(N, D) mean-pooled last-layer features (what the linear probes read) of images in any
        form `transform` takes; on the encoder's device, returned on the CPU."""
        x = self.transform(images)
        device = next(self.encoder.parameters()).device
        out = [
            self.encoder(x[i : i + batch_size].to(device)).float().mean(1).cpu()
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(out)


def transform(images, mean, std, img_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) / (N, H, W, 3) or float (N, 3, H, W) in [0, 1] -> normalised float32
    (N, 3, img_size, img_size); bilinear (antialiased) resizing when the size differs."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dtype == torch.uint8:
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(
                f"uint8 images must be (H, W, 3) or (N, H, W, 3), got {tuple(x.shape)}"
            )
        x = x.permute(0, 3, 1, 2).float() / 255.0
    elif x.is_floating_point():
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"float images must be (3, H, W) or (N, 3, H, W) in [0, 1], got {tuple(x.shape)}"
            )
        x = x.float()
    else:
        raise ValueError(f"images must be uint8 (N, H, W, 3) or float (N, 3, H, W), got {x.dtype}")
    if x.shape[-2:] != (img_size, img_size):
        x = torch.nn.functional.interpolate(
            x, size=(img_size, img_size), mode="bilinear", antialias=True, align_corners=False
        )
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def method_of(cfg: Config) -> str:
    """ "Var-JEPA" for method var_jepa, "SparseJEPA" with the sparsity head, else "JEPA"; with
    model.conditioning=ec "EC-IJEPA" (or "EC-SparseJEPA")."""
    if cfg.method == "var_jepa":
        return "Var-JEPA"
    if cfg.model.conditioning == "ec":
        return "EC-SparseJEPA" if cfg.sparsity.enabled else "EC-IJEPA"
    return "SparseJEPA" if cfg.sparsity.enabled else "JEPA"


def default_dir() -> Path:
    """env SPARSEJEPA_CHECKPOINTS, else the `checkpoints/` folder of this repository: next to the
    package in a clone or an editable install, else that of the clone `pip install` was run on."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    beside = Path(__file__).resolve().parents[1] / "checkpoints"
    clone = _installed_from()
    if not (beside / MANIFEST).is_file() and clone and (clone / "checkpoints" / MANIFEST).is_file():
        return clone / "checkpoints"
    return beside


def _installed_from() -> Path | None:
    """The local folder this copy of the package was pip-installed from (PEP 610 direct_url.json
    of the metadata installed beside it), if any."""
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    site = Path(__file__).resolve().parents[1]
    for dist in metadata.distributions(name="sparsejepa"):
        if Path(str(dist.locate_file(""))).resolve() != site:
            continue  # e.g. a build's sparsejepa.egg-info in a clone on sys.path
        try:
            url = urlparse(json.loads(dist.read_text("direct_url.json") or "")["url"])
        except (ValueError, KeyError, TypeError):
            return None
        return Path(unquote(url.path)) if url.scheme == "file" else None
    return None


def _not_found_hint(folder: Path) -> str:
    """Where releases are looked for and how to point there."""
    clone = _installed_from()
    where = (
        f"`export {ENV_DIR}={clone / 'checkpoints'}` (the folder of the clone this package "
        "was installed from)"
        if clone
        else f"`export {ENV_DIR}=/path/to/your/clone/checkpoints` (the `checkpoints/` folder of a "
        "clone of this repository)"
    )
    return (
        f"releases are looked for in {folder} (env {ENV_DIR}, else the `checkpoints/` folder "
        f"of the clone); set {where}, or run `sparsejepa reproduce` to train them (hours)"
    )


def config_sha256(config: dict) -> str:
    """sha256 of the canonical JSON of a config dict (sorted keys, tuples as lists)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(directory: str | Path | None = None) -> dict:
    """{"format": 1, "entries": {...}} of a release folder (no entries without a manifest)."""
    directory = Path(directory) if directory is not None else default_dir()
    path = directory / MANIFEST
    if not path.is_file():
        return {"format": FORMAT, "entries": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReleaseError(
            f"{path} is not readable JSON ({err}); restore it from git or re-run "
            "`sparsejepa reproduce` / `sparsejepa export`"
        ) from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("entries"), dict)
    ):
        raise ReleaseError(
            f"{path}: expected a manifest of format {FORMAT} with 'entries'; it was written by "
            "another version of sparsejepa or by hand"
        )
    for name, entry in manifest["entries"].items():
        missing = [
            k for k in ("file", "sha256", "config") if not isinstance(entry, dict) or k not in entry
        ]
        if missing:
            raise ReleaseError(
                f"{path}: entry {name!r} lacks {missing}; it was edited by hand. Restore the "
                "manifest from git or re-export the run"
            )
        if entry.get(CHECKSUM) != entry_sha256(entry):
            state = "fails its checksum" if CHECKSUM in entry else "has no checksum"
            raise ReleaseError(
                f"{path}: entry {name!r} {state} ({CHECKSUM}): its recorded numbers (probes, "
                "step, config, ...) were changed after export. Restore the manifest from git or "
                f"re-export the run; after a deliberate edit, `sparsejepa.release.seal("
                f"'{path.parent}')` records the new checksums"
            )
    return manifest


CHECKSUM = "entry_sha256"


def entry_sha256(entry: dict) -> str:
    """sha256 of a manifest entry's canonical JSON (sorted keys), its own checksum left out."""
    text = json.dumps(
        {k: v for k, v in entry.items() if k != CHECKSUM}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()


def seal(directory: str | Path | None = None) -> list[str]:
    """Record the checksum of every entry of a release folder's manifest as it now stands (after
    a deliberate edit, or for a manifest written before entries had checksums); returns the
    names whose checksum changed."""
    out = Path(directory) if directory is not None else default_dir()
    with locked(out / f"{MANIFEST}.lock"):
        manifest = json.loads((out / MANIFEST).read_text())
        changed = []
        for name, entry in manifest["entries"].items():
            if entry.get(CHECKSUM) != entry_sha256(entry):
                entry[CHECKSUM] = entry_sha256(entry)
                changed.append(name)
        write_json_atomic(out / MANIFEST, manifest)
    return changed


def write_json_atomic(path: Path, value) -> None:
    """JSON to `path` through a temporary file and os.replace: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive advisory lock on `path` (created if needed) for a read-modify-write."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resolve(name_or_path: str | Path, directory: str | Path | None) -> tuple[str, dict, Path]:
    """(name, manifest entry, folder) for a release name or a path to a .safetensors file."""
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.is_file():
        folder = path.parent
        manifest = read_manifest(folder)
        for name, entry in manifest["entries"].items():
            if entry.get("file") == path.name:
                return name, entry, folder
        raise ReleaseError(
            f"{path} has no entry in {folder / MANIFEST}; a released encoder is loaded together "
            "with its manifest (config, sha256). Re-export it with `sparsejepa export`"
        )
    folder = Path(directory) if directory is not None else default_dir()
    manifest = read_manifest(folder)
    if str(name_or_path) not in manifest["entries"]:
        if not manifest["entries"]:
            raise ReleaseError(
                f"no released encoder named {str(name_or_path)!r}: no {MANIFEST} in {folder}; "
                + _not_found_hint(folder)
            )
        raise ReleaseError(
            f"no released encoder named {str(name_or_path)!r} in {folder / MANIFEST}; available: "
            f"{sorted(manifest['entries'])} (set env {ENV_DIR} to use another folder)"
        )
    return str(name_or_path), manifest["entries"][str(name_or_path)], folder


def _verified(folder: Path, file_name: str, expected: str, what: str) -> Path:
    path = folder / file_name
    if not path.is_file():
        raise ReleaseError(
            f"{what} file {path} is missing; restore it (git lfs pull / git checkout) or re-run "
            "`sparsejepa reproduce`"
        )
    actual = sha256_of(path)
    if actual != expected:
        raise ReleaseError(
            f"{path} fails its sha256 check (file {actual[:12]}..., manifest {expected[:12]}...): "
            "it is corrupt or was changed after export; restore it or re-export the run"
        )
    return path


def load(
    name_or_path: str | Path,
    *,
    directory: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> Release:
    """A released encoder by manifest name (in `directory`, default `default_dir()`) or by the path
    of its .safetensors file. Verifies sha256 of the weights and of the training log, that the
    weights were exported with this config and that they fit the encoder the config builds."""
    name, entry, folder = _resolve(name_or_path, directory)
    file = _verified(folder, entry["file"], entry["sha256"], "weights")
    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ReleaseError(f"{file} is not a readable safetensors file ({err})") from None
    if metadata.get("config_sha256") != config_sha256(entry["config"]):
        raise ReleaseError(
            f"release {name!r}: the config in {folder / MANIFEST} is not the one {file.name} was "
            "exported with (config sha256 differs); the manifest entry was edited or belongs to "
            "another file. Restore the manifest or re-export the run"
        )
    try:
        cfg = from_dict(entry["config"])
    except ConfigError as err:
        raise ReleaseError(
            f"release {name!r}: its config does not fit this code version ({err}); use the code "
            f"version it was trained with ({entry.get('code')}) or re-run the export"
        ) from None
    encoder = Encoder.from_config(cfg.model)
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as err:
        raise ReleaseError(
            f"release {name!r}: the weights do not fit the encoder of its config "
            f"(model {to_dict(cfg)['model']}): {str(err).splitlines()[0]}"
        ) from None
    history = []
    if entry.get("history"):
        log = _verified(folder, entry["history"]["file"], entry["history"]["sha256"], "history")
        history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    groups = entry.get("group_matrix")
    return Release(
        name=name,
        encoder=encoder.to(device).eval(),
        config=cfg,
        probes=entry.get("probes") or {},
        group_matrix=None if groups is None else np.asarray(groups, dtype=np.float64),
        history=history,
        code=entry.get("code") or {},
        step=int(entry.get("step", 0)),
        timing=entry.get("timing") or {},
        mean=tuple(entry["mean"]) if entry.get("mean") else None,
        std=tuple(entry["std"]) if entry.get("std") else None,
        img_size=int(entry.get("img_size", cfg.model.img_size)),
    )


def releases(directory: str | Path | None = None) -> list[str]:
    """Names of the released encoders in a folder's manifest."""
    return sorted(read_manifest(directory)["entries"])
