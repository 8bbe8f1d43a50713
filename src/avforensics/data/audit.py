"""Dataset audit: per-class statistics that reveal shortcuts a detector could learn instead of the forgery.

For each video: duration, leading silence and loudness of the decoded 16 kHz mono audio. Per class
(real/fake, and per category): count, mean, median, 10th and 90th percentile. And the ROC-AUC that each
statistic ALONE reaches as a fake-vs-real score: near 0.5 is harmless; far from 0.5 (either way) means the
statistic separates the classes, e.g. leading silence in FakeAVCeleb (arXiv 2412.00175).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from avforensics.data.decoding import decode_collecting_warnings
from avforensics.data.records import FAKE, REAL, VideoRecord
from avforensics.data.silence import leading_silence_seconds, loudness_db
from avforensics.media.errors import MediaError

STATISTICS = ("duration", "leading_silence", "loudness_db")
SAMPLE_RATE = 16000


@dataclass
class VideoStats:
    """One audited video; statistics are None where the video has no audio or could not be decoded."""

    id: str
    label: int
    category: str
    audio_present: bool = False
    duration: float | None = None
    leading_silence: float | None = None
    loudness_db: float | None = None
    error: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class AuditReport:
    dataset: str
    videos: list[VideoStats]
    classes: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    auc: dict[str, float | None] = field(default_factory=dict)
    category_auc: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def failed(self) -> list[VideoStats]:
        return [video for video in self.videos if video.error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "classes": self.classes,
            "auc": self.auc,
            "category_auc": self.category_auc,
            "videos": [asdict(video) for video in self.videos],
        }


def measure_audio(audio: np.ndarray | None, duration: float) -> dict[str, float | None]:
    """The statistics of one decoded clip."""
    if audio is None:
        return {"duration": duration, "leading_silence": None, "loudness_db": None}
    return {
        "duration": duration,
        "leading_silence": leading_silence_seconds(audio, SAMPLE_RATE),
        "loudness_db": loudness_db(audio),
    }


def audit_video(record: VideoRecord) -> VideoStats:
    """Decode one video (audio at 16 kHz; frames only counted, at a tiny size) and measure it."""
    stats = VideoStats(record.id, record.label, record.category)
    try:
        decoded, stats.warnings = decode_collecting_warnings(record.path, require_video=False, max_side=16)
    except (MediaError, OSError) as error:
        stats.error = f"{type(error).__name__}: {error}"
        return stats
    if decoded.frames is not None:
        duration = len(decoded.frames) / decoded.fps
    else:
        duration = len(decoded.audio) / decoded.sample_rate if decoded.audio is not None else 0.0
    stats.audio_present = decoded.audio is not None
    for name, value in measure_audio(decoded.audio, duration).items():
        setattr(stats, name, value)
    return stats


def sample_per_class(records: Sequence[VideoRecord], limit: int | None, seed: int = 0) -> list[VideoRecord]:
    """At most `limit` records per label (a seeded draw), so a large dataset can be audited quickly."""
    if limit is None:
        return list(records)
    groups: dict[int, list[VideoRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda record: record.id):
        groups[record.label].append(record)
    rng = random.Random(seed)
    return [
        record
        for label in sorted(groups)
        for record in rng.sample(groups[label], min(limit, len(groups[label])))
    ]


def iter_audit(
    records: Sequence[VideoRecord],
    workers: int = 1,
    measure: Callable[[VideoRecord], VideoStats] = audit_video,
) -> Iterator[VideoStats]:
    """Measure records in input order, in `workers` processes when more than one."""
    if workers <= 1:
        yield from map(measure, records)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(measure, records, chunksize=4)


def summarize(dataset: str, videos: list[VideoStats]) -> AuditReport:
    """Per-class statistics and the single-statistic AUCs."""
    report = AuditReport(dataset, videos)
    groups: dict[str, list[VideoStats]] = defaultdict(list)
    for video in videos:
        if not video.error:
            groups[{REAL: "real", FAKE: "fake"}.get(video.label, "unknown")].append(video)
            if video.category:
                groups[f"category:{video.category}"].append(video)
    report.classes = {name: _describe(members) for name, members in sorted(groups.items())}
    labelled = [video for video in videos if not video.error and video.label in (REAL, FAKE)]
    report.auc = {name: _auc(labelled, name) for name in STATISTICS}
    reals = [video for video in labelled if video.label == REAL]
    categories = sorted({video.category for video in labelled if video.label == FAKE and video.category})
    report.category_auc = {
        category: {
            name: _auc(reals + [v for v in labelled if v.category == category and v.label == FAKE], name)
            for name in STATISTICS
        }
        for category in categories
    }
    return report


def _describe(videos: list[VideoStats]) -> dict[str, dict[str, float]]:
    summary = {"count": {"n": float(len(videos))}}
    for name in STATISTICS:
        values = np.array(
            [getattr(v, name) for v in videos if getattr(v, name) is not None], dtype=np.float64
        )
        if len(values):
            summary[name] = {
                "n": float(len(values)),
                "mean": float(values.mean()),
                "median": float(np.median(values)),
                "p10": float(np.percentile(values, 10)),
                "p90": float(np.percentile(values, 90)),
            }
    return summary


def _auc(videos: list[VideoStats], name: str) -> float | None:
    """ROC-AUC of the statistic as a fake score (ties count half); None, shown as "n/a", when one class
    has no value for it, since an AUC needs both."""
    pairs = [(video.label, getattr(video, name)) for video in videos if getattr(video, name) is not None]
    labels = np.array([label for label, _ in pairs])
    if len(set(labels.tolist())) < 2:
        return None
    return float(roc_auc_score(labels == FAKE, np.array([score for _, score in pairs], dtype=np.float64)))


def format_report(report: AuditReport) -> str:
    """A plain-text table for the terminal."""
    lines = [f"audit of {report.dataset}: {len(report.videos)} video(s), {len(report.failed)} failed", ""]
    lines.append(f"{'class':<24}{'n':>7}" + "".join(f"{name + ' (median)':>26}" for name in STATISTICS))
    for name, summary in report.classes.items():
        cells = "".join(
            f"{summary[s]['median']:>26.3f}" if s in summary else f"{'-':>26}" for s in STATISTICS
        )
        lines.append(f"{name:<24}{int(summary['count']['n']):>7}{cells}")
    lines.append("")
    lines.append("AUC of each statistic alone as a fake score (0.5 = no shortcut):")
    for name, value in report.auc.items():
        lines.append(f"  {name:<18}{'n/a' if value is None else f'{value:.3f}'}")
    for category, aucs in report.category_auc.items():
        shown = ", ".join(f"{name} {'n/a' if v is None else f'{v:.3f}'}" for name, v in aucs.items())
        lines.append(f"  real vs {category}: {shown}")
    for video in report.failed:
        lines.append(f"FAILED {video.id}: {video.error}")
    return "\n".join(lines)
