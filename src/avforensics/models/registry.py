"""Registry of detectors by name, so configs, checkpoints and the CLI refer to models by string."""

from __future__ import annotations

from typing import Any

from avforensics.models.base import DetectorModel

_MODELS: dict[str, type[DetectorModel]] = {}

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
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted(_MODELS)) or "none"
        raise KeyError(f"unknown model {name!r}; registered models: {known}") from None


def resolve_model_kwargs(
    name: str, config: str | dict[str, Any] = "small", **overrides: Any
) -> dict[str, Any]:
    """The constructor arguments a named configuration (e.g. "paper", "small") plus overrides stands for.

    Checkpoints store these rather than the name, so that they still load after a named config changes."""
    cls = model_class(name)
    if isinstance(config, str):
        if config not in cls.configs:
            raise KeyError(f"model {name!r} has no configuration {config!r}; it has: {sorted(cls.configs)}")
        kwargs = dict(cls.configs[config])
    else:
        kwargs = dict(config)
    kwargs.update(overrides)
    return kwargs


def build_model(name: str, config: str | dict[str, Any] = "small", **overrides: Any) -> DetectorModel:
    """Build a detector from a named configuration or explicit keyword arguments (`resolve_model_kwargs`)."""
    return model_class(name)(**resolve_model_kwargs(name, config, **overrides))


def registered_models() -> dict[str, type[DetectorModel]]:
    return dict(sorted(_MODELS.items()))
