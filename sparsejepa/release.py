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

`export(run_dir, name)` writes one entry from a training run folder (ckpt.pt, metrics.jsonl and the
probe_*.json / probe.json files `sparsejepa probe --out` wrote there). `load(name_or_path)` checks
the sha256 of every file and that the weights fit the recorded config, with errors that say what
to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import checkpoint
from .config import Config, ConfigError, from_dict, to_dict
from .data.common import sha256_of
from .vit import Encoder

MANIFEST = "MANIFEST.json"
FORMAT = 1
ENV_DIR = "SPARSEJEPA_CHECKPOINTS"
RELEASE_DTYPE = torch.float16  # weights are stored in half precision and loaded into float32


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


def dataset_normalization(cfg: Config) -> tuple[tuple, tuple] | tuple[None, None]:
    """(mean, std) per channel of x/255 over the training images of `cfg`, the normalisation the
    run trained with (its dataset loaded as `train` loads it); (None, None) when the dataset is not
    found here (the release then records none and `Release.transform` says so)."""
    d = cfg.data
    seed = cfg.train.seed if d.n_train is not None or d.dataset == "shapes" else 0
    return _normalization(d.dataset, d.path, seed, d.n_train, d.n_test, cfg.model.img_size)


@functools.lru_cache(maxsize=4)
def _normalization(dataset, path, seed, n_train, n_test, img_size):
    from . import data

    try:
        ds = data.load_dataset(
            dataset, path=path, seed=seed, n_train=n_train, n_test=n_test, image_size=img_size
        )
    except data.DatasetError:
        return None, None
    return tuple(float(v) for v in ds.mean), tuple(float(v) for v in ds.std)


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
    with _locked(out / f"{MANIFEST}.lock"):
        manifest = json.loads((out / MANIFEST).read_text())
        changed = []
        for name, entry in manifest["entries"].items():
            if entry.get(CHECKSUM) != entry_sha256(entry):
                entry[CHECKSUM] = entry_sha256(entry)
                changed.append(name)
        _write_json_atomic(out / MANIFEST, manifest)
    return changed


def _write_json_atomic(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def _probe_results(run_dir: Path, probe_files) -> dict:
    """{dataset: results} from explicit JSON files, else every probe*.json in the run folder."""
    files = [Path(p) for p in probe_files] if probe_files else sorted(run_dir.glob("probe*.json"))
    probes = {}
    for file in files:
        try:
            result = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise ReleaseError(f"probe results {file} are not readable JSON ({err})") from None
        if not isinstance(result, dict) or "dataset" not in result or "tasks" not in result:
            raise ReleaseError(
                f"{file} is not a `sparsejepa probe --out` result (needs 'dataset' and 'tasks')"
            )
        probes[result["dataset"]] = result
    return probes


def export(
    run_dir: str | Path,
    name: str,
    out_dir: str | Path | None = None,
    probe_files: list[str | Path] | None = None,
    timing: dict | None = None,
    overwrite: bool = False,
) -> dict:
    """Release the target encoder of `run_dir/ckpt.pt` as `out_dir/NAME.safetensors` and record it
    in `out_dir/MANIFEST.json`. `timing` (e.g. training and probing seconds) is stored as given.
    An existing release NAME with other weights is a cited artefact: it is replaced only with
    `overwrite=True` (`sparsejepa export --overwrite`); re-exporting the same weights (new probe
    results, say) updates its entry. The checkpoint must be complete (every tensor of its
    encoder present, all finite). Returns the entry."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ReleaseError(f"release name {name!r} must be a plain file stem like 'jepa_s0'")
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else default_dir()
    payload = checkpoint.load(run_dir / "ckpt.pt")  # refuses nan / inf tensors
    cfg = checkpoint.config_of(payload)
    checkpoint.fit_encoder(cfg, payload["target"], run_dir / "ckpt.pt")  # no tensor missing
    config = to_dict(cfg)
    probes = _probe_results(run_dir, probe_files)
    read_manifest(out)  # a broken manifest stops the export before anything is written
    out.mkdir(parents=True, exist_ok=True)
    weights = {
        k: v.to("cpu", RELEASE_DTYPE if v.is_floating_point() else v.dtype).contiguous()
        for k, v in payload["target"].items()
    }
    file = out / f"{name}.safetensors"
    with _locked(out / f"{MANIFEST}.lock"):  # parallel `reproduce --only ...` processes
        manifest = read_manifest(out)
        tmp = file.with_name(file.name + ".tmp")
        # one metadata key: safetensors writes several in a random order, changing the sha256
        save_file(weights, tmp, metadata={"config_sha256": config_sha256(config)})
        digest = sha256_of(tmp)
        previous = manifest["entries"].get(name)
        old = previous["sha256"] if previous else sha256_of(file) if file.exists() else None
        if old is not None and old != digest and not overwrite:
            tmp.unlink()
            where = f"in {out / MANIFEST}" if previous else f"as {file} (no manifest entry)"
            raise ReleaseError(
                f"release {name!r} already exists {where} with other weights (sha256 "
                f"{old[:12]}..., this export {digest[:12]}...); a released encoder is cited by "
                "others, so it is not replaced. Export under another --name, or pass "
                "--overwrite (export(..., overwrite=True)) to replace it"
            )
        os.replace(tmp, file)
        file.chmod(0o644)  # safetensors writes owner-only files; releases are shared
        history = None
        if (run_dir / "metrics.jsonl").is_file():
            log = out / f"{name}.metrics.jsonl"
            log.write_bytes((run_dir / "metrics.jsonl").read_bytes())
            history = {"file": log.name, "sha256": sha256_of(log)}
        groups = payload.get("group_matrix")
        mean, std = dataset_normalization(cfg)
        entry = {
            "file": file.name,
            "sha256": digest,
            "bytes": file.stat().st_size,
            "dtype": str(RELEASE_DTYPE).removeprefix("torch."),
            "method": method_of(cfg),
            "step": int(payload["step"]),
            "config": config,
            "code": payload.get("code", {}),
            "probes": probes,
            "group_matrix": None if groups is None else groups.float().tolist(),
            "history": history,
            "timing": timing,
            "mean": mean and list(mean),  # input normalisation of training: (x / 255 - mean) / std
            "std": std and list(std),
            "img_size": cfg.model.img_size,
        }
        entry = json.loads(json.dumps(entry))  # as it will read back (tuples as lists)
        entry[CHECKSUM] = entry_sha256(entry)
        manifest["entries"][name] = entry
        _write_json_atomic(out / MANIFEST, manifest)
    return entry


def update_probes(name: str, results: list[dict], directory: str | Path | None = None) -> dict:
    """Replace release NAME's probe results for the datasets in `results` (each a `sparsejepa
    probe` result) in its manifest entry, e.g. after the probe changed; the weights are not
    touched, the entry is re-sealed. Returns the entry."""
    out = Path(directory) if directory is not None else default_dir()
    for result in results:
        if not isinstance(result, dict) or "dataset" not in result or "tasks" not in result:
            raise ReleaseError(
                f"{str(result)[:80]} is not a `sparsejepa probe` result "
                "(needs 'dataset' and 'tasks')"
            )
    with _locked(out / f"{MANIFEST}.lock"):
        manifest = read_manifest(out)
        if name not in manifest["entries"]:
            raise ReleaseError(
                f"no release {name!r} in {out / MANIFEST}; it has {sorted(manifest['entries'])}"
            )
        entry = manifest["entries"][name]
        new = json.loads(json.dumps({r["dataset"]: r for r in results}))
        entry["probes"] = {**(entry.get("probes") or {}), **new}
        entry[CHECKSUM] = entry_sha256(entry)
        _write_json_atomic(out / MANIFEST, manifest)
    return entry


@contextlib.contextmanager
def _locked(path: Path):
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
