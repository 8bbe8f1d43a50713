"""The LightningModule that trains any DetectorModel through the contract of `models.base`.

Optimisation is manual so the gradient combiner, not `loss.backward()`, writes the gradients: the plain
weighted sum and OM-Pareto then share one loop. Because the combiner may take several backward passes (one
per loss group), DDP's gradient hooks are left idle and gradients are averaged across processes here, after
the combiner, before the optimiser step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from avforensics.experiment.checkpoint import (
    MODEL_PREFIX,
    PAYLOAD_KEY,
    check_state_keys,
    describe,
    model_state,
    saved_state_keys,
)
from avforensics.experiment.config import ExperimentConfig
from avforensics.experiment.predictions import PREDICTION_COLUMNS, MetricsFunction, prediction_rows
from avforensics.models.base import DetectorModel
from avforensics.train.gradients import GradientCombiner
from avforensics.train.optim import build_optimizer, build_scheduler


class DetectorModule(pl.LightningModule):
    """Training and validation of one detector under one experiment config."""

    def __init__(
        self,
        model: DetectorModel,
        config: ExperimentConfig,
        combiner: GradientCombiner,
        metrics: MetricsFunction,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Frozen parameters are rebuilt from the config, not stored; `on_load_checkpoint` checks the rest.
        self.strict_loading = False
        self.model = model
        self.experiment = config
        self.combiner = combiner
        self.metrics = metrics
        self._rows: list[dict[str, Any]] = []

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(
            self.model.named_parameters(), self.experiment.optim, self.model.lr_scales()
        )
        # A fresh loader only for its length: asking the trainer instead (estimated_stepping_batches) would
        # start the real training loader before a resume could restore its position.
        steps_per_epoch = self.trainer.datamodule.steps_per_epoch()
        scheduler = build_scheduler(optimizer, self.experiment.optim, steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        optimizer = self.optimizers()
        scheduler = self.lr_schedulers()
        outputs = self.model(batch)
        losses = self.model.losses(outputs, batch)
        weights = self._loss_weights(losses)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer.zero_grad(set_to_none=True)
        diagnostics = self.combiner.backward(losses, weights, self.model.gradient_groups(), trainable)
        self._average_gradients_across_processes(trainable)
        if self.experiment.optim.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.experiment.optim.grad_clip,
                                gradient_clip_algorithm="norm")
        optimizer.step()
        scheduler.step()
        total = sum(weights[name] * loss.detach() for name, loss in losses.items())
        batch_size = len(batch["video_id"])
        logged = {f"train/loss_{name}": loss.detach() for name, loss in losses.items()}
        logged["train/loss"] = total
        logged["train/lr"] = optimizer.param_groups[0]["lr"]
        logged.update({f"train/{name}": value for name, value in diagnostics.items()})
        self.log_dict(logged, batch_size=batch_size, sync_dist=True)
        self.log("train/loss_step", total, batch_size=batch_size, prog_bar=True, logger=False)
        return total

    def on_validation_epoch_start(self) -> None:
        self._rows = []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        outputs = self.model(batch)
        losses = self.model.losses(outputs, batch)
        weights = self._loss_weights(losses)
        total = sum(weights[name] * loss for name, loss in losses.items())
        self.log("val/loss", total, batch_size=len(batch["video_id"]), sync_dist=True)
        self._rows.extend(prediction_rows(batch, outputs.probabilities()))

    def on_validation_epoch_end(self) -> None:
        rows = gather_rows(self._rows)
        self._rows = []
        table = {column: [row[column] for row in rows] for column in PREDICTION_COLUMNS}
        # Every process holds the gathered table, so the values are identical; averaging them is exact.
        metrics = {f"val/{name}": float(value) for name, value in self.metrics(table).items()}
        self.log_dict(metrics, prog_bar=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {MODEL_PREFIX + name for name in saved_state_keys(self.model)}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint[PAYLOAD_KEY] = describe(self.model, self.experiment)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Loading is not strict (frozen weights are absent by design), so check the rest here.
        check_state_keys(self.model, model_state(checkpoint), "checkpoint being resumed")

    def _loss_weights(self, losses: Mapping[str, Tensor]) -> dict[str, float]:
        configured = self.experiment.loss.weights
        unknown = sorted(set(configured) - set(losses))
        if unknown:
            raise KeyError(
                f"{self.experiment.source or 'config'}: loss.weights names {unknown}, but model "
                f"{self.model.name!r} returns loss terms {sorted(losses)}"
            )
        return {name: float(configured.get(name, 1.0)) for name in losses}

    def _average_gradients_across_processes(self, parameters: Sequence[nn.Parameter]) -> None:
        """Mean gradient over processes in one collective; a parameter no process touched keeps grad None."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        touched = torch.tensor([float(p.grad is not None) for p in parameters], device=grads[0].device)
        flat = torch.cat([_flatten_dense_tensors([g.float() for g in grads]), touched])
        dist.all_reduce(flat)
        numel = flat.numel() - len(parameters)
        mean = flat[:numel] / dist.get_world_size()
        for parameter, grad, count in zip(
            parameters, _unflatten_dense_tensors(mean, grads), flat[numel:].tolist(), strict=True
        ):
            parameter.grad = grad.to(parameter.dtype) if count > 0 else None


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All processes' prediction rows, in a rank-independent order (by video, then window)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, rows)
        rows = [row for part in parts for row in part]
    return sorted(rows, key=lambda row: (row["video_id"], row["window"]))
