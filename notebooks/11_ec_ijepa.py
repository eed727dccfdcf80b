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
# `experiments/ec_ijepa.py` at one short equal budget with the converged probe; the probe never
# conditions (the target encoder sees the whole image).

# %%
from IPython.display import Image

from sparsejepa import figures
from sparsejepa.figures import ec

rows = ec.load_rows()
print(figures.save_table(ec.table(rows), "11_ec_ijepa"))

# %%
Image(figures.save(ec.plot(rows), "11_ec_ijepa"))
