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
# # 05 · The theory, numerically: DPI, its scope, and the grouping identity
#
# **Claims.** (Lemma A) Component-wise processing never raises multiinformation: for a product
# channel Y_i ~ K_i(·|X_i), M(Y) ≤ M(X). (Scope) A map that mixes coordinates can raise it:
# two independent fair bits (M = 0) mapped to (X1, X1) have M = log 2. (Lemma B) For a partition
# into groups, M(X) = M(between groups) + Σ_g M(within g), so the between-group part is at most the
# total. All values below are exact (closed-form Gaussian or enumerated discrete), no training and
# no estimator except the labelled plug-in and sample estimates.

# %%
import numpy as np
from IPython.display import Image

from sparsejepa import figures
from theory import lemmas

dpi = lemmas.dpi_experiment(np.random.default_rng(0), n_channels=200)
mixing = lemmas.mixing_counterexample(np.random.default_rng(0))
grouping = lemmas.grouping_identity(np.random.default_rng(0))
print(figures.save_table(figures.theory_table(dpi, mixing, grouping), "05_theory_numerics"))

# %%
Image(figures.save(figures.plot_theory(dpi, mixing, grouping), "05_theory_numerics"))
