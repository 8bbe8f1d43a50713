"""Detection metrics: ACC, AUC, AP and EER per head, level and subset, as the papers' tables report them.

scikit-learn computes ROC, AUC and AP (ties handled as it does). A metric that the data cannot define
(no items, or a single class for AUC/AP/EER) is a `MetricUndefined` carrying the reason, never NaN.
Conventions: label 1 = fake; a score >= threshold is called fake.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from avforensics.eval.aggregate import (
    HEADS,
    Scored,
    check_table,
    frame_level,
    head_scores,
    video_level,
    window_level,
)

ArrayLike = Sequence[float] | np.ndarray
METRIC_NAMES = ("acc", "acc_tuned", "threshold", "auc", "ap", "eer")
LEVELS = ("window", "video", "frame")


@dataclass(frozen=True)
class MetricUndefined:
    """A metric the data cannot define, with the reason (e.g. "only fake items (n=12)")."""

    reason: str

    def __str__(self) -> str:
        return f"undefined: {self.reason}"


Value = float | MetricUndefined


@dataclass(frozen=True)
class BinaryMetrics:
    """Metrics of one set of scores against 0/1 labels.

    `acc` is accuracy at 0.5; `acc_tuned` accuracy at `threshold`, which was either given (chosen on
    validation data) or, when `threshold_source` says so, chosen on these same data (then optimistic).
    """

    n: int
    n_fake: int
    acc: Value
    acc_tuned: Value
    threshold: Value
    auc: Value
    ap: Value
    eer: Value
    threshold_source: str

    def values(self) -> dict[str, Value]:
        return {name: getattr(self, name) for name in METRIC_NAMES}


def binary_metrics(labels: ArrayLike, scores: ArrayLike, threshold: float | None = None) -> BinaryMetrics:
    """ACC@0.5, ACC at a validation threshold (or one chosen here), AUC, AP and EER."""
    y, s = _check_inputs(labels, scores)
    n, n_fake = len(y), int(y.sum())
    if n == 0:
        empty = MetricUndefined("no items")
        return BinaryMetrics(0, 0, empty, empty, empty, empty, empty, empty, "none")
    acc = float(np.mean((s >= 0.5) == y))
    single = _single_class_reason(n, n_fake)
    source = "given"
    if threshold is None and single is None:
        threshold, source = choose_threshold(y, s), "chosen on these data"
    if threshold is None:
        # Single class and no validation threshold: a threshold cannot be chosen here.
        untuned = MetricUndefined(f"no threshold given and {single}")
        acc_tuned: Value = untuned
        chosen: Value = untuned
        source = "none"
    else:
        acc_tuned, chosen = float(np.mean((s >= threshold) == y)), float(threshold)
    if single is not None:
        undefined = MetricUndefined(single)
        return BinaryMetrics(n, n_fake, acc, acc_tuned, chosen, undefined, undefined, undefined, source)
    return BinaryMetrics(
        n, n_fake, acc, acc_tuned, chosen, float(roc_auc_score(y, s)),
        float(average_precision_score(y, s)), equal_error_rate(y, s)[0], source,
    )


def choose_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """Threshold maximising balanced accuracy (TPR + TNR) / 2, i.e. Youden's J, on (validation) data.

    Balanced accuracy, not accuracy, so that the class ratio of the validation split does not move the
    threshold. Among equally good ROC points the highest threshold wins; the returned value is the midpoint
    between that score and the next lower distinct score, which classifies these data identically and
    leaves a margin on both sides for new data.
    """
    y, s = _check_inputs(labels, scores)
    reason = _single_class_reason(len(y), int(y.sum()))
    if reason is not None:
        raise ValueError(f"cannot choose a threshold: {reason}")
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    fpr, tpr, thresholds = fpr[finite], tpr[finite], thresholds[finite]
    youden = tpr - fpr
    best = int(np.argmax(youden >= youden.max() - 1e-12))  # ties up to rounding: the highest threshold
    if best + 1 < len(thresholds):
        return float((thresholds[best] + thresholds[best + 1]) / 2)
    return float(thresholds[best])


def equal_error_rate(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """(EER, threshold): where the false-positive and false-negative rates cross on the ROC curve.

    Linear interpolation between the two ROC points that bracket FPR = FNR; the threshold is interpolated
    the same way between their thresholds.
    """
    y, s = _check_inputs(labels, scores)
    reason = _single_class_reason(len(y), int(y.sum()))
    if reason is not None:
        raise ValueError(f"EER undefined: {reason}")
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    gap = (1.0 - tpr) - fpr  # FNR - FPR: starts at 1, ends at -1, non-increasing
    cross = int(np.argmax(gap <= 0))
    if gap[cross] == 0 or cross == 0:
        return float(fpr[cross]), float(thresholds[cross])
    t = gap[cross - 1] / (gap[cross - 1] - gap[cross])
    eer = fpr[cross - 1] + t * (fpr[cross] - fpr[cross - 1])
    threshold = thresholds[cross - 1] + t * (thresholds[cross] - thresholds[cross - 1])
    return float(eer), float(threshold)


@dataclass(frozen=True)
class MetricsRow:
    """Metrics of one head at one level over one subset ("all", "category=RVFA", "method=wav2lip")."""

    level: str
    head: str
    subset: str
    metrics: BinaryMetrics


@dataclass
class DetectionReport:
    """All rows of a detection evaluation, plus the heads/levels that could not be scored and why."""

    rows: list[MetricsRow] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """Defined values as `level/head[/subset]/metric` -> float (for loggers); subset "all" is omitted."""
        out: dict[str, float] = {}
        for row in self.rows:
            prefix = f"{row.level}/{row.head}" + ("" if row.subset == "all" else f"/{row.subset}")
            for name, value in row.metrics.values().items():
                if not isinstance(value, MetricUndefined):
                    out[f"{prefix}/{name}"] = value
        return out

    def thresholds(self) -> dict[str, float]:
        """`level/head` -> tuned threshold of the whole set: pass them to score the test split."""
        return {
            f"{row.level}/{row.head}": row.metrics.threshold for row in self.rows
            if row.subset == "all" and not isinstance(row.metrics.threshold, MetricUndefined)
        }

    def to_json(self) -> str:
        rows = [
            {"level": r.level, "head": r.head, "subset": r.subset, "n": r.metrics.n,
             "n_fake": r.metrics.n_fake, "threshold_source": r.metrics.threshold_source,
             **{name: json_value(v) for name, v in r.metrics.values().items()}}
            for r in self.rows
        ]
        return json.dumps({"rows": rows, "skipped": self.skipped}, indent=2)

    def to_csv(self) -> str:
        """One line per row; an undefined metric is empty and its reason goes to the `undefined` column."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = ["level", "head", "subset", "n", "n_fake", *METRIC_NAMES, "threshold_source", "undefined"]
        writer.writerow(header)
        for r in self.rows:
            values = list(r.metrics.values().values())
            writer.writerow([
                r.level, r.head, r.subset, r.metrics.n, r.metrics.n_fake, *map(csv_value, values),
                r.metrics.threshold_source, undefined_reasons(values),
            ])
        return buffer.getvalue()

    def to_markdown(self) -> str:
        """One table per level, in percent as the papers print them; thresholds as probabilities."""
        lines: list[str] = []
        for level in LEVELS:
            rows = [r for r in self.rows if r.level == level]
            if not rows:
                continue
            lines += [f"### {level.capitalize()} level", "",
                      "| head | subset | n | fake | ACC@0.5 | ACC@thr | thr | AUC | AP | EER |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in rows:
                m = r.metrics
                cells = [percent_text(m.acc), percent_text(m.acc_tuned), _plain(m.threshold),
                         percent_text(m.auc), percent_text(m.ap), percent_text(m.eer)]
                lines.append(f"| {r.head} | {r.subset} | {m.n} | {m.n_fake} | " + " | ".join(cells) + " |")
            lines.append("")
        if self.skipped:
            lines += ["Not scored:", ""]
            lines += [f"- {key}: {reason}" for key, reason in sorted(self.skipped.items())]
            lines.append("")
        return "\n".join(lines)

    def write(self, out_dir: str | Path, stem: str = "metrics") -> list[Path]:
        """Write `<stem>.md`, `<stem>.csv` and `<stem>.json` into out_dir; return the paths."""
        return write_report_files(out_dir, stem, self.to_markdown(), self.to_csv(), self.to_json())


def write_report_files(
    out_dir: str | Path, stem: str, markdown: str, csv_text: str, json_text: str
) -> list[Path]:
    """`<stem>.md`, `<stem>.csv` and `<stem>.json` in out_dir (created if needed), the one file set every
    evaluation report is saved as; returns the paths in that order."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in ((".md", markdown), (".csv", csv_text), (".json", json_text)):
        path = directory / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def compute_detection_metrics(
    table: Mapping[str, Sequence[Any]],
    thresholds: Mapping[str, float] | None = None,
    by: Sequence[str] = ("category", "method"),
) -> DetectionReport:
    """Metrics of a per-window prediction table (columns: see `eval.aggregate.REQUIRED_COLUMNS`).

    Heads overall / video / audio, each against its own label (rows labelled -1 excluded); window level,
    video level (mean window probability) and frame level where the table has per-frame columns; the whole
    set and each value of the `by` columns. `thresholds` (`level/head` -> value, e.g. from the validation
    report's `thresholds()`) fixes the ACC@thr threshold; otherwise it is chosen on these data. Subsets use
    the threshold of the whole set.
    """
    check_table(table)
    unknown = sorted(set(by) - {"category", "method"})
    if unknown:
        raise ValueError(f"subsets can be by 'category' and/or 'method', not {unknown}")
    thresholds = dict(thresholds or {})
    report = DetectionReport()
    for head in HEADS:
        scored_head = head_scores(table, head)
        if isinstance(scored_head, str):
            for level in ("window", "video"):
                report.skipped[f"{level}/{head}"] = scored_head
            continue
        scores, labels = scored_head
        for level, scored in (("window", window_level(table, scores, labels)),
                              ("video", video_level(table, scores, labels))):
            _add_rows(report, level, head, scored, thresholds.get(f"{level}/{head}"), by)
    frames = frame_level(table)
    if isinstance(frames, str):
        report.skipped["frame/overall"] = frames
    else:
        _add_rows(report, "frame", "overall", frames, thresholds.get("frame/overall"), by)
    return report


def _add_rows(report: DetectionReport, level: str, head: str, scored: Scored, threshold: float | None,
              by: Sequence[str]) -> None:
    overall = binary_metrics(scored.labels, scored.scores, threshold)
    report.rows.append(MetricsRow(level, head, "all", overall))
    whole_set_threshold = None if isinstance(overall.threshold, MetricUndefined) else overall.threshold
    for column in by:
        values = {"category": scored.categories, "method": scored.methods}[column].astype(str)
        for value in np.unique(values).tolist():
            mask = values == value
            metrics = binary_metrics(scored.labels[mask], scored.scores[mask], whole_set_threshold)
            report.rows.append(MetricsRow(level, head, f"{column}={value}", metrics))


def _check_inputs(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake); got {sorted(set(y.tolist()) - {0, 1})}")
    if not np.isfinite(s).all():
        raise ValueError(f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    return y.astype(np.int64), s


def _single_class_reason(n: int, n_fake: int) -> str | None:
    if n_fake == 0:
        return f"only real items (n={n})"
    if n_fake == n:
        return f"only fake items (n={n})"
    return None


def percent_text(value: Value) -> str:
    """A metric in percent with two decimals, as the papers print them; "n/a" when undefined."""
    return "n/a" if isinstance(value, MetricUndefined) else f"{100 * value:.2f}"


def csv_value(value: Value) -> str:
    """A metric as a CSV cell: exact (repr) when defined, empty when not (the reason goes elsewhere)."""
    return "" if isinstance(value, MetricUndefined) else repr(value)


def json_value(value: Value) -> Any:
    """A metric for JSON: the float, or {"undefined": reason}."""
    return {"undefined": value.reason} if isinstance(value, MetricUndefined) else value


def undefined_reasons(values: Sequence[Value]) -> str:
    """The distinct reasons of the undefined values among `values`, sorted, joined by "; "."""
    return "; ".join(sorted({v.reason for v in values if isinstance(v, MetricUndefined)}))


def _plain(value: Value) -> str:
    return "n/a" if isinstance(value, MetricUndefined) else f"{value:.3f}"
