"""`avforensics train CONFIG --out RUN_DIR [--set key=value ...] [--resume]` and `avforensics models`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch

from avforensics.models.registry import build_model, registered_models

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a detector from an experiment config (YAML)")
    train.add_argument("config", help="experiment YAML path, or a shipped config name such as avprompt/small")
    train.add_argument("--out", required=True, help="run directory: resolved config, checkpoints, logs")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by dotted path, value parsed as YAML (repeatable), e.g. optim.lr=1e-3",
    )
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR's last.ckpt")
    train.set_defaults(run=run_train)

    models = subparsers.add_parser("models", help="list detectors, configs, parameter counts")
    models.set_defaults(run=run_models)


def run_train(args: argparse.Namespace) -> int:
    # Imported here so `avforensics --help` does not pay for importing Lightning.
    from avforensics.experiment.config import load_config
    from avforensics.train.datamodule import NotEnoughDataError
    from avforensics.train.run import train

    config = load_config(args.config, args.overrides)
    try:
        result = train(config, args.out, resume=args.resume)
    except NotEnoughDataError as error:
        log.error("%s", error)
        return 1
    log.info("finished at step %d; last checkpoint %s; best %s (%s = %s)", result.global_step,
             result.last_checkpoint, result.best_checkpoint, config.trainer.monitor, result.best_score)
    return 0


def run_models(args: argparse.Namespace) -> int:
    rows = [("model", "config", "trainable", "total")]
    for name, cls in registered_models().items():
        for config_name in cls.configs:
            rows.append((name, config_name, *_counts(name, config_name)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _counts(name: str, config_name: str) -> tuple[str, str]:
    """Parameter counts of one configuration, built on the meta device (no memory, no weight files read)."""
    try:
        with torch.device("meta"):
            model: Any = build_model(name, config_name)
    except Exception as error:  # a configuration may need weight files that are not installed here
        reason = f"unavailable: {type(error).__name__}: {error}"
        return reason, ""
    trainable, total = model.parameter_counts()
    return f"{trainable:,}", f"{total:,}"
