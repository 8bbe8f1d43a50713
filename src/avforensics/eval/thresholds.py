"""Which decision threshold a test table's ACC uses, and where it came from, written into the report.

A threshold tuned on the test labels themselves flatters ACC, so an evaluation never does that: each
`level/head` takes the threshold chosen on the validation part when there is one that defines it, and 0.5
otherwise; every report row carries the source in `threshold_source`, and the Markdown says it in words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from avforensics.eval.aggregate import HEADS
from avforensics.eval.metrics import LEVELS, DetectionReport, MetricUndefined

DEFAULT_THRESHOLD = 0.5
VALIDATION_SOURCE = "validation part"


@dataclass(frozen=True)
class ThresholdChoice:
    """`level/head` -> threshold, and -> a short phrase saying where it came from."""

    values: dict[str, float]
    sources: dict[str, str]

    def note(self, keys: list[str]) -> str:
        """Markdown lines stating the threshold of each of `keys` (the report's level/head pairs)."""
        lines = ["ACC@thr uses, per level and head:", ""]
        lines += [f"- {key}: {self.values[key]:.3f} ({self.sources[key]})" for key in keys]
        return "\n".join(lines) + "\n"


def threshold_keys() -> list[str]:
    return [f"{level}/{head}" for level in LEVELS for head in HEADS]


def default_thresholds(reason: str) -> ThresholdChoice:
    """0.5 everywhere, e.g. because there is no validation part (`reason` says why)."""
    keys = threshold_keys()
    return ThresholdChoice(dict.fromkeys(keys, DEFAULT_THRESHOLD),
                           dict.fromkeys(keys, f"{DEFAULT_THRESHOLD}: {reason}"))


def thresholds_from_validation(validation: DetectionReport) -> ThresholdChoice:
    """The validation report's whole-set thresholds; 0.5 with the reason where it cannot choose one."""
    chosen = validation.thresholds()
    reasons = dict(validation.skipped)
    for row in validation.rows:
        if row.subset == "all" and isinstance(row.metrics.threshold, MetricUndefined):
            reasons[f"{row.level}/{row.head}"] = row.metrics.threshold.reason
    values, sources = {}, {}
    for key in threshold_keys():
        if key in chosen:
            values[key], sources[key] = chosen[key], VALIDATION_SOURCE
        else:
            reason = reasons.get(key, "not scored on the validation part")
            values[key], sources[key] = DEFAULT_THRESHOLD, f"{DEFAULT_THRESHOLD}: validation part: {reason}"
    return ThresholdChoice(values, sources)


def with_threshold_sources(report: DetectionReport, choice: ThresholdChoice) -> DetectionReport:
    """The report with each row's `threshold_source` replaced by where `choice` took its threshold from."""
    rows = [
        dataclasses.replace(row, metrics=dataclasses.replace(
            row.metrics, threshold_source=choice.sources[f"{row.level}/{row.head}"]))
        for row in report.rows
    ]
    return DetectionReport(rows=rows, skipped=dict(report.skipped))
