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
# # 04 · Multiinformation of the learned representations
#
# **Claim.** Grouping reduces the multiinformation among latent variables. We measure the
# multiinformation (total correlation, nats) of the mean-pooled last-layer features of each frozen
# target encoder on up to 2000 class-stratified test images of its training set: in total, between
# the G contiguous channel groups the sparsity head uses (each group one vector variable) and
# summed within the groups (`theory.decompose`; total = between + Σ within + an estimation
# residual). Estimator: Gaussian copula (normal scores; exact for Gaussian copulas, a lower-variance
# proxy otherwise, see `theory/README.md`). Intervals: 95% half-sampling intervals of total and
# between (sampling variability only, not estimator bias). Gaussian-copula M is -1/2 log det of the
# normal-score correlation: for nearly degenerate features (low RankMe, early training) it is
# dominated by the smallest eigenvalues and can reach hundreds of nats; compare runs at equal N.

# %%
from IPython.display import Image

from sparsejepa import figures

releases = figures.main_runs(figures.load_releases())
rows = figures.multiinformation_rows(releases, n=2000)
print(figures.save_table(figures.multiinformation_table(rows), "04_multiinformation"))

# %%
Image(figures.save(figures.plot_multiinformation(rows), "04_multiinformation"))
