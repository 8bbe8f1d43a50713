"""Our synthetic audio-visual forgery corpus (avforensics.synth): `manifest.csv` in its output folder.

Columns written by the generator: path (relative), label, video_label, audio_label, category
(RVRA/RVFA/FVRA/FVFA), methods (`+`-joined, `real` for reals), identity, donor, duration, n_frames, fps,
width, height, sample_rate, channels, fake_periods (JSON), difficulty, seed and face_boxes (JSON boxes at
t = 0, 1, 2... s). Numeric columns are converted and face boxes parsed, so loaders can check media
properties and face crops without decoding.
"""

from __future__ import annotations

import json
from pathlib import Path

from avforensics.data.adapters.base import DatasetAdapter, DatasetLayoutError, DatasetMetadataError
from avforensics.data.adapters.manifest import MANIFEST_NAME, read_manifest
from avforensics.data.records import VideoRecord

_REQUIRED = ("path", "label", "video_label", "audio_label", "category", "methods", "identity")
_NUMERIC = {
    "duration": float,
    "fps": float,
    "sample_rate": int,
    "channels": int,
    "n_frames": int,
    "width": int,
    "height": int,
    "difficulty": float,
    "seed": int,
}


class SyntheticAdapter(DatasetAdapter):
    name = "synthetic"
    description = "the avforensics synthetic corpus (manifest.csv written by avforensics.synth)"

    def records(self, root: str | Path) -> list[VideoRecord]:
        manifest = Path(root) / MANIFEST_NAME
        if not manifest.is_file():
            raise DatasetLayoutError(self.name, root, f"{MANIFEST_NAME} written by the synthetic generator")
        with manifest.open(encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
        missing = [column for column in _REQUIRED if column not in header]
        if missing:
            raise DatasetLayoutError(
                self.name, root, f"{MANIFEST_NAME} with columns {missing} (found {header})"
            )
        return [self._typed(record, manifest) for record in read_manifest(self.name, manifest)]

    @staticmethod
    def _typed(record: VideoRecord, manifest: Path) -> VideoRecord:
        extra = dict(record.extra)
        for column, kind in _NUMERIC.items():
            if extra.get(column) not in (None, ""):
                try:
                    extra[column] = kind(float(extra[column]))
                except ValueError as error:
                    raise DatasetMetadataError(
                        f"{manifest}: {record.id}: {column} {extra[column]!r} is not a number"
                    ) from error
        if extra.get("face_boxes"):
            try:
                extra["face_boxes"] = json.loads(extra["face_boxes"])
            except json.JSONDecodeError as error:
                raise DatasetMetadataError(f"{manifest}: {record.id}: face_boxes is not JSON") from error
        extra.setdefault("methods", [record.method] if record.method else [])
        return VideoRecord.from_dict({**record.to_dict(), "extra": extra})
