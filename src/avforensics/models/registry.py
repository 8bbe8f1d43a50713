"""Registry of detectors by name, so configs, checkpoints and the CLI refer to models by string."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from avforensics.models.base import DetectorModel

_MODELS: dict[str, type[DetectorModel]] = {}
# The shipped detectors, imported (and so registered) when first asked for by name: loading one checkpoint
# imports only its own detector, not the others' libraries (peft costs seconds of a start-up).
BUILTIN_MODULES: dict[str, str] = {
    "avprompt": "avforensics.models.avprompt",
    "cad": "avforensics.models.cad",
    "macbdf": "avforensics.models.macbdf",
}

def register_model(cls: type[DetectorModel]) -> type[DetectorModel]:
    """Class decorator: make a detector buildable by its `name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} must set a class attribute `name` to be registered")
    if cls.name in _MODELS and _MODELS[cls.name] is not cls:
        existing = _MODELS[cls.name].__qualname__
        raise ValueError(f"a model named {cls.name!r} is already registered ({existing})")
    _MODELS[cls.name] = cls
    return cls

def model_class(name: str) -> type[DetectorModel]:
    if name not in _MODELS and name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name])
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted({*_MODELS, *BUILTIN_MODULES})) or "none"
        raise KeyError(f"unknown model {name!r}; registered models: {known}") from None


def resolve_dimensions(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> Any:
    """The `Dimensions` a named configuration (e.g. "paper", "small") or a stored dict, plus overrides, stands
    for; a setting the detector does not have, or one missing, is an error naming it."""
    cls = model_class(name)
    if isinstance(config, str):
        if config not in cls.configs:
            raise KeyError(f"model {name!r} has no configuration {config!r}; it has: {sorted(cls.configs)}")
        settings = dataclasses.asdict(cls.configs[config])
    else:
        settings = dict(config)
    settings.update(overrides)
    fields = {field.name: field for field in dataclasses.fields(cls.Dimensions)}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise KeyError(f"model {name!r} has no setting(s) {unknown}; its settings are: {sorted(fields)}")
    missing = sorted(
        field.name for field in fields.values()
        if field.name not in settings
        and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    )
    if missing:
        raise KeyError(f"model {name!r}: settings {missing} are required")
    return cls.Dimensions(**settings)


def build_model(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> DetectorModel:
    """Build a detector from a named configuration or stored settings (`resolve_dimensions`)."""
    return model_class(name)(resolve_dimensions(name, config, **overrides))


def registered_models() -> dict[str, type[DetectorModel]]:
    """Every detector: the shipped ones (imported here) and any other registered."""
    for module in BUILTIN_MODULES.values():
        importlib.import_module(module)
    return dict(sorted(_MODELS.items()))


def random_backbone_overrides(name: str, config: str | dict[str, Any] = "small") -> dict[str, None]:
    """Overrides that build a configuration with random backbones: every weights setting naming a checkpoint
    set to None. Throughput does not depend on the weights, so benchmarks and GPU checks run without them."""
    dims = resolve_dimensions(name, config)
    return {
        field.name: None
        for field in dataclasses.fields(dims)
        if field.name.endswith("_weights") and isinstance(getattr(dims, field.name), str)
    }
