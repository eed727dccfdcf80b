"""Tables and figures of the notebooks (notebooks/01-07), computed from released encoders.

Every notebook is a few calls into this package: it reads the releases of `release.default_dir()`
(env SPARSEJEPA_CHECKPOINTS, default `checkpoints/`), prints a table and saves a figure as PNG and
PDF (and the table as .txt) into `output.figure_dir()` (env SPARSEJEPA_FIGURES, default
`paper_figures/`). One module per claim: `probes` (01), `groups` (02), `curves` (03), `multiinfo`
(04, 07), `lemmas` (05, the numerics in `theory.lemmas`), `linear_jepa` (06), `ablation` (07),
`ec` (11: EC-IJEPA, from `experiments/results/ec_ijepa.jsonl`), `interpretability` (12: per
group superclass probes, from `experiments/results/interpretability.jsonl`);
`runs` groups the releases, `notebooks` executes the notebooks headless (`sparsejepa figures`,
`make figures`, the tests).

Runs are grouped by method, lambda and epochs ("JEPA 9 ep", "SparseJEPA lam=1 2 ep"); the spread
over seeds is the sample standard deviation (n >= 2). The paper's numbers appear beside ours,
labelled as reported by a secondary source (REFERENCE.md section 1): they are targets, not
verified results.
"""

from ..output import figure_dir, save, save_table
from .ablation import lambda_table, plot_lambda_ablation
from .curves import CURVES, curves_table, logged_curves, plot_training_curves
from .groups import active, group_table, plot_group_matrices, sparse_runs
from .lemmas import plot_theory, theory_table
from .linear_jepa import linear_jepa_figures, linear_jepa_table
from .multiinfo import (
    multiinformation_rows,
    multiinformation_table,
    plot_multiinformation,
    pooled_features,
    run_label,
)
from .notebooks import NotebookError, notebook_paths, run_notebooks
from .probes import REPORTED, baseline_values, plot_probes, probe_table, probe_values
from .runs import (
    METHOD_COLOURS,
    ablation_runs,
    describe,
    epochs_of,
    group_colours,
    group_of,
    head_of,
    lam_of,
    load_releases,
    main_runs,
    reference_lambda,
    seed_of,
)

__all__ = [
    "CURVES",
    "METHOD_COLOURS",
    "REPORTED",
    "NotebookError",
    "ablation_runs",
    "active",
    "baseline_values",
    "curves_table",
    "describe",
    "epochs_of",
    "figure_dir",
    "group_colours",
    "group_of",
    "group_table",
    "head_of",
    "lam_of",
    "lambda_table",
    "linear_jepa_figures",
    "linear_jepa_table",
    "load_releases",
    "logged_curves",
    "main_runs",
    "multiinformation_rows",
    "multiinformation_table",
    "notebook_paths",
    "plot_group_matrices",
    "plot_lambda_ablation",
    "plot_multiinformation",
    "plot_probes",
    "plot_theory",
    "plot_training_curves",
    "pooled_features",
    "probe_table",
    "probe_values",
    "reference_lambda",
    "run_label",
    "run_notebooks",
    "save",
    "save_table",
    "seed_of",
    "sparse_runs",
    "theory_table",
]
