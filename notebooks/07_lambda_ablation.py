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
# # 07 · The λ ablation: what the group-lasso strength does to transfer and multiinformation
#
# **Claim.** The penalty (λ > 0) is what brings the gains; λ = 0 keeps the oi-VAE head (recon +
# KL) without sparsity. For every released λ (SparseJEPA; JEPA as dashed lines): linear-probe
# top-1 per task (`best_by_val`, mean over seeds), active group connections, and the total and
# between-group multiinformation of the pooled features (as in notebook 04, with intervals), with
# the JEPA runs trained as long as the SparseJEPA runs.

# %%
from IPython.display import Image

from sparsejepa import figures

releases = figures.ablation_runs(figures.load_releases())
rows = figures.multiinformation_rows(releases, n=2000)
print(figures.save_table(figures.lambda_table(releases, rows), "07_lambda_ablation"))

# %%
Image(figures.save(figures.plot_lambda_ablation(releases, rows), "07_lambda_ablation"))
