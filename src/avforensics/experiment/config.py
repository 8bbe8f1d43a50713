"""Experiment configuration: YAML files with `extends:` inheritance, dot-path overrides and strict validation.

A config is a tree of dataclasses so that a typo in a YAML file is an error naming the key and the file,
not a silently ignored setting; the resolved tree (after inheritance and overrides) is saved with every run
and inside every checkpoint, so a run and a model can be rebuilt from it alone.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.resources
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the source and the key."""


@dataclass
class ModelConfig:
    """Which detector to build: a registered name plus a named configuration or its `Dimensions` settings."""

    name: str = ""
    config: str | dict[str, Any] = "small"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TestDataConfig:
    """A second dataset that the test part comes from (cross-dataset protocols); empty `dataset`: none.

    `options` takes `prepared` (its own cache) and `adapter_options`; the other data options are shared.
    """

    dataset: str = ""
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where the clips come from; `batch_size` is the GLOBAL batch, split evenly over DDP processes.

    Window policies are the dataset's to interpret and check (e.g. random, all, consecutive, sliding).
    `val_from_train` > 0 carves that seeded fraction of the training part off as the validation part
    (identity-disjoint when the protocol is), for protocols that publish no validation part; `test`
    names a second dataset whose records make the test part (train on one dataset, test on another).
    `augment` maps training augmentations (`data.augment.AUGMENTATIONS`) to the probability each is applied
    to a training clip; empty (the default, and the paper configs) is no augmentation.
    """

    dataset: str = ""
    root: str = ""
    protocol: str = ""
    split_file: str = ""
    train_split: str = "train"
    val_split: str = "val"
    clip_frames: int = 16
    batch_size: int = 8
    workers: int = 0
    window_policy: str = "random"
    eval_window_policy: str = "all"
    val_from_train: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    test: TestDataConfig = field(default_factory=TestDataConfig)
    augment: dict[str, float] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule; milestones, step size, warmup in (possibly fractional) epochs."""

    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    schedule: str = "constant"
    milestones: list[float] = field(default_factory=list)
    step_size: float = 1.0
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    epochs: int = 15
    max_steps: int = -1
    grad_clip: float = 0.0


@dataclass
class LossConfig:
    """Per-term loss weights (terms not listed weigh 1) and the gradient combiner that applies them."""

    weights: dict[str, float] = field(default_factory=dict)
    combiner: str = "sum"
    combiner_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainerConfig:
    """Hardware, reproducibility, checkpointing, logging and early stopping."""

    precision: str = "auto"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    seed: int = 0
    deterministic: bool = False
    # The validation score that picks `best-*.ckpt`; "" keeps no best checkpoint: the last one is the
    # model (for papers that train to the end and report the final model).
    monitor: str = "val/video/overall/auc"
    monitor_mode: str = "max"
    early_stopping_patience: int = 0
    checkpoint_every_n_steps: int = 500
    log_every_n_steps: int = 50
    val_every_n_epochs: int = 1
    progress_bar: bool = True
    # CPU threads per process for torch (0: torch's default). Small models on a busy 2-core machine run
    # several times faster with 1 than with 2 (threads wait for each other more than they compute).
    threads: int = 0


@dataclass
class ExperimentConfig:
    """The whole experiment; `source` records the file it was loaded from (not part of the saved YAML)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    source: str = field(default="", compare=False, metadata={"saved": False})


_CHOICES: dict[str, tuple[str, ...]] = {
    "optim.optimizer": ("adam", "adamw", "sgd"),
    "optim.schedule": ("constant", "step", "multistep", "cosine"),
    "trainer.precision": ("auto", "32", "bf16-mixed", "bf16-true", "64"),
    "trainer.monitor_mode": ("min", "max"),
}


def shipped_configs() -> Path:
    """The folder of configs shipped inside the package (one sub-folder per detector)."""
    return Path(str(importlib.resources.files("avforensics").joinpath("configs")))


def resolve_config(name: str | Path) -> Path:
    """A config file by path, or by its shipped name: `avprompt/small` (or `avprompt/small.yaml`) is
    `configs/avprompt/small.yaml` inside the package, the same from a checkout and from an installed wheel."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_configs() / (path if path.suffix in (".yaml", ".yml") else path.with_suffix(".yaml"))
    if not path.is_absolute() and shipped.is_file():
        return shipped
    names = ", ".join(sorted(str(c.relative_to(shipped_configs()).with_suffix(""))
                             for c in shipped_configs().glob("*/*.yaml")))
    raise ConfigError(f"{name}: no such config file, and no shipped config of that name (shipped: {names})")


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a YAML config by path or shipped name (following `extends:`), apply `a.b.c=value` overrides,
    validate, return it."""
    path = resolve_config(path)
    tree = _read_with_extends(path, chain=())
    for override in overrides:
        apply_override(tree, override)
    config = config_from_dict(tree, source=str(path))
    config.source = str(path)
    return config


def config_from_dict(tree: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
    """Build and validate a config from a plain nested dict (e.g. the one stored in a checkpoint)."""
    config = _build(ExperimentConfig, tree, prefix="", source=source)
    validate(config, source)
    return config


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain nested dict of the config (tuples as lists), without bookkeeping fields such as `source`."""
    return _to_plain(config)


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, so the run can be repeated with `avforensics train <path>`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def apply_override(tree: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (`1e-3`, `[12]`, `true`, `{}`)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=1e-3")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: value is not valid YAML ({error})") from None
    parts = key.strip().split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {override!r}: {where} is a value, not a section")
        node = child
    node[parts[-1]] = value


def validate(config: ExperimentConfig, source: str) -> None:
    """Check value ranges and choices that types alone cannot express."""
    for dotted, allowed in _CHOICES.items():
        value = _get(config, dotted)
        if value not in allowed:
            raise ConfigError(f"{source}: {dotted} = {value!r}; expected one of {list(allowed)}")
    positive = {
        "data.batch_size": config.data.batch_size,
        "data.clip_frames": config.data.clip_frames,
        "optim.lr": config.optim.lr,
        "optim.epochs": config.optim.epochs,
        "trainer.checkpoint_every_n_steps": config.trainer.checkpoint_every_n_steps,
        "trainer.log_every_n_steps": config.trainer.log_every_n_steps,
        "trainer.val_every_n_epochs": config.trainer.val_every_n_epochs,
    }
    for dotted, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source}: {dotted} must be positive, got {value!r}")
    if not config.model.name:
        raise ConfigError(f"{source}: model.name is required")
    if not config.data.dataset:
        raise ConfigError(f"{source}: data.dataset is required")
    if config.optim.schedule == "multistep" and not config.optim.milestones:
        raise ConfigError(f"{source}: optim.schedule = multistep needs optim.milestones (epochs)")
    if config.optim.milestones != sorted(config.optim.milestones):
        raise ConfigError(f"{source}: optim.milestones must be increasing, got {config.optim.milestones}")
    if config.data.workers < 0:
        raise ConfigError(f"{source}: data.workers must be >= 0, got {config.data.workers}")
    if not 0.0 <= config.data.val_from_train < 1.0:
        raise ConfigError(f"{source}: data.val_from_train must be in [0, 1): {config.data.val_from_train}")
    if config.data.val_from_train and config.data.val_split == config.data.train_split:
        raise ConfigError(f"{source}: data.val_from_train carves the validation part off the training part; "
                          f"data.val_split must name another part than {config.data.train_split!r}")
    if config.trainer.early_stopping_patience > 0 and not config.trainer.monitor:
        raise ConfigError(f"{source}: trainer.early_stopping_patience needs a trainer.monitor")
    if config.trainer.threads < 0:
        raise ConfigError(f"{source}: trainer.threads must be >= 0, got {config.trainer.threads}")
    if config.data.augment:  # imported only then: the augmenter's libraries cost a second to load
        from avforensics.data.augment import AugmentConfigError, check_probabilities

        try:
            check_probabilities(config.data.augment)
        except AugmentConfigError as error:
            raise ConfigError(f"{source}: {error}") from None


def _read_with_extends(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Load one YAML file; `extends: base.yaml` (relative to the file) is deep-merged underneath it."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ConfigError(f"{path}: `extends` cycle: {cycle}")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found" + (f" (extended by {chain[-1]})" if chain else ""))
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(tree).__name__}")
    base_name = tree.pop("extends", None)
    if base_name is None:
        return tree
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: `extends` must be a file name, got {base_name!r}")
    base = _read_with_extends(path.parent / base_name, (*chain, resolved))
    return _deep_merge(base, tree)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Sections merge key by key; any other value (lists included) in `update` replaces the base value."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(cls: type, tree: Any, prefix: str, source: str) -> Any:
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'} must be a mapping, got {tree!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("saved", True)}
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        where = f"section {prefix!r}" if prefix else "the top level"
        raise ConfigError(
            f"{source}: unknown key {prefix + '.' if prefix else ''}{unknown[0]} in {where}; "
            f"allowed: {sorted(fields)}"
        )
    values = {}
    for name, value in tree.items():
        dotted = f"{prefix}.{name}" if prefix else name
        values[name] = _coerce(hints[name], value, dotted, source)
    return cls(**values)


def _coerce(hint: Any, value: Any, dotted: str, source: str) -> Any:
    """Check `value` against a field's type hint, converting where YAML is looser (ints for floats, lists)."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, dotted, source)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            with contextlib.suppress(ConfigError):
                return _coerce(option, value, dotted, source)
        raise ConfigError(f"{source}: {dotted} = {value!r} has the wrong type (expected {_type_name(hint)})")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {dotted} must be a mapping, got {value!r}")
        _, value_type = typing.get_args(hint)
        return {str(k): _coerce(value_type, v, f"{dotted}.{k}", source) for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {dotted} must be a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and len(args) != len(value):
            raise ConfigError(f"{source}: {dotted} must have {len(args)} items, got {value!r}")
        item_hints = [args[0]] * len(value) if origin is list else list(args)
        items = [_coerce(h, v, dotted, source) for h, v in zip(item_hints, value, strict=True)]
        return items if origin is list else tuple(items)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        # PyYAML reads `1e-4` (no dot) as a string; it is the usual way to write a learning rate.
        return float(value)
    if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: {dotted} = {value!r} has the wrong type (expected {_type_name(hint)})")


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {
            f.name: _to_plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("saved", True)
        }
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _get(config: ExperimentConfig, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node
