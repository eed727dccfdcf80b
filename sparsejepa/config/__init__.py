"""Typed run configuration: dataclasses (`schema`), what each field must be (`rules`), YAML
presets and `key=value` overrides with clear errors (`loading`)."""

from .loading import PRESET_DIR, apply_overrides, from_dict, load_config, parse_override, presets
from .rules import SECTION_RULES, check, check_training_set, mask_success_rate, steps_rules
from .schema import (
    CHOICES,
    RETIRED_KEYS,
    Config,
    ConfigError,
    DataConfig,
    MaskConfig,
    ModelConfig,
    OptimConfig,
    ProbeConfig,
    SparsityConfig,
    TrainConfig,
    VarConfig,
    to_dict,
)

__all__ = [
    "CHOICES",
    "PRESET_DIR",
    "RETIRED_KEYS",
    "SECTION_RULES",
    "Config",
    "ConfigError",
    "DataConfig",
    "MaskConfig",
    "ModelConfig",
    "OptimConfig",
    "ProbeConfig",
    "SparsityConfig",
    "TrainConfig",
    "VarConfig",
    "apply_overrides",
    "check",
    "check_training_set",
    "from_dict",
    "load_config",
    "mask_success_rate",
    "parse_override",
    "presets",
    "steps_rules",
    "to_dict",
]
