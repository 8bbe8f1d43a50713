"""Evaluate a trained detector on one part of a dataset split: predictions, metric tables, plots.

Every video of the part is cut into consecutive non-overlapping windows (the "all" policy), every window
is scored, and the per-window table is written next to the metrics computed from it, so each number can
be traced back. ACC uses thresholds chosen on the validation part of the same split when it exists, else
0.5 (`eval.thresholds`); the tables say which. This module runs models, so it imports the engine (train/).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from avforensics.data.protocols import list_protocols
from avforensics.eval.aggregate import FRAME_COLUMNS
from avforensics.eval.metrics import DetectionReport, compute_detection_metrics, write_report_files
from avforensics.eval.plots import plot_detection
from avforensics.eval.predictions import PredictionTable, write_predictions, write_video_scores
from avforensics.eval.thresholds import (
    ThresholdChoice,
    default_thresholds,
    thresholds_from_validation,
    with_threshold_sources,
)
from avforensics.experiment.checkpoint import load_model_from_checkpoint
from avforensics.experiment.config import ExperimentConfig, apply_override, config_from_dict, config_to_dict
from avforensics.experiment.data import ClipDataset, build_dataset, collate_windows
from avforensics.experiment.predictions import PREDICTION_COLUMNS, prediction_rows
from avforensics.models.base import DetectorModel
from avforensics.protocols.localization import Localization, localize

log = logging.getLogger(__name__)

EVAL_WINDOW_POLICY = "all"
BEST_PATTERN = "best-*.ckpt"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


@dataclass(frozen=True)
class DataSelection:
    """What to evaluate on, as changes to the data section the model was trained with ("" = unchanged).

    A new `root` without `prepared` drops the training cache (it belongs to the training data); a new
    `protocol` drops the training protocol's parameters and any split file (and a split file the protocol).
    When the run has a second, test dataset (`data.test`), or the protocol trains on one dataset and tests
    on another, `dataset` / `root` / `prepared` name that test dataset instead: the validation part (and so
    the thresholds) stays on the training data. `overrides` are dotted `data.*=value` settings applied last.
    """

    dataset: str = ""
    root: str = ""
    prepared: str = ""
    protocol: str = ""
    split_file: str = ""
    overrides: tuple[str, ...] = ()

    def apply(self, config: ExperimentConfig, source: str) -> ExperimentConfig:
        if self.protocol and self.split_file:
            raise ValueError("give a protocol or a split file, not both")
        tree = config_to_dict(config)
        data = tree["data"]
        if self.protocol:
            if self.protocol != data.get("protocol"):
                data.setdefault("options", {}).pop("protocol_params", None)
            data["protocol"], data["split_file"] = self.protocol, ""
        if data["test"]["dataset"] or _tests_on(data.get("protocol", ""), self.dataset or data["dataset"]):
            data = data["test"]
        options = data.setdefault("options", {})
        if self.dataset:
            data["dataset"] = self.dataset
        if self.root:
            data["root"] = self.root
            if options.pop("prepared", None) and not self.prepared:
                log.info("new data root %s: training cache not used (see --prepared)", self.root)
        if self.prepared:
            options["prepared"] = self.prepared
        if self.split_file:
            tree["data"]["split_file"], tree["data"]["protocol"] = self.split_file, ""
        for override in self.overrides:
            if not override.startswith("data."):
                raise ValueError(f"evaluation override {override!r}: only data.* settings can change")
            apply_override(tree, override)
        return config_from_dict(tree, source=f"{source} (stored config, with evaluation data options)")


def _tests_on(protocol: str, dataset: str) -> bool:
    """Whether `protocol` is a registered cross-dataset protocol whose test dataset is `dataset`."""
    protocols = list_protocols()
    return protocol in protocols and protocols[protocol].defaults.get("test_dataset") == dataset


def selection_warning(checkpoint: Path, trained: ExperimentConfig, scored: ExperimentConfig,
                      part: str) -> str:
    """Why the score of `part` is optimistic, when `checkpoint` was chosen by a validation score computed on
    that very part of that very data ("" when it was not)."""
    if not checkpoint.name.startswith("best-") or not trained.trainer.monitor:
        return ""
    if part != trained.data.val_split or config_to_dict(trained)["data"] != config_to_dict(scored)["data"]:
        return ""
    return (f"{checkpoint.name} was selected by {trained.trainer.monitor} on part {part!r}, the part scored "
            "here: the numbers are optimistic (select on a validation part, data.val_from_train, or score "
            "the last checkpoint)")


@dataclass
class Evaluation:
    """What `evaluate` produced: the test part's predictions and report, thresholds, written files."""

    checkpoint: Path
    config: ExperimentConfig
    part: str
    table: PredictionTable
    report: DetectionReport
    thresholds: ThresholdChoice
    files: list[Path] = field(default_factory=list)
    localization: Localization | None = None  # AP@IoU / AR@N where the part has fake periods


def resolve_checkpoint(source: str | Path) -> Path:
    """A checkpoint file as given; for a run directory its best checkpoint, else its last one."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: neither a checkpoint file nor a run directory")
    best = sorted((path / "checkpoints").glob(BEST_PATTERN), key=_checkpoint_step)
    if len(best) > 1:
        log.warning("%s: %d best checkpoints; using the latest, %s", path, len(best), best[-1].name)
    if best:
        return best[-1]
    if (path / LAST_CHECKPOINT).is_file():
        log.info("%s: no best checkpoint (no validation monitor?); using %s", path, LAST_CHECKPOINT)
        return path / LAST_CHECKPOINT
    raise FileNotFoundError(f"{path}: run directory without checkpoints/{BEST_PATTERN} or {LAST_CHECKPOINT}")


@torch.inference_mode()  # no autograd bookkeeping at all (not only no graph): scoring never backpropagates
def predict(model: DetectorModel, dataset: ClipDataset, batch_size: int, device: str | torch.device = "cpu",
            workers: int = 0) -> PredictionTable:
    """Score every window of `dataset` in order: the table of `PREDICTION_COLUMNS`, plus
    `p_frame_fake` / `frame_labels` when the model predicts per-frame scores and the data label frames."""
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,  # type: ignore[arg-type]
                        collate_fn=collate_windows, pin_memory=torch.device(device).type == "cuda")
    rows: list[dict[str, Any]] = []
    for batch in loader:
        moved = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        probabilities = model(moved).probabilities()
        batch_rows = prediction_rows(moved, probabilities)
        frame_scores = probabilities.get("p_frame_fake")
        if frame_scores is not None and "frame_labels" in batch:
            scores = frame_scores.detach().float().cpu().tolist()
            labels = batch["frame_labels"].tolist()
            for row, row_scores, row_labels in zip(batch_rows, scores, labels, strict=True):
                row.update(zip(FRAME_COLUMNS, (row_scores, row_labels), strict=True))
        rows.extend(batch_rows)
    # One process scores the whole part, so no gathering across ranks: only the engine's row order.
    rows.sort(key=lambda row: (row["video_id"], row["window"]))
    frame_columns = [c for c in FRAME_COLUMNS if rows and c in rows[0]]
    columns = [*PREDICTION_COLUMNS, *frame_columns]
    return {column: [row[column] for row in rows] for column in columns}


def evaluate(
    source: str | Path,
    out_dir: str | Path,
    *,
    data: DataSelection | None = None,
    part: str = "test",
    batch_size: int | None = None,
    device: str = "cpu",
    plots: bool = True,
) -> Evaluation:
    """Score part `part` with the detector of `source` (checkpoint or run directory) and write, in out_dir:
    `predictions.csv/.json` (per window), `videos.csv` (per video), `metrics.md/.csv/.json` (window, video
    and, where frames are labelled, frame level; per head, category and method), `plots/*.png`,
    `validation/` (the validation part's predictions and metrics the thresholds come from), `summary.json`;
    where the part has fake periods, `proposals.json` and `localization.md/.json` (AP@IoU, AR@N).
    """
    checkpoint = resolve_checkpoint(source)
    model, stored = load_model_from_checkpoint(checkpoint, map_location=device)
    config = (data or DataSelection()).apply(stored, str(checkpoint))
    out = Path(out_dir)
    batch = batch_size or config.data.batch_size
    log.info("evaluating %s on part %r of %s", checkpoint, part, _describe_data(config))
    warnings = [text for text in (selection_warning(checkpoint, stored, config, part),) if text]
    for text in warnings:
        log.warning("SELECTED ON THE SCORED PART: %s", text)

    choice, validation_files = _thresholds(model, config, part, out / "validation", batch, device)
    dataset = build_dataset(config.data, part, EVAL_WINDOW_POLICY)
    table = predict(model, dataset, batch, device, config.data.workers)
    report = with_threshold_sources(compute_detection_metrics(table, thresholds=choice.values), choice)
    files = [*write_predictions(table, out), write_video_scores(table, out)]
    files += _write_report(report, choice, out, _header(checkpoint, config, part, table))
    if plots:
        files += plot_detection(table, out / "plots")
    files += validation_files
    localization = localize(table, dataset, out)
    if localization is not None:
        files += localization.files
    summary = out / "summary.json"
    summary.write_text(json.dumps({
        "checkpoint": str(checkpoint), "model": stored.model.name, "part": part,
        "window_policy": EVAL_WINDOW_POLICY, "data": config_to_dict(config)["data"],
        "windows": len(table["video_id"]), "videos": len(set(table["video_id"])),
        "thresholds": choice.values, "threshold_sources": choice.sources, "warnings": warnings,
        "files": [str(p.relative_to(out)) for p in files],
    }, indent=2), encoding="utf-8")
    return Evaluation(checkpoint, config, part, table, report, choice, [*files, summary], localization)


def _thresholds(model: DetectorModel, config: ExperimentConfig, part: str, out: Path, batch: int,
                device: str) -> tuple[ThresholdChoice, list[Path]]:
    """Thresholds from the validation part (its predictions and metrics written to `out`), else 0.5."""
    val_part = config.data.val_split
    if part == val_part:
        return default_thresholds("evaluating the validation part itself"), []
    try:
        dataset = build_dataset(config.data, val_part, EVAL_WINDOW_POLICY)
    except (KeyError, ValueError) as error:
        log.info("no validation part to choose thresholds on (%s); using 0.5", error)
        return default_thresholds(f"no validation part ({error})"), []
    table = predict(model, dataset, batch, device, config.data.workers)
    report = compute_detection_metrics(table)
    files = [*write_predictions(table, out), *report.write(out)]
    return thresholds_from_validation(report), files


def _write_report(report: DetectionReport, choice: ThresholdChoice, out: Path, header: str) -> list[Path]:
    keys = sorted({f"{row.level}/{row.head}" for row in report.rows})
    markdown = f"{header}\n{choice.note(keys)}\n{report.to_markdown()}"
    return write_report_files(out, "metrics", markdown, report.to_csv(), report.to_json())


def _header(checkpoint: Path, config: ExperimentConfig, part: str, table: Mapping[str, Sequence[Any]]) -> str:
    videos = len(set(table["video_id"]))
    return (f"## Evaluation of {config.model.name} ({checkpoint})\n\n"
            f"Data: {_describe_data(config)}, part `{part}`: {len(table['video_id'])} windows of "
            f"{config.data.clip_frames} frames (consecutive, non-overlapping) from {videos} videos. "
            "Video level: mean of each video's window probabilities.\n")


def _describe_data(config: ExperimentConfig) -> str:
    data = config.data
    where = data.root or data.options.get("prepared") or "(no root)"
    split = f"split file {data.split_file}" if data.split_file else f"protocol {data.protocol or '(none)'}"
    params = data.options.get("protocol_params")
    test = data.test
    tested = (f", test part from {test.dataset} at {test.root or test.options.get('prepared') or '(no root)'}"
              if test.dataset else "")
    return f"{data.dataset} at {where}, {split}" + (f" {params}" if params else "") + tested


def _checkpoint_step(path: Path) -> int:
    match = re.search(r"step=(\d+)", path.name)
    return int(match.group(1)) if match else -1
