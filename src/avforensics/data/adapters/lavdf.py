"""LAV-DF (Cai et al. 2022): `metadata.json` (or `metadata.min.json`), a JSON list, and train|dev|test/*.mp4.

Each entry has `file`, `fake_periods` (seconds), `modify_video`, `modify_audio`, `split` (train/dev/test;
"dev" becomes "val") and `original` (the source real clip of a fake, null for a real). The Hugging Face
download may nest `LAV-DF/LAV-DF/LAV-DF/`. LAV-DF has no speaker ids: `identity` is the source clip
(`original`, or the file itself for a real), which keeps a real clip and its fakes together.
"""

from __future__ import annotations

import json
from pathlib import Path

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetMetadataError,
    audio_visual_record,
    overall_label,
    parse_periods,
    require_root,
    warn_missing,
)
from avforensics.data.records import FAKE, REAL, VideoRecord

_SPLITS = {"train": "train", "dev": "val", "val": "val", "test": "test"}
# Metadata fields kept in `VideoRecord.extra`; `file` names the clip as the metadata (and proposals) do.
_KEPT_FIELDS = ("file", "duration", "video_frames", "audio_frames")


def _flag(entry: dict, key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, bool):
        raise DatasetMetadataError(f"{where}: `{key}` must be true or false, got {value!r}")
    return FAKE if value else REAL


class LAVDFAdapter(DatasetAdapter):
    name = "lavdf"
    description = "LAV-DF: metadata(.min).json list + train|dev|test/NNNNNN.mp4"
    expected = "metadata.json or metadata.min.json (a JSON list) next to train/, dev/, test/ (LAV-DF)"

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = require_root(self.name, root, "metadata*.json", self.expected)
        # The min file has the same entries without transcripts: four times smaller to parse.
        metadata = root / "metadata.min.json"
        metadata = metadata if metadata.is_file() else root / "metadata.json"
        try:
            entries = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise DatasetMetadataError(f"{metadata}: cannot read a JSON list ({error})") from error
        if not isinstance(entries, list):
            raise DatasetMetadataError(f"{metadata}: expected a JSON list of entries")
        records, missing = [], []
        for index, entry in enumerate(entries):
            where = f"{metadata}: entry {index} ({entry.get('file', '?')})"
            if "file" not in entry:
                raise DatasetMetadataError(f"{where}: no `file`")
            path = root / entry["file"]
            if not path.is_file():
                missing.append(entry["file"])
                continue
            records.append(self._record(path, entry, where))
        warn_missing(self.name, metadata, missing)
        return records

    def _record(self, path: Path, entry: dict, where: str) -> VideoRecord:
        video_label, audio_label = _flag(entry, "modify_video", where), _flag(entry, "modify_audio", where)
        periods = parse_periods(entry.get("fake_periods"), where)
        modified = overall_label(video_label, audio_label) == FAKE
        if modified and not periods:
            raise DatasetMetadataError(f"{where}: a modified clip with no fake_periods")
        split = str(entry.get("split", ""))
        if split not in _SPLITS:
            raise DatasetMetadataError(f"{where}: split {split!r} is not one of {sorted(_SPLITS)}")
        original = entry.get("original") or None
        return audio_visual_record(
            self.name,
            f"{self.name}/{Path(entry['file']).as_posix()}",
            path,
            video_label,
            audio_label,
            method="lavdf-replacement" if modified else "real",
            identity=str(original or entry["file"]),
            split=_SPLITS[split],
            fake_periods=periods,
            extra={key: entry[key] for key in _KEPT_FIELDS if key in entry},
        )
