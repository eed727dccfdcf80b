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
# # 05 · The theory, numerically: DPI, its scope, and the grouping identity
#
# **Claims.** (Lemma A) Component-wise processing never raises multiinformation: for a product
# channel Y_i ~ K_i(·|X_i), M(Y) ≤ M(X). (Scope) A map that mixes coordinates can raise it:
# two independent fair bits (M = 0) mapped to (X1, X1) have M = log 2. (Lemma B) For a partition
# into groups, M(X) = M(between groups) + Σ_g M(within g), so the between-group part is at most the
# total. All values below are exact (closed-form Gaussian or enumerated discrete), no training and
# no estimator except the labelled plug-in and sample estimates.

# %%
from IPython.display import Image

from sparsejepa import figures

dpi = figures.dpi_experiment(n_channels=200, seed=0)
mixing = figures.mixing_counterexample()
grouping = figures.grouping_identity()
print(figures.save_table(figures.theory_table(dpi, mixing, grouping), "05_theory_numerics"))

# %%
Image(figures.save(figures.plot_theory(dpi, mixing, grouping), "05_theory_numerics"))
