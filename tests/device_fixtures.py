"""The three detectors' tiny test models and batches by name, and moving a batch to a device or dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import avprompt_fixtures
import cad_fixtures
import macbdf_fixtures
import torch

from avforensics.models.base import DetectorModel

TINY: dict[str, tuple[Callable[..., DetectorModel], Callable[[], dict[str, Any]]]] = {
    "avprompt": (avprompt_fixtures.tiny_model, avprompt_fixtures.tiny_batch),
    "macbdf": (macbdf_fixtures.tiny_model, macbdf_fixtures.tiny_batch),
    "cad": (cad_fixtures.tiny_cad, cad_fixtures.tiny_batch),
}


def moved(
    batch: dict[str, Any], device: str | torch.device, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """`batch` on `device`; floating-point tensors also cast to `dtype` when given (labels stay integers)."""
    def move(value: torch.Tensor) -> torch.Tensor:
        return value.to(device, dtype if dtype is not None and value.is_floating_point() else None)

    return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def finite_gradients(model: DetectorModel) -> tuple[int, list[str]]:
    """How many parameters received a gradient, and the names of those whose gradient is not finite."""
    touched, bad = 0, []
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            touched += 1
            if not bool(torch.isfinite(parameter.grad).all()):
                bad.append(name)
    return touched, bad
