"""Render the deep linear JEPA vs MAE figures (notebook 06) without Jupyter.

    python paper_figures/linear_jepa.py

Writes paper_figures/06_linear_jepa_{trajectories,critical_time}.{png,pdf} (env
SPARSEJEPA_FIGURES moves them) and prints the half-time table. The figures and the table come from
`sparsejepa.figures` (which draws with `theory.linear_jepa.plots`), the one source that
notebooks/06_linear_jepa_vs_mae also calls.
"""

from sparsejepa import figures


def main() -> None:
    print(figures.save_table(figures.linear_jepa_table(), "06_linear_jepa_vs_mae"))
    for name, fig in figures.linear_jepa_figures().items():
        print(figures.save(fig, name))


if __name__ == "__main__":
    main()
