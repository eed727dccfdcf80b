"""`sparsejepa tabular train | eval | compare`: tabular T-JEPA / Var-T-JEPA from a preset."""

import json
from pathlib import Path

from .config import load_config, presets

EPILOG = "example: sparsejepa tabular compare --config wine --out runs/tabular/wine"


def _add_config_args(p) -> None:
    p.add_argument("--config", required=True, help=f"tabular preset {presets()} or a YAML file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. --set model.method=t_jepa --set train.epochs=50",
    )
    p.add_argument("--out", required=True, help="run folder")


def _train(args) -> None:
    from .train import train

    cfg = load_config(args.config, args.set)
    state = train(cfg, args.out, resume=not args.fresh, log=None if args.quiet else print)
    print(f"done: {cfg.model.method}, {state.step} steps, checkpoint {Path(args.out) / 'ckpt.pt'}")


def _eval(args) -> None:
    from .evaluate import evaluate
    from .train import load_trained

    state = load_trained(args.ckpt)
    result = evaluate(state, _table_of(state), state.cfg.eval, state.cfg.train.seed)
    result.pop("uncertainty_test", None)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


def _table_of(state):
    from .data import load_table

    return load_table(state.cfg.data)


def _compare(args) -> None:
    from .experiment import markdown, run_comparison

    cfg = load_config(args.config, args.set)
    results = run_comparison(
        cfg, args.out, methods=args.methods, seeds=args.seeds, log=None if args.quiet else print
    )
    text = markdown(results)
    (Path(args.out) / "results.md").write_text(text + "\n")
    print("\n" + text)


def add_subparser(subparsers) -> None:
    """Register `tabular` with its own sub-commands on the core CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "tabular",
        help="tabular T-JEPA / Var-T-JEPA (train, eval, compare)",
        description=__doc__,
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="tabular_command", required=True)

    p = sub.add_parser("train", help="train one model (resumes from OUT/ckpt.pt)")
    _add_config_args(p)
    p.add_argument("--fresh", action="store_true", help="ignore an existing OUT/ckpt.pt")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="downstream heads (+ uncertainty) on a checkpoint")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.set_defaults(func=_eval)

    p = sub.add_parser(
        "compare", help="raw vs T-JEPA vs Var-T-JEPA over seeds: results.json/.md", epilog=EPILOG
    )
    _add_config_args(p)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: eval.seeds")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["raw", "t_jepa", "var_t_jepa"],
        choices=["raw", "t_jepa", "var_t_jepa"],
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_compare)
