"""Module dependencies in theory/ run one way (no import cycles): each module imports only
modules earlier in LAYERS."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LAYERS = [
    "inputs",
    "closed_forms",
    "scores",
    "knn",
    "corrected",
    "neural",
    "plugin",
    "auto",
    "estimators",
    "monitor",
    "tasks",
    "lemmas",
    "cli",
]
ROOT = Path(__file__).resolve().parents[1]


def theory_imports(name: str) -> set[str]:
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "theory":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("theory."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("theory.")}
    return found & set(LAYERS)


@pytest.mark.parametrize("name", LAYERS)
def test_imports_only_earlier_layers(name):
    earlier = set(LAYERS[: LAYERS.index(name)])
    assert theory_imports(name) <= earlier, (name, theory_imports(name) - earlier)


def test_import_theory_loads_neither_torch_nor_matplotlib():
    # a fresh interpreter: this test process may have imported them already
    code = (
        "import sys, theory, theory.cli; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    assert out.stdout.strip() == "[]", out.stdout
