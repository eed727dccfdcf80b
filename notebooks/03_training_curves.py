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
# # 03 · Training curves: does the sparsity head keep the predictive (JEPA) loss?
#
# **Claim.** SparseJEPA adds its penalty "while maintaining predictive performance". From each
# release's `metrics.jsonl`: the JEPA loss (smooth-L1 to the layer-normed target tokens), the head's
# reconstruction and KL terms, RankMe of the pooled target features on a fixed batch of 512 train
# images (an anti-collapse health signal; a falling loss alone is not one) and the number of active
# group connections, against the training step; with the multiinformation monitor of newer runs
# also the total and between-group multiinformation of those features (nats, Gaussian copula).
# Colour: the group (method, λ, training epochs; lighter for the shorter run of a method), line
# style: the seed (solid 0, dashed 1).

# %%
from IPython.display import Image

from sparsejepa import figures

releases = figures.main_runs(figures.load_releases())
print(figures.save_table(figures.curves_table(releases), "03_training_curves"))

# %%
Image(figures.save(figures.plot_training_curves(releases), "03_training_curves"))
