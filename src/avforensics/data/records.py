"""VideoRecord: one labelled video of a dataset, the unit every adapter, protocol and loader shares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FAKE, REAL, UNKNOWN = 1, 0, -1


@dataclass(frozen=True)
class VideoRecord:
    """A video with its labels. Labels: 1 fake, 0 real, -1 unknown (e.g. a test set without labels).

    `label` is the overall label (fake if either modality is fake); `video_label` and `audio_label` are per
    modality. `fake_periods` are (start, end) seconds of manipulated content where a dataset says so.
    `ethnicity` and `gender` are first-class (not in `extra`) because published protocols split on them.
    """

    id: str
    path: str
    label: int
    video_label: int = UNKNOWN
    audio_label: int = UNKNOWN
    dataset: str = ""
    method: str = ""
    category: str = ""
    identity: str = ""
    ethnicity: str = ""
    gender: str = ""
    split: str = ""
    fake_periods: tuple[tuple[float, float], ...] = ()
    frame_labels_path: str = ""
    audio_present: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("label", "video_label", "audio_label"):
            value = getattr(self, name)
            if value not in (FAKE, REAL, UNKNOWN):
                raise ValueError(f"{self.id}: {name} must be 1, 0 or -1, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["fake_periods"] = [list(period) for period in self.fake_periods]
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> VideoRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values["fake_periods"] = tuple(tuple(float(x) for x in p) for p in values.get("fake_periods") or ())
        return cls(**values)
