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
# # 06 · Deep linear JEPA vs MAE: JEPA learns high-influence features first, more so with depth
#
# **Claim (Littwin et al. 2024).** In deep linear networks, JEPA (self-distillation with a
# stop-gradient) learns features in order of their regression coefficient ρ, MAE in order of their
# covariance λ; depth strengthens JEPA's bias until the order inverts. Closed-form dynamics from
# `theory.linear_jepa` (verified against full-matrix gradient descent in its tests); GD time
# (steps × lr). Top figure: w_i(t)/w_i* per feature for ρ ordered like and against λ at depths
# 1, 2, 4. Bottom: critical-time ratios against depth, and the inversion pair of REFERENCE.md.
# `paper_figures/linear_jepa.py` renders the same figures from the same functions.

# %%
from IPython.display import Image

from sparsejepa import figures

print(figures.save_table(figures.linear_jepa_table(), "06_linear_jepa_vs_mae"))

# %%
paths = [figures.save(fig, name) for name, fig in figures.linear_jepa_figures().items()]
Image(paths[0])

# %%
Image(paths[1])
