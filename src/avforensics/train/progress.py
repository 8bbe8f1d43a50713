"""The one line a training run shows: epoch, step, loss, the last validation score and the time left.

On a terminal the line is redrawn in place; in a log file (or any other stream that is not a terminal) it
is written as a new line after the first step, after each validation, every `interval` seconds and at the
end, so a log holds the run's course without a line per step.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import IO, Any

import pytorch_lightning as pl


class ProgressLine(pl.Callback):
    """Prints the run's progress line from the first process (`monitor` names the validation score)."""

    def __init__(self, monitor: str, stream: IO[str] | None = None, interval: float = 30.0) -> None:
        self.monitor = monitor
        self.stream = stream
        self.interval = interval
        self.total_steps = 0
        self.first_step = 0
        self.started = self.last_written = 0.0
        self.last_line = ""
        self.loss_sum, self.loss_count = 0.0, 0
        self.score: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.total_steps = planned_steps(trainer)
        self.first_step = trainer.global_step
        self.started = time.monotonic()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.loss_sum, self.loss_count = 0.0, 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.loss_sum += float(loss)
            self.loss_count += 1
        first = trainer.global_step == self.first_step + 1
        self._show(trainer, force=first)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            self.score = float(value)
        if not trainer.sanity_checking:
            self._show(trainer, force=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._show(trainer, force=True, final=True)

    def line(self, trainer: pl.Trainer) -> str:
        """`epoch 2/4  step 8/16  loss 0.6120  val/video/overall/auc 0.8205  eta 0:00:04`."""
        step = trainer.global_step
        epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        epoch = f"{min(trainer.current_epoch + 1, epochs or sys.maxsize)}/{epochs or '?'}"
        loss = f"{self.loss_sum / self.loss_count:.4f}" if self.loss_count else "-"
        score = f"{self.score:.4f}" if self.score is not None else "-"
        return (
            f"epoch {epoch}  step {step}/{self.total_steps or '?'}  loss {loss}  {self.monitor} {score}  "
            f"eta {self._eta(step)}"
        )

    def _eta(self, step: int) -> str:
        done = step - self.first_step
        if done <= 0 or not self.total_steps:
            return "-"
        left = (time.monotonic() - self.started) / done * max(0, self.total_steps - step)
        return str(datetime.timedelta(seconds=round(left)))

    def _show(self, trainer: pl.Trainer, force: bool, final: bool = False) -> None:
        if not trainer.is_global_zero:
            return
        stream = self.stream or sys.stderr
        now = time.monotonic()
        terminal = stream.isatty()
        if terminal:
            if force or now - self.last_written >= 0.2:
                stream.write(f"\r{self.line(trainer)}\x1b[K" + ("\n" if final else ""))
                stream.flush()
                self.last_written = now
        elif force or now - self.last_written >= self.interval:
            line = self.line(trainer)
            if line != self.last_line:  # the end of the run repeats the last validation's line
                stream.write(line + "\n")
                stream.flush()
            self.last_written, self.last_line = now, line


def planned_steps(trainer: pl.Trainer) -> int:
    """Optimiser steps the run will take: epochs x batches per epoch, capped by max_steps (0: unknown)."""
    per_epoch = trainer.num_training_batches
    by_epochs = None
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and per_epoch != float("inf"):
        by_epochs = int(trainer.max_epochs * per_epoch)
    by_steps = trainer.max_steps if trainer.max_steps > 0 else None
    return min((n for n in (by_epochs, by_steps) if n is not None), default=0)
