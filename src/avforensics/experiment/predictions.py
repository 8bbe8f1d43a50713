"""Per-window prediction rows: what training's validation, `evaluate` and calibration hand to the metrics.

Shared by the trainer and by evaluation, so both build one table the same way (and neither imports the other).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

# Columns of the per-window prediction table handed to the metrics function.
PREDICTION_COLUMNS = (
    "video_id", "window", "p_fake", "p_video_fake", "p_audio_fake",
    "label", "video_label", "audio_label", "category", "method",
)
PredictionTable = dict[str, list[Any]]
MetricsFunction = Callable[[PredictionTable], Mapping[str, float]]


def prediction_rows(
    batch: Mapping[str, Any], probabilities: Mapping[str, Tensor | None]
) -> list[dict[str, Any]]:
    """One row per window: ids, the three head probabilities (NaN where a model has no head), labels."""
    size = len(batch["video_id"])

    def column(values: Tensor | None) -> list[float]:
        return [math.nan] * size if values is None else values.detach().float().reshape(size).tolist()

    def labels(key: str) -> list[int]:
        return batch[key].reshape(size).tolist() if key in batch else [-1] * size

    def strings(key: str) -> list[str]:
        return list(batch[key]) if key in batch else [""] * size

    columns = {
        "video_id": list(batch["video_id"]),
        "window": batch["window"].reshape(size).tolist(),
        "p_fake": column(probabilities["p_fake"]),
        "p_video_fake": column(probabilities["p_video_fake"]),
        "p_audio_fake": column(probabilities["p_audio_fake"]),
        "label": labels("label"),
        "video_label": labels("video_label"),
        "audio_label": labels("audio_label"),
        "category": strings("category"),
        "method": strings("method"),
    }
    return [{name: values[i] for name, values in columns.items()} for i in range(size)]
