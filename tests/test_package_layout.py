"""Module dependencies in sparsejepa/ run one way, as in theory/ (theory/tests/test_layout.py):
each module (a subpackage counts as one) imports only modules earlier in LAYERS, never the package
root, and never a private name (`_x`) of another module."""

import ast
from pathlib import Path

import pytest

LAYERS = [
    "version",
    "output",
    "gaussian",
    "masks",
    "schedules",
    "metrics",
    "augment",
    "vit",
    "runtime",
    "run_folder",
    "data",
    "config",
    "sparsity",
    "var_jepa",
    "student",
    "state",
    "checkpoint",
    "release",
    "publish",
    "features",
    "probe_heads",
    "interpretability",
    "probe",
    "baselines",
    "train",
    "figures",
    "reproduce",
    "demo",
    "tabular",
    "cli",
    "__main__",
]
PACKAGE = Path(__file__).resolve().parents[1] / "sparsejepa"


def files(layer: str) -> list[Path]:
    folder = PACKAGE / layer
    return sorted(folder.glob("*.py")) if folder.is_dir() else [PACKAGE / f"{layer}.py"]


def imports(path: Path) -> list[tuple[str, str]]:
    """(module of sparsejepa imported, name imported from it or "") for every import in `path`,
    function-level ones included."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0: sparsejepa/x.py, 1: sparsejepa/sub/x.py
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("sparsejepa"):
                    continue
                parts = node.module.split(".")[1:]
            elif node.level == depth + 1:  # relative to sparsejepa/
                parts = (node.module or "").split(".") if node.module else []
            else:
                continue  # within the subpackage
            if parts:
                found += [(parts[0], "" if len(parts) > 1 else a.name) for a in node.names]
            else:
                found += [(a.name, "") for a in node.names]  # from . import module
        elif isinstance(node, ast.Import):
            found += [
                (a.name.split(".")[1], "") for a in node.names if a.name.startswith("sparsejepa.")
            ]
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    assert modules - {"__init__"} == set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_run_one_way_and_stay_public(layer):
    earlier = set(LAYERS[: LAYERS.index(layer)])
    for path in files(layer):
        for module, name in imports(path):
            where = f"{path.relative_to(PACKAGE.parent)} imports sparsejepa.{module}"
            assert module in earlier, f"{where}: not an earlier layer (package root or upward)"
            private = name.startswith("_") and not name.startswith("__")
            assert not private, f"{where}.{name}: a private name"


def test_no_module_is_over_400_lines():
    """One job per file: no Python file of sparsejepa/ or theory/ (tests included) over 400
    lines; split a longer one by job."""
    root = PACKAGE.parent
    lengths = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for folder in ("sparsejepa", "theory")
        for path in (root / folder).rglob("*.py")
    }
    over = {name: n for name, n in lengths.items() if n > 400}
    assert not over, f"split these by job: {over}"
