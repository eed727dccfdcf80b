"""Multiinformation (total correlation) estimators for embedding matrices; see theory/README.md.

`theory.tasks` (ground-truth tasks) and `theory.linear_jepa` are submodules imported on demand.
"""

from theory.estimators import (
    METHODS,
    Decomposition,
    Estimate,
    choose_method,
    decompose,
    gaussian_multiinformation,
    multiinformation,
    parse_groups,
)
from theory.knn import kl_entropy

__all__ = [
    "METHODS",
    "Decomposition",
    "Estimate",
    "choose_method",
    "decompose",
    "gaussian_multiinformation",
    "kl_entropy",
    "multiinformation",
    "parse_groups",
]
