"""Self-describing checkpoints: resolved config, trainable weights and the frozen backbones' identities.

Frozen pretrained parts are not copied into every checkpoint (a CLIP tower would dominate its size); they
are rebuilt from the config, and their identifiers (name and weight hash) are checked so that a model is
never silently assembled from different backbone weights than it was trained with. The contract this
relies on: every frozen parameter of a DetectorModel is reproducible from its config alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from avforensics.experiment.config import ExperimentConfig, config_from_dict, config_to_dict
from avforensics.models.base import DetectorModel
from avforensics.models.registry import build_model

FORMAT = "avforensics-checkpoint-1"
PAYLOAD_KEY = "avforensics"
MODEL_PREFIX = "model."


class CheckpointError(ValueError):
    """A checkpoint cannot rebuild its model; the message names the file and the reason."""


def saved_state_keys(model: DetectorModel) -> set[str]:
    """Names in `model.state_dict()` that a checkpoint stores: trainable parameters and persistent buffers."""
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    return set(model.state_dict()) - frozen


def describe(model: DetectorModel, config: ExperimentConfig) -> dict[str, Any]:
    """The part of a checkpoint that lets `load_model_from_checkpoint` rebuild the model without the run."""
    trainable, total = model.parameter_counts()
    return {
        "format": FORMAT,
        "config": config_to_dict(config),
        "model_name": model.name,
        "model_dimensions": dataclasses.asdict(model.dims),
        "frozen_backbones": dict(model.frozen_backbone_ids()),
        "parameters": {"trainable": trainable, "total": total},
    }


def load_model_from_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[DetectorModel, ExperimentConfig]:
    """Rebuild the detector of a training checkpoint, in eval mode, and return it with its resolved config."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    payload = checkpoint.get(PAYLOAD_KEY) if isinstance(checkpoint, dict) else None
    if not payload or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an avforensics training checkpoint (no {FORMAT!r} payload)")
    config = config_from_dict(payload["config"], source=f"{path} (stored config)")
    # The model's settings as trained; checkpoints written before they were stored ("model_kwargs" was
    # their earlier name) rebuild from the named config as it is now.
    dimensions = payload.get("model_dimensions", payload.get("model_kwargs"))
    if dimensions is None:
        model = build_model(config.model.name, config.model.config, **config.model.overrides)
    else:
        model = build_model(config.model.name, dimensions)
    check_frozen_backbones(model, payload["frozen_backbones"], path)
    state = model_state(checkpoint)
    check_state_keys(model, state, path)
    model.load_state_dict(state, strict=False)
    return model.eval(), config


def model_state(checkpoint: dict[str, Any]) -> dict[str, Tensor]:
    """The detector's weights in a Lightning checkpoint (whose keys carry the module's `model.` prefix)."""
    return {
        name[len(MODEL_PREFIX) :]: value
        for name, value in checkpoint["state_dict"].items()
        if name.startswith(MODEL_PREFIX)
    }


def check_frozen_backbones(model: DetectorModel, stored: dict[str, str], path: str | Path) -> None:
    rebuilt = dict(model.frozen_backbone_ids())
    if rebuilt != stored:
        changed = sorted(k for k in set(rebuilt) | set(stored) if rebuilt.get(k) != stored.get(k))
        details = "; ".join(f"{k}: trained with {stored.get(k)!r}, now {rebuilt.get(k)!r}" for k in changed)
        raise CheckpointError(f"{path}: frozen backbone weights differ from the training ones ({details})")


def check_state_keys(model: DetectorModel, state: dict[str, Tensor], path: str | Path) -> None:
    """The stored weights must be exactly the model's trainable parameters and buffers."""
    expected = saved_state_keys(model)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match model {model.name!r}: "
            f"{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}"
        )
