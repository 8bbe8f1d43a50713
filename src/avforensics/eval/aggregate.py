"""Per-window prediction tables: validation, head selection and video-level aggregation.

A prediction table is a dict of equal-length columns, one row per scored window (the engine's validation
rows, `experiment.predictions.PREDICTION_COLUMNS`). Video scores are the mean of the video's window
probabilities, as the papers and peers compute them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REQUIRED_COLUMNS = (
    "video_id", "window", "p_fake", "p_video_fake", "p_audio_fake",
    "label", "video_label", "audio_label", "category", "method",
)
# head name -> (score column, label column): each head is scored against its own label.
HEADS = {
    "overall": ("p_fake", "label"),
    "video": ("p_video_fake", "video_label"),
    "audio": ("p_audio_fake", "audio_label"),
}
# Optional per-frame columns: one list per window (frame probabilities, frame labels with -1 = unknown).
FRAME_COLUMNS = ("p_frame_fake", "frame_labels")


class TableError(ValueError):
    """A prediction table that cannot be scored; the message names the column and the reason."""


@dataclass(frozen=True)
class Scored:
    """Scores and 0/1 labels of one head at one level, with the category and method of each item."""

    scores: np.ndarray
    labels: np.ndarray
    categories: np.ndarray
    methods: np.ndarray


def check_table(table: Mapping[str, Sequence[Any]]) -> int:
    """Number of rows, after checking that every required column exists and all have one length."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table]
    if missing:
        raise TableError(f"prediction table lacks columns {missing}; it has {sorted(table)}")
    lengths = {c: len(table[c]) for c in table}
    if len(set(lengths.values())) > 1:
        raise TableError(f"prediction table columns differ in length: {lengths}")
    return lengths["video_id"]


def head_scores(table: Mapping[str, Sequence[Any]], head: str) -> tuple[np.ndarray, np.ndarray] | str:
    """(scores, labels) of a head over all windows, or the reason it cannot be scored at all.

    A head whose scores are all NaN is one the model does not have; a partly NaN head is an error.
    """
    score_column, label_column = HEADS[head]
    scores = np.asarray(table[score_column], dtype=np.float64)
    labels = np.asarray(table[label_column], dtype=np.int64)
    missing = np.isnan(scores)
    if missing.all():
        return f"the model has no {head} head ({score_column} is empty)"
    if missing.any():
        raise TableError(
            f"column {score_column} has NaN for {int(missing.sum())} of {len(scores)} windows "
            f"(first video {table['video_id'][int(np.argmax(missing))]!r})"
        )
    if ((scores < 0) | (scores > 1)).any():
        raise TableError(f"column {score_column} holds values outside [0, 1]: it must hold probabilities")
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        raise TableError(f"column {label_column} holds {sorted(set(labels[bad].tolist()))}; allowed 1, 0, -1")
    return scores, labels


def window_level(table: Mapping[str, Sequence[Any]], scores: np.ndarray, labels: np.ndarray) -> Scored:
    """Every window with a known label (-1 rows excluded)."""
    known = labels >= 0
    return Scored(
        scores[known], labels[known],
        np.asarray(table["category"], dtype=object)[known], np.asarray(table["method"], dtype=object)[known],
    )


def video_level(table: Mapping[str, Sequence[Any]], scores: np.ndarray, labels: np.ndarray) -> Scored:
    """One item per video: mean window probability; label 1 if any window is fake, 0 if all are real.

    Windows of unknown label (-1) still contribute their score; a video whose windows are all unknown is
    excluded. Category and method come from the video's first window.
    """
    videos = np.asarray(table["video_id"], dtype=object)
    order, first, inverse = np.unique(videos, return_index=True, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(order))
    mean = np.bincount(inverse, weights=scores, minlength=len(order)) / counts
    label = np.full(len(order), -1, dtype=np.int64)
    np.maximum.at(label, inverse, labels)
    known = label >= 0
    categories = np.asarray(table["category"], dtype=object)[first]
    methods = np.asarray(table["method"], dtype=object)[first]
    return Scored(mean[known], label[known], categories[known], methods[known])


def frame_level(table: Mapping[str, Sequence[Any]]) -> Scored | str:
    """Every frame with a known label, when the table carries per-frame columns; else the reason."""
    if not all(c in table for c in FRAME_COLUMNS):
        return "no per-frame predictions or labels in the table"
    scores, labels, categories, methods = [], [], [], []
    for i, (frame_scores, frame_labels) in enumerate(zip(*(table[c] for c in FRAME_COLUMNS), strict=True)):
        if frame_scores is None or frame_labels is None:
            continue
        s = np.asarray(frame_scores, dtype=np.float64)
        y = np.asarray(frame_labels, dtype=np.int64)
        if s.shape != y.shape:
            video = table["video_id"][i]
            raise TableError(f"window {i} of video {video!r}: {len(s)} frame scores, {len(y)} frame labels")
        known = (y >= 0) & ~np.isnan(s)
        scores.append(s[known])
        labels.append(y[known])
        categories.extend([table["category"][i]] * int(known.sum()))
        methods.extend([table["method"][i]] * int(known.sum()))
    if not scores or sum(len(s) for s in scores) == 0:
        return "no frame carries a known label"
    return Scored(
        np.concatenate(scores), np.concatenate(labels),
        np.asarray(categories, dtype=object), np.asarray(methods, dtype=object),
    )
