"""`last.ckpt` every N optimiser steps, written where a resumed run continues exactly like an unbroken one.

Two things a checkpoint taken on an epoch's last batch would get wrong, and how this callback avoids them:
- *The epoch's validation.* Lightning runs the end-of-epoch validation after `on_train_batch_end`; a
  checkpoint written there records the epoch's batches as done, so a run resumed from it goes on to the
  next epoch and never runs that validation (no validation row, no best-checkpoint candidate, no early
  stopping check for that epoch). On an epoch's last batch the save is therefore moved to the end of the
  epoch, after its validation and after the best-checkpoint callback has seen its score (this callback is
  placed after that one).
- *The logs.* Lightning's CSV logger keeps rows in memory (it writes every 100 steps); after a kill those
  rows would be gone while the checkpoint says the steps are done. Every save also flushes the loggers, so
  what is on disk matches the checkpoint: rows of steps after it are retrained and logged again on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint


class StepCheckpoint(Checkpoint):
    """Write `path` every `every_n_steps` optimiser steps (an epoch's last step: at the end of that epoch)."""

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path = Path(path)
        self.every_n_steps = every_n_steps
        self._saved_step: int | None = None
        self._due_at_epoch_end = False

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps != 0 or trainer.global_step == self._saved_step:
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            self._due_at_epoch_end = True  # the epoch's validation runs next: save after it
            return
        self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due_at_epoch_end:
            self._due_at_epoch_end = False
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        """Every process joins (random states are gathered); loggers write on rank 0 only."""
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step
        for logger in trainer.loggers:
            logger.save()
