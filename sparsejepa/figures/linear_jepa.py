"""Notebook 06, deep linear JEPA vs MAE (`theory.linear_jepa`)."""

from __future__ import annotations

from matplotlib.figure import Figure

from .runs import format_table


def linear_jepa_figures() -> dict[str, Figure]:
    """The deep linear JEPA vs MAE figures of theory.linear_jepa (one source for the notebook
    and paper_figures/linear_jepa.py)."""
    from theory.linear_jepa.plots import plot_critical_time_ratio, plot_trajectories

    return {
        "06_linear_jepa_trajectories": plot_trajectories(),
        "06_linear_jepa_critical_time": plot_critical_time_ratio(),
    }


def linear_jepa_table(eps: float = 0.01, p: float = 0.5, depths=(1, 2, 3, 4)) -> str:
    """Half-times (GD time) of REFERENCE's pair A = (lambda 1, rho 0.5), B = (0.6, 2) per depth,
    and which feature each objective learns first."""
    from theory.linear_jepa import critical_time

    a, b = (1.0, 0.5), (0.6, 2.0)
    rows = []
    for depth in depths:
        row = [depth]
        for objective in ("jepa", "mae"):
            ta, tb = (critical_time(*f, depth, objective, eps, p) for f in (a, b))
            row += [f"{ta:.1f}", f"{tb:.1f}", "A" if ta < tb else "B"]
        rows.append(row)
    header = ["L", "JEPA t*_A", "JEPA t*_B", "JEPA first", "MAE t*_A", "MAE t*_B", "MAE first"]
    return format_table(header, rows) + (
        f"\nnote: A = (lambda 1, rho 0.5), B = (lambda 0.6, rho 2), eps = {eps}, p = {p}; "
        "REFERENCE.md: JEPA learns B first from L = 3, MAE learns A first at every depth"
    )
