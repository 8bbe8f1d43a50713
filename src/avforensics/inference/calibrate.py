"""Calibrate a checkpoint on its own validation split and store the result in the checkpoint.

The validation windows come from exactly the dataset the engine validated on (`experiment.data.build_dataset`
with the checkpoint's config), so calibration sees the windows the in-training evaluation scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.experiment.data import ClipDataset, build_dataset
from avforensics.inference.calibration import Calibration, fit_calibration
from avforensics.inference.checkpoint import load_checkpoint, write_inference_section
from avforensics.inference.detector import Detector
from avforensics.inference.report import HEADS

_WINDOWS_PER_PASS = 64  # windows materialised at once while collecting logits
_LABEL_KEYS = {"p_fake": "label", "p_video_fake": "video_label", "p_audio_fake": "audio_label"}


def collect_logits(
    detector: Detector, dataset: ClipDataset
) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(video id per window, raw logits per head, labels per head) over every window of `dataset`.

    Audio labels of windows without an audio track are -1: the audio head says nothing about them.
    """
    video_ids: list[str] = []
    logits: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    labels: dict[str, list[int]] = {head: [] for head in HEADS}
    for windows in _slices(dataset):
        for head, values in detector.window_logits(windows).items():
            if values is not None:
                logits[head].append(values.numpy())
        video_ids += [str(window["video_id"]) for window in windows]
        for head, key in _LABEL_KEYS.items():
            labels[head] += [
                int(window[key]) if head != "p_audio_fake" or bool(window["audio_present"]) else -1
                for window in windows
            ]
    collected = {head: np.concatenate(parts) for head, parts in logits.items() if parts}
    return video_ids, collected, {head: np.asarray(labels[head]) for head in collected}


def calibrate_checkpoint(
    path: str | Path,
    out: str | Path | None = None,
    split: str | None = None,
    batch_size: int = 8,
) -> Calibration:
    """Fit temperatures and thresholds on `split` (default: the config's validation split) and write them,
    with the model's preprocessing, into `out` (default: the checkpoint itself)."""

    loaded = load_checkpoint(path)
    data = loaded.config.data
    part = split or data.val_split
    dataset = build_dataset(data, part, data.eval_window_policy)
    detector = Detector(loaded.model, loaded.preprocessing, batch_size=batch_size)
    video_ids, logits, labels = collect_logits(detector, dataset)
    calibration = fit_calibration(video_ids, logits, labels, split=part)
    write_inference_section(path, out or path, calibration, loaded.preprocessing)
    return calibration


def _slices(dataset: ClipDataset) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(dataset), _WINDOWS_PER_PASS):
        yield [dataset[index] for index in range(start, min(start + _WINDOWS_PER_PASS, len(dataset)))]
