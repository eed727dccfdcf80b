"""Publishing a training run as a release: `export(run_dir, name)` writes one entry of a release
folder (`release`: the format) from a run folder (ckpt.pt, metrics.jsonl and the probe_*.json /
probe.json files `sparsejepa probe --out` wrote there); `update_probes` replaces the probe results
of an entry. Both hold the folder's lock, so parallel `reproduce --only ...` processes do not lose
each other's entries.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from . import checkpoint
from .config import Config, to_dict
from .data.common import sha256_of
from .release import (
    CHECKSUM,
    MANIFEST,
    ReleaseError,
    config_sha256,
    default_dir,
    entry_sha256,
    locked,
    method_of,
    read_manifest,
    write_json_atomic,
)

RELEASE_DTYPE = torch.float16  # weights are stored in half precision and loaded into float32


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
    with locked(out / f"{MANIFEST}.lock"):  # parallel `reproduce --only ...` processes
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
        write_json_atomic(out / MANIFEST, manifest)
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
    with locked(out / f"{MANIFEST}.lock"):
        manifest = read_manifest(out)
        if name not in manifest["entries"]:
            raise ReleaseError(
                f"no release {name!r} in {out / MANIFEST}; it has {sorted(manifest['entries'])}"
            )
        entry = manifest["entries"][name]
        new = json.loads(json.dumps({r["dataset"]: r for r in results}))
        entry["probes"] = {**(entry.get("probes") or {}), **new}
        entry[CHECKSUM] = entry_sha256(entry)
        write_json_atomic(out / MANIFEST, manifest)
    return entry
