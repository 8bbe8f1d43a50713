"""Timeline picture of a Report: fused, video and audio window probabilities over time.

Drawn from the report's JSON (the source of truth) on matplotlib's Agg canvas, without pyplot, so it works
headless and in worker processes. Known fake periods (from a labelled manifest) are shaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from avforensics.inference.report import Report

_LINES = (
    ("p_fake", "fused", "black"),
    ("p_video_fake", "video", "tab:blue"),
    ("p_audio_fake", "audio", "tab:orange"),
)


def plot_timeline(
    report: Report, out: str | Path, fake_periods: Sequence[tuple[float, float]] = ()
) -> Path:
    """Write a PNG of the report's per-window probabilities (steps over each window's span)."""
    figure = Figure(figsize=(9, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    end = max(report.duration, 1e-3)
    for number, (start, stop) in enumerate(fake_periods):
        axes.axvspan(max(0.0, start), min(stop, end) if math.isfinite(stop) else end, color="tab:red",
                     alpha=0.15, lw=0, label="known fake" if number == 0 else None)
    for key, label, colour in _LINES:
        values = [getattr(segment, key) for segment in report.segments]
        if not values or any(value is None for value in values):
            continue
        times = [segment.start for segment in report.segments] + [report.segments[-1].end]
        axes.stairs(values, times, baseline=None, color=colour, label=label, lw=2 if key == "p_fake" else 1.2)
    axes.axhline(report.threshold, color="grey", ls="--", lw=1, label=f"threshold {report.threshold:.2f}")
    axes.set(xlim=(0, end), ylim=(-0.02, 1.02), xlabel="time (s)", ylabel="P(fake)")
    axes.set_title(f"{Path(report.path).name}: {report.verdict} (p_fake {report.p_fake:.2f})", fontsize=10)
    axes.legend(loc="upper right", fontsize=8, ncols=5)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out
