"""Deep linear JEPA vs MAE: full-matrix GD, per-feature ODEs, critical times, learning order.

See theory/linear_jepa/README.md for conventions (gd time vs the paper's time, factor L).
Plotting lives in theory.linear_jepa.plots (imports matplotlib).
"""

from theory.linear_jepa.dynamics import (
    Feature,
    FixedPoint,
    critical_time,
    critical_time_series,
    encoder_rhs,
    encoder_trajectory,
    fixed_point,
    inversion_depth,
    learned_first,
    order_survey,
    sample_feature_pairs,
)
from theory.linear_jepa.simulate import (
    Simulation,
    empirical_covariances,
    gd_step,
    initial_factors,
    population_covariances,
    sample_dynamic_two_view,
    sample_static_two_view,
    simulate,
    two_view_parameters,
)

__all__ = [
    "Feature",
    "FixedPoint",
    "Simulation",
    "critical_time",
    "critical_time_series",
    "empirical_covariances",
    "encoder_rhs",
    "encoder_trajectory",
    "fixed_point",
    "gd_step",
    "initial_factors",
    "inversion_depth",
    "learned_first",
    "order_survey",
    "population_covariances",
    "sample_dynamic_two_view",
    "sample_feature_pairs",
    "sample_static_two_view",
    "simulate",
    "two_view_parameters",
]
