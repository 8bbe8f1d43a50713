"""Per-window prediction tables on disk (CSV and JSON) and the per-video scores drawn from them.

The written table is the evidence behind every metric of an evaluation: anyone can recompute the numbers
from it (with `compute_detection_metrics` or their own code). CSV for spreadsheets, JSON for programs;
NaN (a head the model lacks) is `nan` in CSV and `null` in JSON; per-frame lists are JSON arrays in CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.eval.aggregate import FRAME_COLUMNS, HEADS, REQUIRED_COLUMNS, TableError, check_table

PredictionTable = dict[str, list[Any]]
_FLOAT_COLUMNS = ("p_fake", "p_video_fake", "p_audio_fake")
_INT_COLUMNS = ("window", "label", "video_label", "audio_label")
VIDEO_COLUMNS = ("video_id", "windows", *_FLOAT_COLUMNS, "label", "video_label", "audio_label", "category",
                 "method")


def table_columns(table: Mapping[str, Sequence[Any]]) -> list[str]:
    """The required columns, then the per-frame ones when present, then any others in table order."""
    present = [c for c in (*REQUIRED_COLUMNS, *FRAME_COLUMNS) if c in table]
    return present + [c for c in table if c not in present]


def predictions_to_csv(table: Mapping[str, Sequence[Any]]) -> str:
    rows = check_table(table)
    columns = table_columns(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for i in range(rows):
        writer.writerow([_csv_cell(table[c][i]) for c in columns])
    return buffer.getvalue()


def predictions_to_json(table: Mapping[str, Sequence[Any]]) -> str:
    check_table(table)
    columns = {c: [_json_value(v) for v in table[c]] for c in table_columns(table)}
    return json.dumps({"columns": columns}, allow_nan=False)


def read_predictions(path: str | Path) -> PredictionTable:
    """A table written by `write_predictions`, from its `.json` (exact) or `.csv` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prediction table not found")
    if path.suffix == ".json":
        try:
            columns = json.loads(path.read_text(encoding="utf-8"))["columns"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise TableError(f"{path}: not a prediction table JSON ({error})") from None
        table = {c: [math.nan if v is None and c in _FLOAT_COLUMNS else v for v in values]
                 for c, values in columns.items()}
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        names = list(rows[0]) if rows else []
        table = {c: [_parse_csv_cell(c, row[c], path) for row in rows] for c in names}
    else:
        raise TableError(f"{path}: expected a .json or .csv prediction table")
    try:
        check_table(table)
    except TableError as error:
        raise TableError(f"{path}: {error}") from None
    return table


def write_predictions(table: Mapping[str, Sequence[Any]], out_dir: str | Path,
                      stem: str = "predictions") -> list[Path]:
    """`<stem>.csv` and `<stem>.json` in out_dir; returns the paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in ((".csv", predictions_to_csv(table)), (".json", predictions_to_json(table))):
        path = directory / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def video_scores(table: Mapping[str, Sequence[Any]]) -> PredictionTable:
    """One row per video (sorted by id): the mean of its window probabilities per head, as the video-level
    metrics score it, and its labels (1 if any window is fake, 0 if all known windows are real, else -1)."""
    check_table(table)
    videos = np.asarray(table["video_id"], dtype=object)
    ids, first, inverse = np.unique(videos, return_index=True, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(ids))
    out: PredictionTable = {"video_id": ids.tolist(), "windows": counts.tolist()}
    for column in _FLOAT_COLUMNS:
        scores = np.asarray(table[column], dtype=np.float64)
        out[column] = (np.bincount(inverse, weights=scores, minlength=len(ids)) / counts).tolist()
    for _, label_column in HEADS.values():
        labels = np.full(len(ids), -1, dtype=np.int64)
        np.maximum.at(labels, inverse, np.asarray(table[label_column], dtype=np.int64))
        out[label_column] = labels.tolist()
    for column in ("category", "method"):
        out[column] = [table[column][i] for i in first.tolist()]
    return out


def write_video_scores(table: Mapping[str, Sequence[Any]], out_dir: str | Path, stem: str = "videos") -> Path:
    """`<stem>.csv`: the per-video scores of `video_scores`, for reading results video by video."""
    videos = video_scores(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(VIDEO_COLUMNS)
    for i in range(len(videos["video_id"])):
        writer.writerow([_csv_cell(videos[c][i]) for c in VIDEO_COLUMNS])
    path = Path(out_dir) / f"{stem}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _csv_cell(value: Any) -> str:
    if value is None:  # a window without per-frame values
        return ""
    if isinstance(value, list | tuple):
        return json.dumps([_json_value(v) for v in value])
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _parse_csv_cell(column: str, text: str, path: Path) -> Any:
    try:
        if column in _FLOAT_COLUMNS:
            return float(text)
        if column in _INT_COLUMNS:
            return int(text)
        if column in FRAME_COLUMNS:
            return None if text == "" else [math.nan if v is None else v for v in json.loads(text)]
    except ValueError as error:
        raise TableError(f"{path}: column {column} holds {text!r}, not a number ({error})") from None
    return text
