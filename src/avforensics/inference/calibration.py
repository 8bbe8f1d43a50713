"""Calibration: one temperature and one decision threshold per head, chosen on validation data.

Temperature scaling (Guo et al., 2017) divides a head's window logits by T, fitted by minimising the
negative log-likelihood of the validation windows' labels: it changes how confident p_fake is, never the
ranking (AUC is unchanged). The threshold is then chosen on the VIDEO scores (mean calibrated window
probability, as `predict` reports them) by the evaluation room's rule (`eval.metrics.choose_threshold`,
best balanced accuracy), so the verdict does not favour the majority class of the validation set.
Both are stored in the checkpoint (`inference.checkpoint.write_inference_section`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avforensics.inference.report import HEADS

_LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))


class CalibrationError(ValueError):
    """Validation data that cannot calibrate a head (e.g. a single class); the message says which."""


@dataclass(frozen=True)
class HeadCalibration:
    """p = sigmoid(logit / temperature); the head calls a video fake when its mean p >= threshold."""

    temperature: float = 1.0
    threshold: float = 0.5


@dataclass
class Calibration:
    """Per-head calibration; heads not fitted (no labels for them) keep temperature 1 and threshold 0.5.

    `fitted_on` records what the values were fitted on (split, windows and videos per head).
    """

    heads: dict[str, HeadCalibration] = field(default_factory=dict)
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return "p_fake" in self.heads

    def head(self, name: str) -> HeadCalibration:
        return self.heads.get(name, HeadCalibration())

    def probabilities(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float() / self.head(name).temperature)

    def to_dict(self) -> dict[str, Any]:
        heads = {name: {"temperature": h.temperature, "threshold": h.threshold}
                 for name, h in self.heads.items()}
        return {"heads": heads, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        heads = {name: HeadCalibration(float(h["temperature"]), float(h["threshold"]))
                 for name, h in data.get("heads", {}).items()}
        unknown = sorted(set(heads) - set(HEADS))
        if unknown:
            raise CalibrationError(f"calibration names unknown heads {unknown}; expected some of {HEADS}")
        return cls(heads, dict(data.get("fitted_on", {})))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the mean binary cross-entropy of sigmoid(logits / T) against labels (0/1)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    _check_two_classes(labels, "temperature")
    from scipy.optimize import minimize_scalar  # fitting only: applying a calibration starts without scipy

    def nll(log_t: float) -> float:
        scaled = logits / math.exp(log_t)
        # log(1 + e^x) - y x, computed stably
        return float(np.mean(np.logaddexp(0.0, scaled) - labels * scaled))

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(math.exp(result.x))


def fit_calibration(
    video_ids: Sequence[str],
    logits: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    split: str = "val",
) -> Calibration:
    """Fit every head that has windows of both classes; `labels` use -1 for rows a head must ignore."""
    from avforensics.eval.metrics import choose_threshold  # fitting only: scikit-learn costs a second to load

    ids = np.asarray(video_ids)
    heads: dict[str, HeadCalibration] = {}
    fitted_on: dict[str, Any] = {"split": split}
    for name in HEADS:
        if name not in logits or name not in labels:
            continue
        known = np.asarray(labels[name]) >= 0
        head_labels = np.asarray(labels[name])[known]
        if len(np.unique(head_labels)) < 2:
            continue
        head_logits = np.asarray(logits[name], np.float64)[known]
        temperature = fit_temperature(head_logits, head_labels)
        per_video: dict[str, list[float]] = defaultdict(list)
        video_label: dict[str, int] = {}
        for video, logit, label in zip(ids[known], head_logits, head_labels, strict=True):
            per_video[video].append(1.0 / (1.0 + math.exp(-logit / temperature)))
            video_label[video] = int(label)
        videos = sorted(per_video)
        scores = np.array([np.mean(per_video[v]) for v in videos])
        threshold = choose_threshold(np.array([video_label[v] for v in videos]), scores)
        heads[name] = HeadCalibration(temperature, threshold)
        fitted_on[name] = {"windows": int(known.sum()), "videos": len(videos)}
    if "p_fake" not in heads:
        raise CalibrationError(
            f"the {split} data has no windows of both classes for the overall head; cannot calibrate"
        )
    return Calibration(heads, fitted_on)


def _check_two_classes(labels: np.ndarray, what: str) -> None:
    values = set(np.unique(labels).tolist())
    if values != {0, 1}:
        raise CalibrationError(f"fitting a {what} needs labels of both classes 0 and 1, got {sorted(values)}")
