"""Where the notebooks' figures and tables go: PNG and PDF per figure, .txt per printed table, in
`figure_dir()` (env SPARSEJEPA_FIGURES, default `paper_figures/` of this repository)."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

ENV_FIGURES = "SPARSEJEPA_FIGURES"


def figure_dir() -> Path:
    """env SPARSEJEPA_FIGURES, else the `paper_figures/` folder of this repository."""
    env = os.environ.get(ENV_FIGURES)
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[1] / "paper_figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(fig: Figure, name: str, dpi: int = 150, folder: str | Path | None = None) -> Path:
    """Write `name`.png and `name`.pdf into `folder` (default figure_dir()); returns the PNG."""
    out = _folder(folder)
    fig.savefig(out / f"{name}.png", dpi=dpi)
    fig.savefig(out / f"{name}.pdf")
    return out / f"{name}.png"


def save_table(text: str, name: str, folder: str | Path | None = None) -> str:
    """Write a printed table to `folder`/`name`.txt (default figure_dir()) and return it (the
    notebook prints it)."""
    (_folder(folder) / f"{name}.txt").write_text(text + "\n")
    return text


def _folder(folder: str | Path | None) -> Path:
    if folder is None:
        return figure_dir()
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)
