"""Optimisers and learning-rate schedules from `OptimConfig`.

Schedules are written in epochs, as the papers state them (AV prompt learning: Adam, lr 1e-4, x0.1 at epoch
12 of 15), but evaluated per optimiser step, so warmup is smooth and a mid-epoch resume continues at the
exact step. A milestone at epoch m takes effect once m epochs are complete (torch's MultiStepLR reading).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from avforensics.experiment.config import OptimConfig


def build_optimizer(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    config: OptimConfig,
    lr_scales: Mapping[str, float] | None = None,
) -> torch.optim.Optimizer:
    """The optimiser over the trainable parameters, one group per lr scale (`DetectorModel.lr_scales`).

    A parameter takes the scale of the longest prefix of its name in `lr_scales`, else 1. The scheduler
    multiplies every group's lr by the same factor, so the ratios hold through warmup and decay.
    """
    scales = dict(lr_scales or {})
    for prefix, scale in scales.items():
        if not scale > 0:
            raise ValueError(f"lr scale of {prefix!r} must be positive, got {scale}")
    by_scale: dict[float, list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if parameter.requires_grad:
            matches = [prefix for prefix in scales if name.startswith(prefix)]
            scale = scales[max(matches, key=len)] if matches else 1.0
            by_scale.setdefault(scale, []).append(parameter)
    if not by_scale:
        raise ValueError("the model has no trainable parameters")
    groups = [{"params": params, "lr": config.lr * scale} for scale, params in by_scale.items()]
    if config.optimizer in ("adam", "adamw"):
        adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return adam(groups, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                    **adam_kernel([p for params in by_scale.values() for p in params]))
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}; expected adam, adamw or sgd")


def adam_kernel(parameters: list[nn.Parameter]) -> dict[str, bool]:
    """One fused CUDA kernel for the whole update where every parameter is on a GPU (the step's launch
    overhead dominates small LoRA / adapter tensors), else the multi-tensor `foreach` path. Same update."""
    if parameters and all(p.is_cuda for p in parameters):
        return {"fused": True}
    return {"foreach": True}


@dataclass
class LrFactor:
    """lr(step) / base lr; plain fields only, so its state loads with `torch.load(weights_only=True)`."""

    schedule: str
    steps_per_epoch: int
    total_epochs: float
    warmup_epochs: float
    milestones: list[float]
    step_size: float
    gamma: float
    min_ratio: float

    def __call__(self, step: int) -> float:
        epoch = step / self.steps_per_epoch
        warmup = 1.0
        if epoch < self.warmup_epochs:
            warmup = (step + 1) / max(1.0, self.warmup_epochs * self.steps_per_epoch)
        return warmup * self._decay(epoch)

    def _decay(self, epoch: float) -> float:
        # A small tolerance keeps "epoch 12" from landing a step late through float division.
        epoch = epoch + 1e-9
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            return self.gamma ** math.floor(epoch / self.step_size)
        if self.schedule == "multistep":
            return self.gamma ** sum(1 for milestone in self.milestones if milestone <= epoch)
        if self.schedule == "cosine":
            span = max(self.total_epochs - self.warmup_epochs, 1e-12)
            progress = min(max((epoch - self.warmup_epochs) / span, 0.0), 1.0)
            return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        raise ValueError(f"unknown schedule {self.schedule!r}; expected constant, step, multistep or cosine")


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler; `steps_per_epoch` converts the config's epochs into optimiser steps."""
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    total_epochs = float(config.epochs)
    if config.max_steps > 0:
        total_epochs = min(total_epochs, config.max_steps / steps_per_epoch)
    factor = LrFactor(
        schedule=config.schedule,
        steps_per_epoch=steps_per_epoch,
        total_epochs=total_epochs,
        warmup_epochs=config.warmup_epochs,
        milestones=list(config.milestones),
        step_size=config.step_size,
        gamma=config.gamma,
        min_ratio=config.min_lr / config.lr,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
