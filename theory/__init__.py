"""Multiinformation (total correlation) estimators for embedding matrices; see theory/README.md.

`theory.tasks` (ground-truth tasks) and `theory.linear_jepa` are submodules imported on demand.
"""

from theory.closed_forms import gaussian_multiinformation, student_t_multiinformation
from theory.estimators import (
    METHODS,
    Decomposition,
    Estimate,
    choose_method,
    decompose,
    multiinformation,
)
from theory.inputs import parse_groups
from theory.knn import kl_entropy
from theory.monitor import monitor

__all__ = [
    "METHODS",
    "Decomposition",
    "Estimate",
    "choose_method",
    "decompose",
    "gaussian_multiinformation",
    "kl_entropy",
    "monitor",
    "multiinformation",
    "parse_groups",
    "student_t_multiinformation",
]
