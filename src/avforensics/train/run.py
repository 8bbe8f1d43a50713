"""One training run: config -> model, data, combiner, Lightning trainer -> checkpoints and logs in RUN_DIR.

Layout of RUN_DIR: `config.yaml` (the resolved config), `checkpoints/last.ckpt` (every N steps and at the
end; what `--resume` continues from), `checkpoints/best-*.ckpt` (best validation score), `csv/metrics.csv`
and `tensorboard/` (logs). The same call works under `torchrun`: Lightning picks up the process group.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from avforensics.eval.metrics import compute_detection_metrics
from avforensics.experiment.config import ExperimentConfig, TrainerConfig, config_to_dict, save_config
from avforensics.models.registry import build_model
from avforensics.train.datamodule import ClipDataModule
from avforensics.train.gradients import build_combiner
from avforensics.train.module import DetectorModule
from avforensics.train.progress import ProgressLine
from avforensics.train.rng import RandomStateCheckpoint
from avforensics.train.step_checkpoint import StepCheckpoint

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "checkpoints/last.ckpt"

# Lightning warnings with no cause to fix, silenced by their text so that any other warning still shows:
_EXPECTED_WARNINGS = (
    # Frozen backbones are loaded in eval mode on purpose (backbones.loading) and stay so.
    r"Found \d+ module\(s\) in eval mode at the start of training",
    # On --resume the checkpoint folder holds the run being continued (train() refuses it otherwise).
    r"Checkpoint directory .* exists and is not empty",
    # Lightning's own pytree helper uses a class torch 2.9+ deprecates; nothing of ours to change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
# Lightning logs start-up banners (GPU/TPU available, tips) and stop notices as INFO; the progress line and
# the run's own messages say what a user needs.
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric")


@dataclass
class RunResult:
    """What a finished run reports: where its checkpoints are, how far it got, its last logged metrics."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_score: float | None
    global_step: int
    metrics: dict[str, float]


def train(config: ExperimentConfig, run_dir: str | Path, resume: bool = False) -> RunResult:
    """Train `config` into `run_dir`; with `resume`, continue exactly from `run_dir/checkpoints/last.ckpt`."""
    run_dir = Path(run_dir)
    last = run_dir / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise FileNotFoundError(f"{last}: nothing to resume (no last checkpoint in {run_dir})")
    if not resume and last.exists():
        raise FileExistsError(f"{run_dir} already holds a run ({last}); pass --resume or another --out")

    if config.trainer.threads:
        torch.set_num_threads(config.trainer.threads)
    pl.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model = build_model(config.model.name, config.model.config, **config.model.overrides)
    combiner = build_combiner(config.loss.combiner, **config.loss.combiner_options)
    module = DetectorModule(model, config, combiner, validation_metrics)
    data = ClipDataModule(config.data, seed=config.trainer.seed)
    best, every_steps = _checkpoint_callbacks(config.trainer, run_dir)
    checkpoints = [every_steps] if best is None else [best, every_steps]
    with _quiet_lightning():
        trainer = _trainer(config, run_dir, [*checkpoints, *_other_callbacks(config.trainer)])
        if trainer.is_global_zero:
            _record_config(config, run_dir, resume)
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None, weights_only=True)
    # Every process must join the save (random states are gathered); rank 0 alone knows what is on disk.
    stale = _last_saved_step(last) != trainer.global_step if trainer.is_global_zero else None
    if trainer.strategy.broadcast(stale):
        trainer.save_checkpoint(last, weights_only=False)
    result = RunResult(
        run_dir=run_dir,
        last_checkpoint=last,
        best_checkpoint=Path(best.best_model_path) if best and best.best_model_path else None,
        best_score=float(best.best_model_score) if best and best.best_model_score is not None else None,
        global_step=trainer.global_step,
        metrics={name: float(value) for name, value in trainer.callback_metrics.items()},
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Lightning leaves the process group up; torn down at interpreter exit instead, gloo's threads
        # can abort the process ("terminate called without an active exception") after a good run.
        torch.distributed.destroy_process_group()
    return result


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's INFO banners and its expected warnings silenced for the length of a run."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _LogIntervalWithinEpoch(pl.Callback):
    """Log training metrics at least once per epoch: with fewer batches per epoch than
    `log_every_n_steps`, Lightning would log none of them (and warn about it)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            steps = trainer.datamodule.steps_per_epoch()
            trainer.log_every_n_steps = max(1, min(trainer.log_every_n_steps, steps))


def _other_callbacks(trainer_config: TrainerConfig) -> list[pl.Callback]:
    """Random-state checkpointing (exact resume), the log interval, the progress line and, when
    configured, early stopping."""
    callbacks: list[pl.Callback] = [RandomStateCheckpoint(), _LogIntervalWithinEpoch()]
    if trainer_config.progress_bar:
        callbacks.append(ProgressLine(trainer_config.monitor))
    if trainer_config.early_stopping_patience > 0:
        callbacks.append(EarlyStopping(
            monitor=trainer_config.monitor,
            mode=trainer_config.monitor_mode,
            patience=trainer_config.early_stopping_patience,
            check_on_train_epoch_end=False,
        ))
    return callbacks


def _trainer(config: ExperimentConfig, run_dir: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    """The Lightning trainer of a run: devices and precision resolved, CSV + TensorBoard logs in run_dir."""
    return pl.Trainer(
        accelerator=config.trainer.accelerator,
        devices=resolve_devices(config.trainer.devices),
        num_nodes=resolve_num_nodes(config.trainer.num_nodes),
        strategy=config.trainer.strategy,
        precision=resolve_precision(config.trainer.precision),
        max_epochs=config.optim.epochs,
        max_steps=config.optim.max_steps,
        callbacks=callbacks,
        logger=[
            # One CSV version per session: Lightning's CSV logger would delete an existing metrics.csv.
            CSVLogger(run_dir, name="csv"),
            TensorBoardLogger(run_dir, name="", version="tensorboard", default_hp_metric=False),
        ],
        log_every_n_steps=config.trainer.log_every_n_steps,
        check_val_every_n_epoch=config.trainer.val_every_n_epochs,
        num_sanity_val_steps=0,
        deterministic=config.trainer.deterministic,
        use_distributed_sampler=False,
        enable_progress_bar=False,  # ProgressLine instead: one line, not a table of every metric
        enable_model_summary=False,  # `avforensics models` lists parameter counts
        default_root_dir=run_dir,
    )


def validation_metrics(table: dict[str, list]) -> dict[str, float]:
    """Every defined metric of the validation table, as `level/head[/subset]/metric` -> value."""
    return compute_detection_metrics(table).scalars()


def resolve_precision(precision: str) -> str:
    """"auto": bf16 mixed precision on GPUs that support it, else full fp32 (the safe default on CPU)."""
    if precision == "auto":
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    return {"32": "32-true", "64": "64-true"}.get(precision, precision)


def resolve_devices(devices: int | str) -> int | str:
    """"auto": the processes torchrun started on this node, else every GPU, else one CPU process."""
    if devices != "auto":
        return devices
    if "LOCAL_WORLD_SIZE" in os.environ:
        return int(os.environ["LOCAL_WORLD_SIZE"])
    return "auto" if torch.cuda.is_available() else 1


def resolve_num_nodes(num_nodes: int) -> int:
    """Under torchrun the launch decides: nodes = world size / processes per node; else the config's value."""
    if "WORLD_SIZE" in os.environ and "LOCAL_WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"]) // int(os.environ["LOCAL_WORLD_SIZE"])
    return num_nodes


def _checkpoint_callbacks(
    config: TrainerConfig, run_dir: Path
) -> tuple[ModelCheckpoint | None, StepCheckpoint]:
    """The best checkpoint by the monitored validation metric (none without a monitor: `trainer.monitor: ""`
    makes the last checkpoint the run's model), and `last.ckpt` every N steps (for resume).

    In this order: Lightning runs checkpoint callbacks last, in list order, so an end-of-epoch
    `last.ckpt` holds the best-checkpoint callback's state after it has seen that epoch's validation."""
    every_steps = StepCheckpoint(run_dir / LAST_CHECKPOINT, config.checkpoint_every_n_steps)
    if not config.monitor:
        return None, every_steps
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-{step}",
        monitor=config.monitor,
        mode=config.monitor_mode,
        save_top_k=1,
    )
    return best, every_steps


def _last_saved_step(path: Path) -> int | None:
    if not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _record_config(config: ExperimentConfig, run_dir: Path, resume: bool) -> None:
    """Save the resolved config; on resume, say which settings differ from the run being continued."""
    path = run_dir / "config.yaml"
    if resume and path.is_file():
        before = _flatten(yaml.safe_load(path.read_text()) or {})
        after = _flatten(config_to_dict(config))
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            log.warning("resuming %s with changed settings: %s", run_dir,
                        ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed))
    save_config(config, path)


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
