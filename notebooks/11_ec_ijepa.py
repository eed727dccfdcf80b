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
# # 11 · EC-IJEPA: encoders conditioned on where the other window is
#
# **Claims** (Littwin, Thilak & Gopalakrishnan, arXiv 2410.10773; qualitative, its numbers were
# not recovered): conditioning the context encoder on the target windows' positions and the target
# encoder on the context window's gives (1) better classification, (2) robustness to the context
# window's size and (3) better sample efficiency than I-JEPA. Ours: `model.conditioning=ec` (one
# token per window: a learned token + the mean sin-cos position of its patches), measured by
# `experiments/ec_ijepa.py` at short equal budgets (3 and 9 epochs: all three measurements; the
# classification panel at 9 epochs is one seed) with the converged probe, and by the released
# encoders at the full CPU-hour preset (classification, 2 seeds each); the probe never conditions
# (the target encoder sees the whole image). Read every number against the initialisation, the
# first point of each sample-efficiency curve: at 3 epochs the probe is still near it.

# %%
from IPython.display import Image

from sparsejepa import figures
from sparsejepa.figures import ec

rows = ec.load_rows()
print(figures.save_table(ec.table(rows), "11_ec_ijepa"))

# %%
Image(figures.save(ec.plot(rows), "11_ec_ijepa"))

# %% [markdown]
# The same measurements over a longer run: 9 epochs of the same preset, seed 0 of each method (the
# classification panel is that one seed). Clear of the initialisation, both methods lose about 3
# points at the smallest context; EC-IJEPA's curve is 0.7 flatter, inside one seed's noise.

# %%
rows_9 = ec.load_rows(ec.results_path(9))
print(figures.save_table(ec.table(rows_9), "11_ec_ijepa_9ep"))
Image(figures.save(ec.plot(rows_9), "11_ec_ijepa_9ep"))

# %% [markdown]
# Classification at the full preset (`cifar100_cpu`, 32 epochs): the released EC-IJEPA encoders
# beside the JEPA releases of the same budget (`reproduce` probes, converged; none where no EC-IJEPA
# encoder is released).

# %%
print(figures.save_table(ec.release_table(figures.load_releases()), "11_ec_ijepa_preset"))
