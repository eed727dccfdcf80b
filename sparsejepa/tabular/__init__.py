"""Tabular T-JEPA and Var-T-JEPA (REFERENCE section 7): data, models, ELBO, training, evaluation.

Modules: `config` (typed presets), `data` (tables), `masks` (feature masks), `models` (tokenizer,
encoder, predictor, T-JEPA, Var-T-JEPA), `losses` (closed-form KLs, likelihoods), `train`
(resumable loop), `evaluate` (heads, uncertainty), `experiment` (the comparison tables), `cli`.
"""
