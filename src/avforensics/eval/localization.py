"""Temporal forgery localisation: AP@IoU and AR@N as the AV-Deepfake1M evaluation computes them.

Files: proposals JSON `{file: [[confidence, start, end], ...]}` and the detection text format, one
`file;score` per line without header. The matching and averaging rules (stated in docs/engine.md,
"Metrics") follow the `avdeepfake1m` package's 1-D evaluation, so numbers are comparable with its
leaderboard; this is our own implementation, in float64 where the package uses float32.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.eval.metrics import BinaryMetrics, MetricUndefined, Value, binary_metrics

Proposal = tuple[float, float, float]  # (confidence, start, end)
Proposals = dict[str, list[Proposal]]
GroundTruth = dict[str, list[tuple[float, float]]]  # file -> fake segments (start, end) in seconds

AP_IOU_THRESHOLDS = (0.5, 0.75, 0.9, 0.95)
AR_N_PROPOSALS = (50, 30, 20, 10, 5)
AR_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50:0.05:0.95
# Score levels at which runs of a timeline become proposals (`timeline_proposals`): 0.1, 0.2, ..., 0.9.
PROPOSAL_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))


def iou_1d(segments: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(M, N) IoU of M segments with N targets, each row (start, end): overlap over the joint span."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
    starts, ends = segments[:, None, 0], segments[:, None, 1]
    target_starts, target_ends = targets[None, :, 0], targets[None, :, 1]
    inner = np.minimum(ends, target_ends) - np.maximum(starts, target_starts)
    outer = np.maximum(ends, target_ends) - np.minimum(starts, target_starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(inner, 0.0, None) / outer


def average_precision(
    proposals: Mapping[str, Sequence[Proposal]],
    ground_truth: Mapping[str, Sequence[tuple[float, float]]],
    iou_thresholds: Sequence[float] = AP_IOU_THRESHOLDS,
    fps: float = 1.0,
) -> dict[float, Value]:
    """AP at each IoU threshold over all files of `ground_truth` (every one needs proposals, maybe [])."""
    _check_keys(proposals, ground_truth)
    n_targets = sum(len(segments) for segments in ground_truth.values())
    if n_targets == 0:
        return dict.fromkeys(iou_thresholds, MetricUndefined("no ground-truth fake segment"))
    result: dict[float, Value] = {}
    for threshold in iou_thresholds:
        confidences, hits = [], []
        for file, targets in ground_truth.items():
            rows = _rows(proposals[file])
            confidences.append(rows[:, 0])
            hits.append(_first_match(iou_1d(rows[:, 1:] / fps, targets) > threshold))
        result[threshold] = _interpolated_ap(np.concatenate(confidences), np.concatenate(hits), n_targets)
    return result


def average_recall(
    proposals: Mapping[str, Sequence[Proposal]],
    ground_truth: Mapping[str, Sequence[tuple[float, float]]],
    n_proposals: Sequence[int] = AR_N_PROPOSALS,
    iou_thresholds: Sequence[float] = AR_IOU_THRESHOLDS,
    fps: float = 1.0,
) -> dict[int, float]:
    """AR@N: recall of the first N proposals of each file, averaged over the IoU thresholds."""
    _check_keys(proposals, ground_truth)
    if min(n_proposals) < 1:
        raise ValueError(f"AR@N needs N >= 1, got {list(n_proposals)}")
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    hits = np.zeros((len(thresholds), len(n_proposals)))
    totals = np.zeros_like(hits)
    for file, targets in ground_truth.items():
        rows = _rows(proposals[file])[: max(n_proposals)]
        if len(rows) == 0 or len(targets) == 0:
            continue  # the package counts neither hits nor misses for a file without proposals
        best = np.maximum.accumulate(iou_1d(rows[:, 1:] / fps, targets), axis=0)  # best IoU of the first k
        for j, n in enumerate(n_proposals):
            found = best[min(n, len(rows)) - 1]
            hits[:, j] += (found[None, :] > thresholds[:, None]).sum(axis=1)
            totals[:, j] += len(targets)
    recall = np.divide(hits, totals, out=np.zeros_like(hits), where=totals > 0)
    return {int(n): float(recall[:, j].mean()) for j, n in enumerate(n_proposals)}


def localization_metrics(
    proposals: Mapping[str, Sequence[Proposal]],
    ground_truth: Mapping[str, Sequence[tuple[float, float]]],
    fps: float = 1.0,
) -> dict[str, Value]:
    """`ap@0.5` ... `ap@0.95` and `ar@50` ... `ar@5` with the AV-Deepfake1M settings."""
    aps = average_precision(proposals, ground_truth, fps=fps)
    ars = average_recall(proposals, ground_truth, fps=fps)
    return {**{f"ap@{t}": v for t, v in aps.items()}, **{f"ar@{n}": v for n, v in ars.items()}}


def detection_metrics_from_scores(
    scores: Mapping[str, float], ground_truth: Mapping[str, Sequence[tuple[float, float]]]
) -> BinaryMetrics:
    """Metrics of a `file;score` table: a file is fake iff it has a fake segment (as in the package)."""
    missing = [file for file in ground_truth if file not in scores]
    if missing:
        raise KeyError(f"{len(missing)} labelled files have no score: {missing[:3]}")
    labels = [int(len(segments) > 0) for segments in ground_truth.values()]
    return binary_metrics(labels, [scores[file] for file in ground_truth])


def proposals_from_scores(
    segment_scores: Sequence[tuple[float, float, float]], threshold: float, max_gap: float = 0.0
) -> list[Proposal]:
    """Proposals from a per-window timeline of (start, end, p_fake), ordered by start.

    Consecutive windows scoring >= threshold merge into one proposal from the first start to the last end
    while each starts at most `max_gap` seconds after the run so far ends (overlapping sliding windows
    always merge). The confidence is the mean score of the merged windows. Returned most confident first,
    the order the evaluation matches proposals in.
    """
    runs: list[list[float]] = []  # [start, end, score sum, window count]
    previous_start = -np.inf
    for start, end, score in segment_scores:
        if start < previous_start or end < start:
            raise ValueError(f"timeline windows must be ordered by start, end >= start: ({start}, {end})")
        previous_start = start
        if score < threshold:
            runs.append([])  # a window below threshold ends the current run
            continue
        if runs and runs[-1] and start <= runs[-1][1] + max_gap:
            runs[-1][1] = max(runs[-1][1], end)
            runs[-1][2] += score
            runs[-1][3] += 1
        else:
            runs.append([start, end, score, 1])
    proposals = [(run[2] / run[3], run[0], run[1]) for run in runs if run]
    return sorted(proposals, key=lambda p: -p[0])


def timeline_proposals(
    timeline: Sequence[tuple[float, float, float]], thresholds: Sequence[float] = PROPOSAL_THRESHOLDS
) -> list[Proposal]:
    """Proposals of a (start, end, p_fake) timeline at several score levels, most confident first.

    At each threshold, `proposals_from_scores` (max_gap 0) turns every run of consecutive entries at or
    above it into one segment scored by the run's mean. One threshold would fix one guess of where a
    forgery starts and ends and cap recall at what that guess finds; the union over levels gives nested
    candidates, the tight high-scoring cores ranked before the looser runs around them. A segment found
    at several levels is kept once, with its highest confidence; ties keep the order of the levels.
    """
    best: dict[tuple[float, float], float] = {}
    for threshold in thresholds:
        for confidence, start, end in proposals_from_scores(timeline, threshold):
            key = (start, end)
            best[key] = max(confidence, best.get(key, -np.inf))
    return sorted(((c, s, e) for (s, e), c in best.items()), key=lambda p: -p[0])


def read_proposals(path: str | Path) -> Proposals:
    """Read `{file: [[confidence, start, end], ...]}`, checking every entry."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: proposals must be a JSON object {{file: [[conf, start, end]]}}")
    proposals: Proposals = {}
    for file, rows in data.items():
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 3 for r in rows):
            raise ValueError(f"{path}: proposals of {file!r} must be a list of [conf, start, end]")
        proposals[file] = [(float(c), float(s), float(e)) for c, s, e in rows]
        _rows(proposals[file], where=f"{path}: {file!r}")
    return proposals


def write_proposals(proposals: Mapping[str, Sequence[Proposal]], path: str | Path) -> Path:
    data = {file: [[float(c), float(s), float(e)] for c, s, e in rows] for file, rows in proposals.items()}
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    return Path(path)


def read_scores(path: str | Path) -> dict[str, float]:
    """Read the detection format: `file;score` per line, no header (empty lines ignored)."""
    scores: dict[str, float] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        file, separator, value = line.rpartition(";")
        try:
            score = float(value)
        except ValueError:
            score = float("nan")
        if not separator or not file or not np.isfinite(score):
            raise ValueError(f"{path}, line {number}: expected 'file;score', a finite score, got {line!r}")
        if file in scores:
            raise ValueError(f"{path}, line {number}: {file!r} is listed twice")
        scores[file] = score
    return scores


def write_scores(scores: Mapping[str, float], path: str | Path) -> Path:
    for file in scores:
        if "\n" in file:
            raise ValueError(f"file name {file!r} holds a line break: it cannot be written as 'file;score'")
    Path(path).write_text("".join(f"{file};{score!r}\n" for file, score in scores.items()), encoding="utf-8")
    return Path(path)


def read_ground_truth(
    path: str | Path, file_key: str = "file", segments_key: str = "fake_segments"
) -> GroundTruth:
    """Fake segments per file from a metadata JSON list (AV-Deepfake1M / LAV-DF style)."""
    entries: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: metadata must be a JSON list of objects")
    truth: GroundTruth = {}
    for i, entry in enumerate(entries):
        if file_key not in entry or segments_key not in entry:
            raise ValueError(f"{path}: entry {i} lacks {file_key!r} or {segments_key!r}")
        truth[entry[file_key]] = [(float(s), float(e)) for s, e in entry[segments_key]]
    return truth


def _rows(proposals: Sequence[Proposal], where: str = "proposals") -> np.ndarray:
    rows = np.asarray(proposals, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(rows).all():
        raise ValueError(f"{where}: confidence, start and end must be finite numbers")
    if (rows[:, 2] < rows[:, 1]).any():
        raise ValueError(f"{where}: a proposal ends before it starts")
    return rows


def _check_keys(proposals: Mapping[str, Any], ground_truth: Mapping[str, Any]) -> None:
    missing = [file for file in ground_truth if file not in proposals]
    if missing:
        raise KeyError(f"{len(missing)} labelled files have no proposals entry ([] if none): {missing[:3]}")


def _first_match(above: np.ndarray) -> np.ndarray:
    """True positives of one file: each target, in order, takes the first unmatched proposal above the IoU."""
    taken = np.zeros(above.shape[0], dtype=bool)
    for column in above.T:
        candidates = np.flatnonzero(column & ~taken)
        if len(candidates):
            taken[candidates[0]] = True
    return taken


def _interpolated_ap(confidences: np.ndarray, hits: np.ndarray, n_targets: int) -> float:
    """All-point interpolated AP over the pooled ranking, without the span below the first recall point."""
    order = np.argsort(-confidences, kind="stable")
    cumulative = np.cumsum(hits[order])
    precision = cumulative / np.arange(1, len(order) + 1)
    recall = cumulative / n_targets
    x = np.concatenate([[1.0], recall[::-1]])
    y = np.maximum.accumulate(np.concatenate([[0.0], precision[::-1]]))
    return float(np.sum(np.abs(np.diff(x)) * y[:-1]))
