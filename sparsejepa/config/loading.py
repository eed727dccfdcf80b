"""Building a config: nested dicts checked key by key, YAML presets, `key=value` overrides."""

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from .rules import check, validate
from .schema import CHOICES, RETIRED_KEYS, Config, ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


def _coerce(value, tp, key: str):
    """Check/convert a YAML value to the annotated type `tp`, or raise ConfigError naming `key`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)) or (origin is tuple and len(value) != len(args)):
            raise ConfigError(
                f"{key}: expected a list of {len(args) if origin is tuple else 'N'} "
                f"values like [0.1, 0.2], got {value!r}"
            )
        items = [
            _coerce(v, args[i] if origin is tuple else args[0], key) for i, v in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "5e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _update(obj, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if full in RETIRED_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"unknown config key '{full}'; valid keys here: {sorted(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a mapping of sub-keys, got {value!r}")
            _update(current, value, full + ".")
            continue
        value = _coerce(value, hints[key], full)
        if full in CHOICES and value not in CHOICES[full]:
            raise ConfigError(f"{full}: must be one of {CHOICES[full]}, got {value!r}")
        setattr(obj, key, value)


def from_dict(values: dict, *, cls=Config, check=check):
    """A `cls` (default: the image `Config`) from nested `values`, type-checked key by key, then
    validated: every float finite, the shared sections (`SECTION_RULES`), then `check`;
    ConfigError names the offending key and what it must be."""
    cfg = cls()
    _update(cfg, values)
    validate(cfg, check)
    return cfg


def parse_override(text: str) -> dict:
    """'optim.lr=1e-3' -> {'optim': {'lr': 0.001}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    value = _yaml(raw, f"override {text!r}") if raw.strip() else None
    if isinstance(value, str) and raw.strip().lower() in ("none", "null"):
        value = None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _yaml(text: str, where: str):
    """YAML text parsed, or ConfigError naming `where` and the line and column at fault."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        hint = "; YAML indents with spaces, never tabs" if "\t" in text else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}{hint}") from None


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in preset_dir.glob("*.yaml"))


def load_config(
    name_or_path: str,
    overrides: list[str] = (),
    *,
    preset_dir: Path = PRESET_DIR,
    build=from_dict,
    what: str = "config",
):
    """Load a preset name (see `presets()`) or a YAML file, then apply `key=value` overrides.

    Other config families (the tabular package) pass their `preset_dir`, their `build` (nested
    dict -> checked config, e.g. `from_dict` with `cls` and `check`) and `what` for the
    not-found message.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = preset_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{what} '{name_or_path}' not found: give a YAML file or one of the presets "
            f"{presets(preset_dir)}"
        )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} {path} is not a readable text file ({err})") from None
    values = _yaml(text, f"{what} {path}") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return build(apply_overrides(values, overrides))


def apply_overrides(values: dict, overrides=()) -> dict:
    """Merge `key=value` override strings into a nested config dict (in place; returned)."""
    for text in overrides:
        _merge(values, parse_override(text))
    return values
