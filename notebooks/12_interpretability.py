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
# # 12 · Are the head's channel groups about something? The interpretability claim, measured
#
# **Claim** (SparseJEPA, secondary source): the latent variables become shared among semantically
# related features, so the representation is more interpretable. **Test**: the pooled last-layer
# features of each release, split into the sparsity head's 8 contiguous groups of 16 channels and
# into random groups of the same channels; per group a softmax probe of the 20 CIFAR-100
# superclasses from its channels alone gives a variational lower bound on I(group; superclass)
# and the same bound per superclass, from which come the effective number of superclasses a group
# is about and the diversity among the groups (`sparsejepa.interpretability`). If the head made
# its groups specialise, SparseJEPA's contiguous groups are about fewer superclasses and differ
# more from one another than random groups of its channels, and than JEPA's groups. Numbers from
# `experiments/interpretability.py` (`experiments/results/interpretability.jsonl`).

# %%
from IPython.display import Image

from sparsejepa import figures
from sparsejepa.figures import interpretability

rows = interpretability.load_rows()
print(figures.save_table(interpretability.table(rows), "12_interpretability"))

# %%
Image(figures.save(interpretability.plot(rows), "12_interpretability"))
