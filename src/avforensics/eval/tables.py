"""Paper-style protocol tables: one row per held-out category or method (ACC, AUC, AP) and their average.

Each row is the `all` row of one evaluation report at a chosen level and head; the average is the plain
mean over rows, as the cross-manipulation tables of the papers print it. An average over rows where one
metric is undefined would silently average fewer rows, so it is undefined too, naming the rows.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.eval.metrics import (
    DetectionReport,
    MetricUndefined,
    Value,
    csv_value,
    json_value,
    percent_text,
    undefined_reasons,
    write_report_files,
)

TABLE_METRICS = ("acc", "auc", "ap")
AVERAGE = "average"


@dataclass(frozen=True)
class TableRow:
    """One held-out value: its test-set size and ACC (at the evaluation's threshold), AUC and AP."""

    name: str
    n: int
    n_fake: int
    acc: Value
    auc: Value
    ap: Value
    threshold: Value
    threshold_source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "n_fake": self.n_fake,
                **{key: json_value(getattr(self, key)) for key in (*TABLE_METRICS, "threshold")},
                "threshold_source": self.threshold_source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableRow:
        return cls(name=str(data["name"]), n=int(data["n"]), n_fake=int(data["n_fake"]),
                   **{key: _decode(data[key]) for key in (*TABLE_METRICS, "threshold")},
                   threshold_source=str(data["threshold_source"]))


def row_from_report(report: DetectionReport, name: str, level: str, head: str) -> TableRow:
    """The table row of `report`'s whole-set metrics at `level`/`head` (ACC is the thresholded one)."""
    for row in report.rows:
        if (row.level, row.head, row.subset) == (level, head, "all"):
            m = row.metrics
            return TableRow(name, m.n, m.n_fake, m.acc_tuned, m.auc, m.ap, m.threshold, m.threshold_source)
    reason = report.skipped.get(f"{level}/{head}", "no such row in the report")
    raise KeyError(f"{name}: the evaluation has no {level}-level {head} metrics ({reason})")


@dataclass
class ProtocolTable:
    """The rows of a protocol run plus what they measure (title, level, head), with its writers."""

    title: str
    level: str
    head: str
    rows: list[TableRow] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    label: str = "held out"  # what a row is (the first column's heading)

    def average(self) -> dict[str, Value]:
        """Mean of each metric over the rows; undefined (with the rows named) if any row's is undefined."""
        if not self.rows:
            return dict.fromkeys(TABLE_METRICS, MetricUndefined("no rows"))
        means: dict[str, Value] = {}
        for key in TABLE_METRICS:
            values = [getattr(row, key) for row in self.rows]
            missing = [row.name for row, v in zip(self.rows, values, strict=True)
                       if isinstance(v, MetricUndefined)]
            means[key] = (MetricUndefined(f"undefined for {', '.join(missing)}") if missing
                          else float(np.mean(values)))
        return means

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "",
                 f"{self.level.capitalize()} level, {self.head} head; percent. ACC at the threshold of the "
                 "`threshold source` column.", "",
                 f"| {self.label} | n | fake | ACC | AUC | AP | threshold source |",
                 "|---|---|---|---|---|---|---|"]
        for row in self.rows:
            cells = [percent_text(getattr(row, key)) for key in TABLE_METRICS]
            lines.append(f"| {row.name} | {row.n} | {row.n_fake} | " + " | ".join(cells)
                         + f" | {row.threshold_source} |")
        average = self.average()
        lines.append(f"| **{AVERAGE}** | | | " + " | ".join(percent_text(average[k]) for k in TABLE_METRICS)
                     + " | |")
        undefined = sorted({str(v) for row in self.rows for v in (row.acc, row.auc, row.ap)
                            if isinstance(v, MetricUndefined)})
        if undefined:
            lines += ["", "n/a: " + "; ".join(undefined)]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """One line per row then the average; undefined cells empty, their reasons in `undefined`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["name", "n", "n_fake", *TABLE_METRICS, "threshold", "threshold_source", "undefined"])
        for row in self.rows:
            values = [getattr(row, key) for key in (*TABLE_METRICS, "threshold")]
            writer.writerow([row.name, row.n, row.n_fake, *map(csv_value, values), row.threshold_source,
                             undefined_reasons(values)])
        average = list(self.average().values())
        writer.writerow([AVERAGE, "", "", *map(csv_value, average), "", "", "", undefined_reasons(average)])
        return buffer.getvalue()

    def to_json(self) -> str:
        return json.dumps({
            "title": self.title, "level": self.level, "head": self.head, "details": self.details,
            "rows": [row.to_dict() for row in self.rows],
            AVERAGE: {key: json_value(value) for key, value in self.average().items()},
        }, indent=2)

    def write(self, out_dir: str | Path, stem: str = "table") -> list[Path]:
        """`<stem>.md`, `<stem>.csv`, `<stem>.json` in out_dir; returns the paths."""
        return write_report_files(out_dir, stem, self.to_markdown(), self.to_csv(), self.to_json())


def _decode(value: Any) -> Value:
    return MetricUndefined(value["undefined"]) if isinstance(value, dict) else float(value)
