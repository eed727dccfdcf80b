"""`sparsejepa reproduce`: train, probe and export every reference checkpoint listed in one spec.

The spec (default `checkpoints/reference_runs.yaml`) is YAML:
    preset: cifar100_cpu            # preset name, or a YAML file (relative to the spec's folder)
    set: []                         # overrides applied to every run
    probe:
      datasets: {cifar100: {}, shapes: {n_train: 20000, n_test: 5000}}  # dataset -> sizes
      optional: {clevr: {n_train: 10000, n_test: 5000}}  # probed only when the data is found
    runs:                           # release name -> overrides of this run
      jepa_s0: [sparsity.enabled=false, train.seed=0]
      short_s0: [&short [train.epochs=2, optim.warmup_epochs=0.2], train.seed=0]
      short_s1: [*short, train.seed=1]   # a YAML anchor shares overrides; nested lists flatten
A dataset's sizes `{}` mean: the training sizes for the training set, the loader's defaults for
any other. Each run trains into RUNS_DIR/NAME (resuming a stopped run exactly, skipping a finished
one), writes RUNS_DIR/NAME/probe_DATASET.json per probe set (features cached beside the
checkpoint) and exports NAME to the release folder with its timings (training seconds from
`from_step`, the step it resumed at; a finished run keeps the times of its entry). Rerunning is
cheap.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from . import checkpoint, data, publish, release
from .config import ConfigError, load_config, to_dict

DEFAULT_SPEC = Path(__file__).resolve().parents[1] / "checkpoints" / "reference_runs.yaml"


@dataclass
class Spec:
    preset: str
    common: list[str]
    runs: dict[str, list[str]]
    probe_sets: dict[str, dict]
    optional_sets: dict[str, dict]


def string_list(value, where: str) -> list[str]:
    """A list of key=value strings; nested lists (a YAML alias `*name` of a shared list) are
    flattened in place."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of key=value strings, got {value!r}")
    flat = []
    for item in value:
        flat.extend(item if isinstance(item, list) else [item])
    if not all(isinstance(v, str) for v in flat):
        raise ConfigError(
            f"{where}: expected a list of key=value strings (lists nested one level "
            f"at most), got {value!r}"
        )
    return flat


def _sizes(value, where: str) -> dict[str, dict]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping dataset -> sizes, got {value!r}")
    out = {}
    for name, sizes in value.items():
        if name not in data.DATASETS:
            raise ConfigError(f"{where}: unknown dataset {name!r}; choose from {data.DATASETS}")
        sizes = sizes or {}
        bad = set(sizes) - {"n_train", "n_test"}
        if bad or not all(isinstance(v, int) and v > 0 for v in sizes.values()):
            raise ConfigError(f"{where}.{name}: only positive n_train / n_test, got {sizes!r}")
        out[name] = sizes
    return out


def load_spec(path: str | Path = DEFAULT_SPEC) -> Spec:
    """Read and check a reproduction spec (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"reproduction spec {path} not found")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"preset", "set", "probe", "runs"}
    if not isinstance(raw, dict) or unknown:
        raise ConfigError(f"{path}: top-level keys are preset, set, probe, runs (got {unknown})")
    preset = raw.get("preset")
    if not isinstance(preset, str):
        raise ConfigError(f"{path}: 'preset' must name a preset or a YAML file")
    if Path(preset).suffix and not Path(preset).is_absolute():
        preset = str(path.parent / preset)
    runs = raw.get("runs")
    if not isinstance(runs, dict) or not runs:
        raise ConfigError(f"{path}: 'runs' must map release names to lists of overrides")
    probe = raw.get("probe") or {}
    return Spec(
        preset=preset,
        common=string_list(raw.get("set"), f"{path}: set"),
        runs={name: string_list(sets, f"{path}: runs.{name}") for name, sets in runs.items()},
        probe_sets=_sizes(probe.get("datasets"), f"{path}: probe.datasets"),
        optional_sets=_sizes(probe.get("optional"), f"{path}: probe.optional"),
    )


def _available(name: str) -> bool:
    """Whether an optional probe set can be loaded (only CLEVR is optional in practice)."""
    if name == "clevr":
        return data.locate_clevr() is not None
    return True


def reproduce(
    spec_path: str | Path | None = None,
    runs_dir: str | Path = "runs/reference",
    out_dir: str | Path | None = None,
    only: list[str] | None = None,
    overrides: list[str] = (),
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, dict]:
    """Train, probe and export the spec's runs (all, or the names in `only`); `overrides` apply
    to every run after the spec's own. A released encoder is replaced by new weights only with
    `overwrite` (checked before training: a run whose folder does not hold the released step
    would make new ones). Returns {name: manifest entry}."""
    from .probe import probe_checkpoint
    from .train import train

    spec = load_spec(spec_path or DEFAULT_SPEC)
    names = list(spec.runs) if not only else list(only)
    missing = [n for n in names if n not in spec.runs]
    if missing:
        raise ConfigError(f"runs {missing} are not in the spec; it has {list(spec.runs)}")
    configs = {
        name: load_config(spec.preset, [*spec.common, *spec.runs[name], *overrides, f"name={name}"])
        for name in names
    }
    start_steps = {}  # the step each existing run folder resumes from
    for name, cfg in configs.items():  # check each run folder it would resume, before training
        ckpt = Path(runs_dir) / name / "ckpt.pt"
        if ckpt.is_file():
            payload = checkpoint.load(ckpt)
            checkpoint.check_resumable(to_dict(checkpoint.config_of(payload)), to_dict(cfg), ckpt)
            start_steps[name] = int(payload["step"])
    released = release.read_manifest(out_dir)["entries"]
    replaced = [n for n in names if n in released and start_steps.get(n) != released[n].get("step")]
    if replaced and not overwrite:
        raise release.ReleaseError(
            f"runs {replaced} would replace released encoders of the same name in "
            f"{release.default_dir() if out_dir is None else out_dir} with newly trained weights; "
            "pass --overwrite (reproduce(..., overwrite=True)) to replace them, or --out "
            "another folder"
        )
    probe_sets = dict(spec.probe_sets)
    probe_sets.update({k: v for k, v in spec.optional_sets.items() if _available(k)})
    entries = {}
    for name, cfg in configs.items():
        run_dir = Path(runs_dir) / name
        tic = time.perf_counter()
        state = train(cfg, run_dir, resume=True, progress=progress)
        train_s = time.perf_counter() - tic
        files, probe_s = [], {}
        for dataset, sizes in probe_sets.items():
            tic = time.perf_counter()
            out = run_dir / f"probe_{dataset}.json"
            probe_checkpoint(
                run_dir / "ckpt.pt", dataset, out=out, device=cfg.train.device, **sizes
            )
            probe_s[dataset] = round(time.perf_counter() - tic, 1)
            files.append(out)
        timing = {
            "train_s": round(train_s, 1),
            "probe_s": probe_s,
            "threads": torch.get_num_threads(),
            "from_step": start_steps.get(name, 0),
        }
        previous = release.read_manifest(out_dir)["entries"].get(name, {}).get("timing")
        if state.step == start_steps.get(name) and previous:
            timing = previous  # finished earlier: nothing trained now, keep the times measured then
        entries[name] = publish.export(
            run_dir, name, out_dir, probe_files=files, timing=timing, overwrite=overwrite
        )
        print(
            f"{name}: train {train_s:.0f} s, probes {probe_s} s, exported {entries[name]['file']}",
            flush=True,
        )
    return entries


def summary(entries: dict[str, dict]) -> str:
    """One JSON line per release: name, method, lambda, seed, best top-1 per probe task."""
    lines = []
    for name, entry in entries.items():
        best = {
            f"{ds}/{task}": round(res["best"]["top1"], 2)
            for ds, result in entry["probes"].items()
            for task, res in result["tasks"].items()
        }
        lines.append(
            json.dumps(
                {
                    "release": name,
                    "method": entry["method"],
                    "lam": entry["config"]["sparsity"]["lam"]
                    if entry["config"]["sparsity"]["enabled"]
                    else None,
                    "seed": entry["config"]["train"]["seed"],
                    "best_top1": best,
                }
            )
        )
    return "\n".join(lines)
