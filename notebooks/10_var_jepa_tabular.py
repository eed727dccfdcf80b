# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Var-JEPA on tables: T-JEPA vs Var-T-JEPA, the simulation study, uncertainty vs ambiguity
#
# **Claims (Var-JEPA, REFERENCE section 7).** One ELBO without EMA or stop-gradient (Var-T-JEPA)
# gives embeddings at least as useful as T-JEPA's (on Adult, T-JEPA's own README: MLP 0.825 raw ->
# 0.866); on a simulated mixture the full ELBO's latents identify the component (linear probe
# 0.996 from s_x) and its ablations do not; its latent standard deviations flag ambiguous rows
# (Spearman 0.64 with the true ambiguity; dropping uncertain rows raises accuracy).
#
# Inputs: `runs/tabular/<name>/results.json`, written by `experiments/tabular_var_jepa.sh`
# (`sparsejepa tabular compare` per table; `sparsejepa/tabular/README.md` has the commands, the
# budgets and the reading); `adult_pred64_e20` and `mnist_pred64_e40` are the same tables with the
# simulation study's learning predictor (2 x 64) trained 20x longer. Without them (a fresh
# checkout) the notebook runs a smoke comparison of tiny models and tags its outputs `_quick`.

# %%
from IPython.display import Image, Markdown, display

from sparsejepa.output import save_table
from sparsejepa.tabular import figures

TABLES = [
    "adult",
    "adult_pred64_e20",
    "mnist",
    "mnist_pred64_e40",
    "wine",
    "breast_cancer",
    "digits",
    "simulation",
]
results, tag = figures.load_or_quick(TABLES)
print(save_table(figures.tables(results), "10_var_jepa_tabular" + tag))

# %% [markdown]
# The first target, Var-T-JEPA at least T-JEPA: its gap per head in points (* = above, or within
# one standard error), read at Var-T-JEPA's posterior means and, where a `<table>_backbone`
# re-evaluation exists, at its backbone tokens, the readout T-JEPA's own embedding uses.

# %%
gaps = figures.var_minus_t(figures.readout_pairs(results))
Markdown(save_table(gaps, "10_var_minus_t_jepa" + tag))

# %% [markdown]
# The simulation study (Var-JEPA's Table 1): the full ELBO against its ablations, Var-T-JEPA's
# posterior means; the last two columns are Spearman correlations with the exact ambiguity.

# %%
simulation_runs = results if tag else figures.available(list(figures.SIMULATION_RUNS.values()))
Markdown(figures.simulation_table(simulation_runs))

# %% [markdown]
# Selective prediction: logistic regression on Var-T-JEPA embeddings, test rows ranked by each
# latent standard deviation (and, dashed, by the head's own confidence, for reference).

# %%
Image(figures.save(figures.plot_selective(results), "10_selective_prediction" + tag))

# %% [markdown]
# The simulated mixture: latent uncertainty vs the exact entropy of p(component | row), seed 0,
# at the preset and with a predictor that learns the conditional (each when its runs exist).

# %%
stems = {"simulation": "", "simulation_pred64_e100": "_learned_predictor"}
for name, stem in stems.items():
    if name in simulation_runs:
        sim = figures.plot_ambiguity(simulation_runs[name])
        display(Image(figures.save(sim, "10_uncertainty_vs_ambiguity" + stem + tag)))
