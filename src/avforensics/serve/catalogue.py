"""The detectors a server offers: one entry per `--model` checkpoint, keyed by its model id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avforensics.inference.checkpoint import load_checkpoint


@dataclass(frozen=True)
class ModelEntry:
    """A checkpoint as users see it: `key` is the inference model id (`name/config@sha256-prefix`)."""

    key: str
    checkpoint: Path
    detector: str
    calibrated: bool
    threshold: float

    def public(self) -> dict[str, Any]:
        """What the API shows (the checkpoint's file name, not where it lives on the server)."""
        return {"key": self.key, "detector": self.detector, "checkpoint": self.checkpoint.name,
                "calibrated": self.calibrated, "threshold": self.threshold}


def load_catalogue(checkpoints: list[Path]) -> dict[str, ModelEntry]:
    """Read each checkpoint once (the server checks them all at start; workers load the weights)."""
    entries: dict[str, ModelEntry] = {}
    for path in checkpoints:
        loaded = load_checkpoint(path)
        if loaded.model_id in entries:
            raise ValueError(f"{path}: the same checkpoint as {entries[loaded.model_id].checkpoint}")
        threshold = loaded.calibration.head("p_fake").threshold
        entries[loaded.model_id] = ModelEntry(
            loaded.model_id, Path(path).absolute(), loaded.config.model.name, loaded.calibration.calibrated,
            threshold,
        )
    return entries
