"""Robustness: re-score a split part with every video perturbed at each severity level.

Each video of the part is decoded once; for every (perturbation, level), and once clean, the whole decoded
video is perturbed (media.perturb: before any face work, as a re-encode or a phone line acts on a file),
its face is cut out at the places found on the clean video (the prepared cache's crop boxes, else the
face tracker run once on the clean frames), and its windows are scored as `evaluate` scores them. The
faces are not looked for again in the perturbed video, so a row measures the detector, not the face
detector. Outputs in OUT: `robustness.md/.csv/.json` (video-level AUC and AP per head, per perturbation
and level), `predictions.csv` (every window of every condition) and `robustness.png` (AUC against
severity per head).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.data.prepare import PreparedStore, PrepareOptions, load_frames_and_audio
from avforensics.data.records import VideoRecord
from avforensics.data.windows import cut_window, plan_video_windows
from avforensics.eval.aggregate import HEADS
from avforensics.eval.metrics import MetricUndefined, compute_detection_metrics, write_report_files
from avforensics.eval.plots import plot_robustness
from avforensics.experiment.checkpoint import load_model_from_checkpoint
from avforensics.experiment.data import build_dataset
from avforensics.features.image import resize_for_clip
from avforensics.media.boxcrop import crop_resize_frame
from avforensics.media.faces import FaceDetector, crop_faces, track_faces
from avforensics.media.perturb import PERTURBATIONS, Level, Media, perturb
from avforensics.protocols.evaluate import EVAL_WINDOW_POLICY, DataSelection, predict, resolve_checkpoint

log = logging.getLogger(__name__)

CLEAN = "none"


@dataclass(frozen=True)
class Condition:
    """One perturbation at one level; severity 0 is the clean video, 1.. the perturbation's levels."""

    perturbation: str
    severity: int
    level: Level

    @property
    def key(self) -> str:
        return f"{self.perturbation}@{self.level}"


def conditions(names: Sequence[str] | None = None, severities: Sequence[int] | None = None
               ) -> list[Condition]:
    """The clean condition, then every level (1-based severities, all by default) of each perturbation."""
    chosen = list(names) if names else list(PERTURBATIONS)
    unknown = [name for name in chosen if name not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"--perturbations: unknown {unknown[0]!r}; known: {', '.join(PERTURBATIONS)}")
    if severities and min(severities) < 1:
        raise ValueError(f"--levels: severities start at 1, got {min(severities)}")
    out = [Condition(CLEAN, 0, 0)]
    for name in chosen:
        levels = PERTURBATIONS[name].levels
        for severity, level in enumerate(levels, start=1):
            if not severities or severity in severities:
                out.append(Condition(name, severity, level))
    return out


def run_robustness(source: str | Path, out_dir: str | Path, *, data: DataSelection | None = None,
                   part: str = "test", names: Sequence[str] | None = None,
                   severities: Sequence[int] | None = None, seed: int = 0, batch_size: int | None = None,
                   device: str = "cpu") -> list[dict[str, Any]]:
    """Score part `part` of the data under every condition; writes OUT's files, returns the table rows."""
    checkpoint = resolve_checkpoint(source)
    model, stored = load_model_from_checkpoint(checkpoint, map_location=device)
    config = (data or DataSelection()).apply(stored, str(checkpoint))
    chosen = conditions(names, severities)
    dataset = build_dataset(config.data, part, EVAL_WINDOW_POLICY)
    store = dataset.source.store if hasattr(dataset.source, "store") else None
    options = _prepare_options(store, config.data.options)
    image_size = int(config.data.options.get("image_size", 224))
    batch = batch_size or config.data.batch_size
    detector: list[FaceDetector] = []  # built on first need: a prepared cache has the boxes already
    tables: dict[str, list[dict[str, Any]]] = {condition.key: [] for condition in chosen}
    records = dataset.source.records
    log.info("robustness of %s: %d videos x %d conditions", checkpoint, len(records), len(chosen))
    for position, record in enumerate(records):
        frames, audio, _ = load_frames_and_audio(record, options)
        boxes = _boxes(record, frames, store, options, detector)
        for index, condition in enumerate(chosen):
            media = Media(frames, audio, options.fps, options.sample_rate)
            if condition.perturbation != CLEAN:
                media = perturb(media, condition.perturbation, condition.level, seed=[seed, position, index])
            windows = _windows(record, media, boxes, options.size, image_size, config.data.clip_frames)
            tables[condition.key].extend(_rows(predict(model, windows, batch, device)))
        log.info("robustness: %d/%d videos scored under every condition", position + 1, len(records))
    rows = [_metrics_row(condition, tables[condition.key]) for condition in chosen]
    _write(Path(out_dir), rows, tables, chosen, checkpoint, config.model.name, part)
    return rows


def _prepare_options(store: PreparedStore | None, options: dict[str, Any]) -> PrepareOptions:
    """Decode as the cache was prepared (its boxes are in those pixels), else with the data options'."""
    if store is not None:
        saved = json.loads((store.out / "prepare.json").read_text(encoding="utf-8"))["options"]
        return PrepareOptions(**saved)
    values = {"size": int(options.get("image_size", 224)), **(options.get("prepare_options") or {})}
    return PrepareOptions(**values)


def _boxes(record: VideoRecord, frames: np.ndarray, store: PreparedStore | None, options: PrepareOptions,
           detector: list[FaceDetector]) -> np.ndarray:
    """Crop squares (T, 4) of the clean video: the cache's, else tracked now."""
    if store is not None:
        boxes = store.load(record.id).boxes
        if len(boxes) == len(frames):
            return boxes
        log.warning("%s: %d cached boxes for %d decoded frames; tracking faces again", record.path,
                    len(boxes), len(frames))
    if not detector:
        from avforensics.media.mtcnn import MTCNN

        detector.append(MTCNN())
    track = track_faces(frames, detector[0], options.tracker(), record.path)
    return crop_faces(frames, track, options.tracker(), record.path).boxes


def _windows(record: VideoRecord, media: Media, boxes: np.ndarray, crop_size: int, image_size: int,
             clip_frames: int) -> list[dict[str, Any]]:
    """The perturbed video's face crops cut into the evaluation windows, labelled from `record`."""
    crops = np.stack([crop_resize_frame(frame, box, crop_size) for frame, box in zip(media.frames, boxes,
                                                                                       strict=True)])
    crops = resize_for_clip(crops, image_size)
    return [
        cut_window(crops, media.audio, window, fps=media.fps, sample_rate=media.sample_rate,
                   image_size=image_size, number=number, record=record)
        for number, window in enumerate(plan_video_windows(len(crops), clip_frames, "consecutive"))
    ]


def _rows(table: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)]


def _metrics_row(condition: Condition, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Video-level AUC and AP per head (None where a head is missing or a metric undefined)."""
    table = {column: [row[column] for row in rows] for column in rows[0]} if rows else {}
    scalars = compute_detection_metrics(table, by=()).scalars() if rows else {}
    out: dict[str, Any] = {"perturbation": condition.perturbation, "severity": condition.severity,
                           "level": condition.level, "unit": PERTURBATIONS[condition.perturbation].unit
                           if condition.perturbation != CLEAN else ""}
    for head in HEADS:
        for metric in ("auc", "ap"):
            value = scalars.get(f"video/{head}/{metric}")
            out[f"{head}_{metric}"] = None if value is None or isinstance(value, MetricUndefined) else value
    out["videos"] = len({row["video_id"] for row in rows})
    return out


def _write(out: Path, rows: list[dict[str, Any]], tables: dict[str, list[dict[str, Any]]],
           chosen: list[Condition], checkpoint: Path, model: str, part: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    metric_columns = [c for c in columns
                      if c.endswith(("_auc", "_ap")) and any(r[c] is not None for r in rows)]
    header = ["perturbation", "severity", "level", "unit", "videos", *metric_columns]
    lines = [f"## Robustness of {model} ({checkpoint}), part `{part}`, video level, percent\n",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[c]) for c in header[:5]]
        cells += ["-" if row[c] is None else f"{100 * row[c]:.1f}" for c in metric_columns]
        lines.append("| " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    csv_lines = [",".join(header)] + [
        ",".join("" if row[c] is None else str(row[c]) for c in header) for row in rows]
    write_report_files(out, "robustness", markdown, "\n".join(csv_lines) + "\n",
                       json.dumps([{c: row[c] for c in header} for row in rows], indent=2))
    with (out / "predictions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = None
        for condition in chosen:
            for row in tables[condition.key]:
                flat = {"perturbation": condition.perturbation, "level": condition.level,
                        **{k: v for k, v in row.items() if not isinstance(v, list)}}
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
    plot_robustness(rows, [c.removesuffix("_auc") for c in metric_columns if c.endswith("_auc")],
                    out / "robustness.png")
