"""Command line: `sparsejepa train | probe | demo | export | reproduce | figures`."""

import argparse
import json
import sys
from pathlib import Path

from . import checkpoint, data, publish, release, run_folder
from .config import ConfigError, load_config, presets
from .version import __version__


def _train(args) -> None:
    from .train import train

    cfg = load_config(args.config, args.set)
    resume = args.resume if args.resume else not args.fresh
    state = train(cfg, args.out, resume=resume, progress=not args.quiet)
    print(f"done: {state.step} steps, checkpoint {Path(args.out) / 'ckpt.pt'}")


def _probe(args) -> None:
    from .probe import probe_checkpoint

    results = probe_checkpoint(
        args.ckpt, args.dataset, args.data_path, args.out, args.device, args.download
    )
    print(json.dumps(results, indent=2))


def _demo(args) -> None:
    from . import demo

    demo.run(args.out, args.releases, args.set, progress=not args.quiet)


def _export(args) -> None:
    entry = publish.export(
        args.run, args.name, args.out, args.probe or None, overwrite=args.overwrite
    )
    folder = Path(args.out) if args.out else release.default_dir()
    print(f"exported {args.name}: {folder / entry['file']} (sha256 {entry['sha256'][:16]}...)")


def _reproduce(args) -> None:
    from . import reproduce

    entries = reproduce.reproduce(
        args.spec,
        args.runs_dir,
        args.out,
        args.only,
        args.set,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(reproduce.summary(entries))


def _figures(args) -> None:
    from . import figures

    paths = figures.notebook_paths(args.notebooks)
    if args.only:
        paths = [p for p in paths if p.name.startswith(tuple(args.only))]
    if not paths:
        raise FileNotFoundError(f"no notebooks NN_*.ipynb selected in {args.notebooks}")
    try:
        timings = figures.run_notebooks(paths, args.checkpoints, args.out)
    except figures.NotebookError as err:
        sys.exit(f"sparsejepa figures: error: {err}")
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sparsejepa", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train JEPA / SparseJEPA (resumes from OUT/ckpt.pt)")
    p.add_argument("--config", required=True, help=f"preset {presets()} or a YAML file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. --set optim.lr=5e-4 --set sparsity.enabled=true",
    )
    p.add_argument("--out", required=True, help="run folder (ckpt.pt, metrics.jsonl, config.json)")
    p.add_argument("--resume", default=None, help="resume from this checkpoint file")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start over: the previous run's files (ckpt.pt, metrics.jsonl, probe and "
        "feature files) move to OUT/replaced-<time>/, nothing is deleted",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("probe", help="linear / kNN probes of a checkpoint's target encoder")
    p.add_argument(
        "--ckpt",
        required=True,
        help="a run's ckpt.pt, a release's .safetensors file or a release name "
        "(e.g. jepa_s0, from env SPARSEJEPA_CHECKPOINTS or checkpoints/)",
    )
    p.add_argument(
        "--dataset", default=None, help="cifar100, shapes or clevr (default: the training set)"
    )
    p.add_argument("--data-path", default=None)
    p.add_argument(
        "--download",
        action="store_true",
        help="download the official CIFAR-100 archive (md5-checked) if not found",
    )
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_probe)

    p = sub.add_parser(
        "demo",
        help="the shipped releases against raw pixels on the offline shapes "
        "set, their figures, a short training run (offline, minutes)",
    )
    p.add_argument("--out", default="runs/demo")
    p.add_argument(
        "--releases",
        nargs="+",
        default=None,
        metavar="NAME",
        help="releases to probe (default: jepa_s0 sparsejepa_s0)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for the demo training run, e.g. --set train.epochs=4",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)

    p = sub.add_parser("export", help="release a run's target encoder (safetensors + manifest)")
    p.add_argument("--run", required=True, help="run folder with ckpt.pt (and probe*.json)")
    p.add_argument("--name", required=True, help="release name, e.g. sparsejepa_s0")
    p.add_argument("--out", default=None, help="release folder (default: checkpoints/)")
    p.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="JSON",
        help="probe results to record (default: RUN/probe*.json)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing release NAME that has other weights",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser("reproduce", help="train, probe and export every reference checkpoint")
    p.add_argument("--spec", default=None, help="default: checkpoints/reference_runs.yaml")
    p.add_argument("--runs-dir", default="runs/reference", help="training run folders")
    p.add_argument("--out", default=None, help="release folder (default: checkpoints/)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these runs")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every run (after the spec's own)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace released encoders that a run would export with new weights",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("figures", help="run the notebooks headless; rewrite paper_figures/")
    p.add_argument("--checkpoints", default=None, help="release folder (default: checkpoints/)")
    p.add_argument("--out", default=None, help="figure folder (default: paper_figures/)")
    p.add_argument("--notebooks", default=None, help="notebook folder (default: notebooks/)")
    p.add_argument("--only", nargs="+", default=None, metavar="PREFIX", help="e.g. 01 04")
    p.set_defaults(func=_figures)

    from .tabular.cli import add_subparser as add_tabular_subparser

    add_tabular_subparser(sub)
    args = parser.parse_args(argv)
    run_command(args.func, args, f"sparsejepa {args.command}")


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (config, YAML, data, checkpoint, release, run folder,
    file system) rather than a bug: the CLI reports them in one line, without a traceback."""
    import yaml

    from .runtime import NonFiniteLoss

    return (
        ConfigError,
        yaml.YAMLError,
        data.DatasetError,
        checkpoint.CheckpointError,
        run_folder.RunFolderLocked,
        release.ReleaseError,
        NonFiniteLoss,
        OSError,  # missing / unreadable / unwritable files, full disk
    )


def run_command(func, args, prog: str) -> None:
    """Run a sub-command; a user error (`user_errors`) exits non-zero with ONE line on stderr,
    `PROG: error: message`, a Ctrl-C with status 130; any other exception is a bug and keeps
    its traceback."""
    try:
        func(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except user_errors() as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        sys.exit(f"{prog}: error: {'; '.join(lines) or type(err).__name__}")


if __name__ == "__main__":
    main()
