"""Temporal localisation of an evaluated part: score timelines -> proposals -> AP@IoU and AR@N.

Runs on parts whose records carry fake periods (LAV-DF, AV-Deepfake1M): each video's scores are laid on
its original timeline (per-frame scores where the model has them, else each window's score over its
frames), turned into proposals by `eval.localization.timeline_proposals`, and scored against the fake
periods with the AV-Deepfake1M settings. `proposals.json` is the package's proposals format, keyed by the
file names of the dataset's metadata, so the package's own evaluation can read it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avforensics.data.records import VideoRecord
from avforensics.data.windows import WindowDataset
from avforensics.eval.localization import (
    PROPOSAL_THRESHOLDS,
    GroundTruth,
    Proposals,
    localization_metrics,
    timeline_proposals,
    write_proposals,
)
from avforensics.eval.metrics import MetricUndefined, Value

Timeline = list[tuple[float, float, float]]  # (start, end, p_fake) in seconds of the original video


@dataclass
class Localization:
    """AP@IoU / AR@N of one part, the proposals they were computed from and the files written."""

    metrics: dict[str, Value]
    proposals: Proposals
    truth: GroundTruth
    scores: str  # which scores the timelines are made of
    files: list[Path] = field(default_factory=list)


def metadata_file(record: VideoRecord) -> str:
    """The name the dataset's metadata gives the file (adapters keep it as `extra["file"]`), which the
    AV-Deepfake1M evaluation keys proposals by; else the record id without its dataset prefix."""
    named = record.extra.get("file")
    if named:
        return str(named)
    prefix = f"{record.dataset}/"
    return record.id[len(prefix):] if record.dataset and record.id.startswith(prefix) else record.id


def localize(table: Mapping[str, Sequence[Any]], dataset: object, out: Path) -> Localization | None:
    """Localisation metrics of the scored `table` of `dataset`, written to `out`; None where the part has
    no fake periods to localise (or the dataset is not one of clip windows over video files)."""
    if not isinstance(dataset, WindowDataset):
        return None
    records = [dataset.record(position) for position in range(len(dataset.videos))]
    if not any(record.fake_periods for record in records):
        return None
    per_frame = "p_frame_fake" in table
    timelines = score_timelines(table, dataset)
    proposals: Proposals = {}
    truth: GroundTruth = {}
    for record in records:
        if record.label not in (0, 1) or record.id not in timelines:
            continue  # unlabelled, or no window scored
        name = metadata_file(record)
        truth[name] = [(float(start), float(end)) for start, end in record.fake_periods]
        proposals[name] = timeline_proposals(timelines[record.id])
    result = Localization(
        metrics=localization_metrics(proposals, truth),
        proposals=proposals,
        truth=truth,
        scores="per-frame p_frame_fake" if per_frame else "per-window p_fake (over each window's frames)",
    )
    result.files = _write(result, out)
    return result


def score_timelines(table: Mapping[str, Sequence[Any]], dataset: WindowDataset) -> dict[str, Timeline]:
    """Each video's scores on its original timeline, one entry per scored frame, ordered by time.

    Frame scores come from `p_frame_fake` where the table has it (a window with a NaN frame score falls
    back to its `p_fake`), else every frame of a window takes the window's `p_fake`. Padding frames (a
    video shorter than one window) are left out."""
    starts = {
        (dataset.record(position).id, number): window.start_frame
        for position, number, window in dataset.windows
    }
    positions = {dataset.record(position).id: position for position in range(len(dataset.videos))}
    timing: dict[str, tuple[float, float, int]] = {}
    timelines: dict[str, Timeline] = {}
    frame_scores = table.get("p_frame_fake")
    for row, (video_id, number) in enumerate(zip(table["video_id"], table["window"], strict=True)):
        if video_id not in timing:
            timing[video_id] = dataset.video_timing(positions[video_id])
        fps, offset, count = timing[video_id]
        first = starts[(video_id, int(number))]
        window_score = float(table["p_fake"][row])
        scores = list(frame_scores[row]) if frame_scores is not None else []
        if not scores or any(math.isnan(float(score)) for score in scores):
            scores = [window_score] * dataset.clip_frames
        usable = max(0, min(len(scores), count - first))
        timelines.setdefault(video_id, []).extend(
            (offset + (first + k) / fps, offset + (first + k + 1) / fps, float(scores[k]))
            for k in range(usable)
        )
    return {video_id: sorted(timeline) for video_id, timeline in timelines.items()}


def _write(result: Localization, out: Path) -> list[Path]:
    """proposals.json (the AV-Deepfake1M format), localization.json and localization.md."""
    out.mkdir(parents=True, exist_ok=True)
    values = {name: _json_value(value) for name, value in result.metrics.items()}
    segments = sum(len(periods) for periods in result.truth.values())
    settings = {
        "scores": result.scores, "proposal_thresholds": list(PROPOSAL_THRESHOLDS),
        "files": len(result.truth), "fake_segments": segments,
        "proposals": sum(len(rows) for rows in result.proposals.values()),
    }
    summary = out / "localization.json"
    summary.write_text(json.dumps({"metrics": values, **settings}, indent=2), encoding="utf-8")
    markdown = out / "localization.md"
    markdown.write_text(localization_markdown(result), encoding="utf-8")
    return [write_proposals(result.proposals, out / "proposals.json"), summary, markdown]


def localization_markdown(result: Localization) -> str:
    """AP@IoU and AR@N as two one-row tables, with what they were computed from."""
    aps = {name: value for name, value in result.metrics.items() if name.startswith("ap@")}
    ars = {name: value for name, value in result.metrics.items() if name.startswith("ar@")}
    segments = sum(len(periods) for periods in result.truth.values())
    lines = [
        "## Temporal localisation (AV-Deepfake1M settings)\n",
        f"{len(result.truth)} files, {segments} fake segments; proposals (proposals.json) from "
        f"{result.scores}: runs at or above {PROPOSAL_THRESHOLDS[0]}, ..., {PROPOSAL_THRESHOLDS[-1]}. "
        "AR@N averaged over IoU 0.50:0.05:0.95.\n",
    ]
    for metrics in (aps, ars):
        names = [name.upper() for name in metrics]
        lines.append("| " + " | ".join(names) + " |")
        lines.append("|" + "---|" * len(names))
        lines.append("| " + " | ".join(_cell(value) for value in metrics.values()) + " |\n")
    return "\n".join(lines)


def _cell(value: Value) -> str:
    return "n/a" if isinstance(value, MetricUndefined) else f"{value:.4f}"


def _json_value(value: Value) -> float | dict[str, str]:
    return {"undefined": value.reason} if isinstance(value, MetricUndefined) else float(value)
