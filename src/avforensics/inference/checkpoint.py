"""What inference reads from (and adds to) a training checkpoint: the model, its preprocessing, calibration.

The engine's checkpoint already rebuilds the model from its config alone (`experiment.checkpoint`, no
Lightning import). Calibration adds an `inference` section to the checkpoint's payload: the fitted
temperatures and thresholds, and the preprocessing the model was trained with, so the file is all a user
needs to ship.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from avforensics.experiment.checkpoint import PAYLOAD_KEY, CheckpointError, load_model_from_checkpoint
from avforensics.experiment.config import ExperimentConfig
from avforensics.inference.calibration import Calibration
from avforensics.inference.preprocessing import Preprocessing
from avforensics.models.base import DetectorModel

INFERENCE_KEY = "inference"
_HASH_CHUNK = 1 << 20


@dataclass
class LoadedCheckpoint:
    """A rebuilt model (eval mode) and everything needed to run it on files."""

    model: DetectorModel
    config: ExperimentConfig
    preprocessing: Preprocessing
    calibration: Calibration
    model_id: str


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint with its stored preprocessing and calibration (when calibrated)."""
    path = Path(path)
    model, config = load_model_from_checkpoint(path, map_location)
    section = _payload(path).get(INFERENCE_KEY) or {}
    preprocessing = (
        Preprocessing.from_dict(section["preprocessing"]) if "preprocessing" in section
        else Preprocessing.from_config(config)
    )
    calibration = Calibration.from_dict(section["calibration"]) if "calibration" in section else Calibration()
    return LoadedCheckpoint(model, config, preprocessing, calibration, model_id(path, config))


def model_id(path: Path, config: ExperimentConfig) -> str:
    """`name/config@sha256-prefix` of the checkpoint file: which detector, which settings, which weights."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    setting = config.model.config if isinstance(config.model.config, str) else "custom"
    if config.model.overrides:
        setting += "+overrides"
    return f"{config.model.name}/{setting}@{digest.hexdigest()[:12]}"


def write_inference_section(
    path: str | Path, out: str | Path, calibration: Calibration, preprocessing: Preprocessing
) -> Path:
    """Copy checkpoint `path` to `out` (may be the same file) with calibration and preprocessing stored.

    Written to a temporary file and renamed, so an interrupted write never leaves a broken checkpoint.
    """
    path, out = Path(path), Path(out)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or PAYLOAD_KEY not in checkpoint:
        raise CheckpointError(f"{path}: not an avforensics training checkpoint")
    checkpoint[PAYLOAD_KEY][INFERENCE_KEY] = {
        "calibration": calibration.to_dict(),
        "preprocessing": preprocessing.to_dict(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f"{out.name}.{os.getpid()}.partial")
    torch.save(checkpoint, temporary)
    os.replace(temporary, out)
    return out


def _payload(path: Path) -> dict:
    # Memory-mapped: only the small payload is read, not a second copy of the weights.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return checkpoint[PAYLOAD_KEY]
