"""Render the deep linear JEPA vs MAE figures to paper_figures/out/ (about 10 s on a laptop CPU).

    python paper_figures/linear_jepa.py [--out paper_figures/out]

linear_jepa_trajectories.png: w_i(t) / w_i* for JEPA and MAE, features with rho ordered like and
against lambda, depths 1, 2, 4 (scalar ODE, GD time; full-matrix GD matches it, see the tests).
linear_jepa_critical_time.png: critical-time ratios against depth, and the REFERENCE inversion pair.
"""

import argparse
from pathlib import Path

from theory.linear_jepa.plots import plot_critical_time_ratio, plot_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fig in (("linear_jepa_trajectories.png", plot_trajectories()),
                      ("linear_jepa_critical_time.png", plot_critical_time_ratio())):
        fig.savefig(args.out / name, dpi=120)
        print(args.out / name)


if __name__ == "__main__":
    main()
