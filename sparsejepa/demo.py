"""`sparsejepa demo` (`make demo`): what this repository is for, offline, in a few minutes on a CPU.

1. The shipped releases (checkpoints/, `sparsejepa.load`), pre-trained on CIFAR-100, probed on the
   offline `shapes` tasks (count, dist, shape) beside a linear probe on the raw pixels and the
   majority-class rate, all computed in this run on the same images.
2. The figures that need no CIFAR-100 (notebooks 01-03: probe transfer, group connectivity,
   training curves) rebuilt from the releases' manifest into OUT/figures.
3. A short training run of the `demo` preset on `shapes`: it shows that the training loop works on
   this machine, not what the method can do (the releases trained for an hour each).
4. The commands for the next steps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import baselines, checkpoint, data, figures, probe, release
from .config import load_config

DEFAULT_RELEASES = ("jepa_s0", "sparsejepa_s0")
PROBE_SIZES = (8000, 2000)  # shapes train / test images for every row of the table
TASKS = ("count", "dist", "shape")
TRAIN_EPOCHS = 2  # of the demo preset on the probe set's train images: about 125 steps
NEXT_STEPS = """\
next steps:
  make figures          # every notebook's figures and tables -> paper_figures/ (04, 07: CIFAR-100)
  sparsejepa train --config cifar100_cpu --out runs/jepa    # the releases' preset, ~1 h on a CPU
  sparsejepa probe --ckpt jepa_s0 --dataset shapes         # probe a release or a run's ckpt.pt
  multiinfo embeddings.npy --groups size:16   # multiinformation of any (N, d) matrix (theory/)
  python -c 'import sparsejepa; r = sparsejepa.load("jepa_s0"); print(r.mean, r.std, r.img_size)'"""


def _top1(result: dict, task: str) -> float:
    return float(result["tasks"][task]["best_by_val"]["top1"])


def table(
    rows: list[tuple[str, dict]], pixels: dict, chance: dict[str, float], tasks: tuple[str, ...]
) -> str:
    """Test top-1 % per task (probe head chosen on a validation split), each model's gain over
    the pixel probe in brackets, then the pixel and majority-class rows."""
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{'':<{width}}" + "".join(f"{t:>16}" for t in tasks)]
    for label, result in rows:
        cells = "".join(
            f"{_top1(result, t):>8.1f} ({_top1(result, t) - _top1(pixels, t):+5.1f})" for t in tasks
        )
        lines.append(f"{label:<{width}}{cells}")
    lines.append(
        f"{'raw pixels, same linear probe':<{width}}"
        + "".join(f"{_top1(pixels, t):>8.1f}{'':8}" for t in tasks)
    )
    lines.append(
        f"{'majority class':<{width}}" + "".join(f"{chance[t]:>8.1f}{'':8}" for t in tasks)
    )
    return "\n".join(lines)


def verdict(label: str, result: dict, pixels: dict, tasks: tuple[str, ...], why: str = "") -> str:
    """One plain sentence: does `result` beat the pixel probe on each task, and by how much (with
    `why` appended when it does not)."""
    gains = {t: _top1(result, t) - _top1(pixels, t) for t in tasks}
    worse = [t for t, g in gains.items() if g <= 0]
    said = ", ".join(f"{t} {g:+.1f}" for t, g in gains.items())
    if not worse:
        return f"{label} beats the raw-pixel probe on every task ({said} points)."
    return (
        f"{label} does NOT beat the raw-pixel probe on {', '.join(worse)} ({said} "
        f"points){': ' + why if why else ''}."
    )


def run(
    out: str | Path = "runs/demo",
    names=None,
    overrides=(),
    sizes=PROBE_SIZES,
    directory=None,
    progress: bool = True,
    seed: int = 0,
) -> dict:
    """The demo; prints as it goes and writes OUT/results.json. Returns that dict."""
    from .train import train

    names = list(names or DEFAULT_RELEASES)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    n_train, n_test = sizes
    print(
        f"[1/4] the shipped releases {', '.join(names)} probed on the offline shapes tasks, "
        f"{n_train} train / {n_test} test images, beside a probe of the raw pixels"
    )
    shapes = data.load_dataset("shapes", seed=seed, n_train=n_train, n_test=n_test)
    tasks = tuple(t for t in TASKS if t in shapes.num_classes)
    pixels = baselines.pixel_probes(shapes, tasks=list(tasks), seed=seed)
    chance = {t: baselines.majority_rate(shapes, t) for t in tasks}
    rows, shipped = [], {}
    for name in names:
        r = release.load(name, directory=directory)
        res = probe.run_probes(r.encoder, shapes, tasks=list(tasks), seed=seed)
        shipped[name] = res
        rows.append(
            (f"{name} ({r.method}, {r.config.train.epochs:g} ep {r.config.data.dataset})", res)
        )
    print(table(rows, pixels, chance, tasks))
    print(
        f"({time.perf_counter() - tic:.0f} s; test top-1 %, linear probe chosen on a validation "
        "split; in brackets: points above the raw-pixel probe)"
    )

    print("\n[2/4] figures from the releases' manifest (no CIFAR-100 needed) ->", out / "figures")
    folder = out / "figures"
    rs = figures.load_releases(directory)
    main = figures.main_runs(rs)
    written = [
        figures.save(figures.plot_probes(main), "01_probe_transfer", folder=folder),
        figures.save(figures.plot_group_matrices(rs), "02_group_connectivity", folder=folder),
        figures.save(figures.plot_training_curves(main), "03_training_curves", folder=folder),
    ]
    figures.save_table(figures.probe_table(main), "01_probe_transfer", folder=folder)
    print("  " + "\n  ".join(map(str, written)))
    print("  (figure 01 with the raw-pixel and majority-class lines: `make figures`)")

    print(
        "\n[3/4] a short training run of the `demo` preset on shapes (SparseJEPA): proves the "
        "training loop works on this machine; it is not a result"
    )
    cfg = load_config(
        "demo",
        [
            f"data.n_train={n_train}",
            f"data.n_test={n_test}",
            f"train.seed={seed}",
            f"train.epochs={TRAIN_EPOCHS}",
            *overrides,
        ],
    )
    t_train = time.perf_counter()
    state = train(cfg, out / "train", resume=False, progress=progress, dataset=shapes)
    t_train = time.perf_counter() - t_train
    encoder, _ = checkpoint.load_target_encoder(out / "train" / "ckpt.pt")
    trained = probe.run_probes(encoder, shapes, tasks=list(tasks), seed=seed)
    label = f"demo run ({state.step} steps, {t_train:.0f} s)"
    print(table([*rows, (label, trained)], pixels, chance, tasks))
    for name, res in shipped.items():
        print(verdict(f"release {name}", res, pixels, tasks))
    print(
        verdict(
            f"The {label}",
            trained,
            pixels,
            tasks,
            "this run is too short to learn features; it only shows that training works",
        )
    )
    print(f"(demo done in {time.perf_counter() - tic:.0f} s)")

    print(f"\n[4/4] {NEXT_STEPS}")
    results = {
        "probe_set": {"dataset": "shapes", "seed": seed, "n_train": n_train, "n_test": n_test},
        "pixels": pixels,
        "majority": chance,
        "releases": shipped,
        "demo_run": {"steps": state.step, "train_s": t_train, "probes": trained},
        "seconds": time.perf_counter() - tic,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
