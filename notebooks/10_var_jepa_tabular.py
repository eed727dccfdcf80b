# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Var-JEPA on tables: T-JEPA vs Var-T-JEPA, selective prediction, uncertainty vs ambiguity
#
# **Claim (Var-JEPA, REFERENCE section 7).** One ELBO without EMA or stop-gradient (Var-T-JEPA)
# gives embeddings at least as useful as T-JEPA's, and its latent standard deviations flag
# ambiguous rows: dropping the most uncertain test rows raises accuracy, and on a simulated table
# the uncertainty correlates with the true ambiguity (the source reports Spearman 0.64).
#
# Inputs: `runs/tabular/<table>/results.json` from
# `sparsejepa tabular compare --config <table> --out runs/tabular/<table>` for the tables
# wine, breast_cancer, digits, mixture (`sparsejepa/tabular/README.md` has the runtimes). Without
# them (a fresh checkout) the notebook runs a smoke comparison of tiny models and tags its outputs
# `_quick`.

# %%
from IPython.display import Image

from sparsejepa.tabular import figures

results, tag = figures.load_or_quick(["wine", "breast_cancer", "digits", "mixture"])
print(figures.save_table(figures.tables(results), "10_var_jepa_tabular" + tag))

# %% [markdown]
# Selective prediction: logistic regression on Var-T-JEPA embeddings, test rows ranked by each
# latent standard deviation (and, dashed, by the head's own confidence, for reference).

# %%
Image(figures.save(figures.plot_selective(results), "10_selective_prediction" + tag))

# %% [markdown]
# The simulated mixture: latent uncertainty vs the exact entropy of p(component | row), seed 0.

# %%
Image(figures.save(figures.plot_ambiguity(results["mixture"]), "10_uncertainty_vs_ambiguity" + tag))
