"""The Report of one scored video (DESIGN.md): JSON is the source of truth, pictures are drawn from it.

Probabilities are calibrated (see calibration.py) and None where the model cannot say: a detector
without an audio head, or a file without an audio track, has no `p_audio_fake`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

HEADS = ("p_fake", "p_video_fake", "p_audio_fake")


@dataclass(frozen=True)
class Segment:
    """One scored window of the timeline: seconds from the start of the file and its probabilities."""

    start: float
    end: float
    p_fake: float
    p_video_fake: float | None
    p_audio_fake: float | None


@dataclass
class Report:
    """Everything `Detector.predict` says about one video.

    verdict: "fake" when p_fake >= threshold (the threshold chosen on validation data), else "real".
    faces_found: fraction of the scored frames in which the tracked face was detected.
    flags: machine-readable conditions (no_audio, no_face) behind the human-readable `warnings`.
    timing: seconds spent decoding and tracking faces, in the model, in all; and the video's length.
    """

    path: str
    model: str
    p_fake: float
    p_video_fake: float | None
    p_audio_fake: float | None
    verdict: str
    threshold: float
    calibrated: bool
    duration: float
    segments: list[Segment]
    faces_found: float
    flags: dict[str, bool]
    warnings: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, keys in the documented order (docs/inference.md)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["segments"] = [Segment(**segment) for segment in data["segments"]]
        return cls(**values)
