"""AV-Deepfake1M (Cai et al. 2024) and AV-Deepfake1M++: metadata lists, per-file json, file lists.

Files are `<subset>/idNNNNN/<youtube id>/<clip>/<variant>.mp4`. Per-video metadata comes from, in order,
`<subset>_metadata.json` (a list), `<subset>_metadata/**/*.json`, or json files inside the subset folder
itself (the ++ release). Hidden-label subsets (`test`, ++ `testA`/`testB`) are listed by `<subset>_files.txt`
and get label -1.
Per-modality labels come from `modify_type` (`real`, `visual_modified`, `audio_modified`, `both_modified`;
a hyphenated `both-modified` is also accepted), NOT from the SDK's `modify_video`/`modify_audio`
properties, which test for the hyphenated spelling the data never uses and so miss every both-modified
clip. Without `modify_type`, the per-modality segment lists decide. A clip whose modality flag contradicts
its segment lists is reported in one warning (third-party code "repairs" such entries; we do not).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetLayoutError,
    DatasetMetadataError,
    audio_visual_record,
    parse_periods,
    require_root,
    warn_missing,
)
from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord

log = logging.getLogger(__name__)

MODIFY_TYPES = {
    "real": (REAL, REAL),
    "visual_modified": (FAKE, REAL),
    "audio_modified": (REAL, FAKE),
    "both_modified": (FAKE, FAKE),
}
_SPLITS = {"train": "train", "val": "val", "test": "test", "testA": "test", "testB": "test"}


def modality_labels(entry: dict, where: str) -> tuple[int, int]:
    """(video_label, audio_label) from modify_type, else from the per-modality fake segment lists."""
    modify_type = entry.get("modify_type")
    if modify_type is not None:
        key = str(modify_type).replace("-", "_")
        if key not in MODIFY_TYPES:
            raise DatasetMetadataError(
                f"{where}: modify_type {modify_type!r} is not one of {sorted(MODIFY_TYPES)}"
            )
        return MODIFY_TYPES[key]
    if "visual_fake_segments" in entry and "audio_fake_segments" in entry:
        return (
            FAKE if entry["visual_fake_segments"] else REAL,
            FAKE if entry["audio_fake_segments"] else REAL,
        )
    raise DatasetMetadataError(f"{where}: neither modify_type nor visual/audio_fake_segments")


def _contradicts_segments(entry: dict, video_label: int, audio_label: int) -> bool:
    segments = (entry.get("visual_fake_segments"), entry.get("audio_fake_segments"))
    return any(
        listed is not None and bool(listed) != (label == FAKE)
        for listed, label in zip(segments, (video_label, audio_label), strict=True)
    )


class AVDeepfake1MAdapter(DatasetAdapter):
    name = "avdeepfake1m"
    description = "AV-Deepfake1M(++): <subset>_metadata.json or per-file json, <subset>/id*/.../<variant>.mp4"
    expected = (
        "train_metadata.json / val_metadata.json (or <subset>_metadata/ folders, or per-video json "
        "in the subset folders) and/or test_files.txt (AV-Deepfake1M or AV-Deepfake1M++)"
    )

    def records(self, root: str | Path) -> list[VideoRecord]:
        found = require_root(self.name, root, ("*_metadata*", "*_files.txt"), self.expected)
        records: list[VideoRecord] = []
        self._contradictions: list[str] = []
        for subset in _SPLITS:
            entries = self._entries(found, subset)
            if entries is not None:
                records.extend(self._labelled(found, subset, entries))
            elif (found / f"{subset}_files.txt").is_file():
                records.extend(self._unlabelled(found, subset, found / f"{subset}_files.txt"))
        if self._contradictions:
            log.warning(
                "%s: %d clip(s) whose modify_type contradicts their per-modality segments, e.g. %s",
                found,
                len(self._contradictions),
                self._contradictions[0],
            )
        if not records:
            raise DatasetLayoutError(self.name, root, self.expected)
        return records

    @staticmethod
    def _entries(root: Path, subset: str) -> list[tuple[str, dict]] | None:
        listing = root / f"{subset}_metadata.json"
        if listing.is_file():
            entries = json.loads(listing.read_text(encoding="utf-8"))
            if not isinstance(entries, list):
                raise DatasetMetadataError(f"{listing}: expected a JSON list")
            return [(f"{listing}: entry {index}", entry) for index, entry in enumerate(entries)]
        for folder in (root / f"{subset}_metadata", root / subset):
            files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
            if files:
                return [(str(path), json.loads(path.read_text(encoding="utf-8"))) for path in files]
        return None

    def _labelled(self, root: Path, subset: str, entries: list[tuple[str, dict]]) -> list[VideoRecord]:
        records, missing = [], []
        for where, entry in entries:
            if "file" not in entry:
                raise DatasetMetadataError(f"{where}: no `file`")
            relative = f"{subset}/{entry['file']}"
            if not (root / relative).is_file():
                missing.append(relative)
                continue
            video_label, audio_label = modality_labels(entry, where)
            if _contradicts_segments(entry, video_label, audio_label):
                self._contradictions.append(relative)
            records.append(self._record(root, relative, subset, video_label, audio_label, entry, where))
        warn_missing(self.name, root / f"{subset}_metadata", missing)
        return records

    def _unlabelled(self, root: Path, subset: str, listing: Path) -> list[VideoRecord]:
        lines = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        present = [f"{subset}/{line}" for line in lines if (root / subset / line).is_file()]
        warn_missing(self.name, listing, [line for line in lines if not (root / subset / line).is_file()])
        return [
            self._record(root, relative, subset, UNKNOWN, UNKNOWN, {}, str(listing)) for relative in present
        ]

    def _record(
        self,
        root: Path,
        relative: str,
        subset: str,
        video_label: int,
        audio_label: int,
        entry: dict,
        where: str,
    ) -> VideoRecord:
        modify_type = {value: key for key, value in MODIFY_TYPES.items()}.get((video_label, audio_label), "")
        return audio_visual_record(
            self.name,
            f"{self.name}/{relative}",
            root / relative,
            video_label,
            audio_label,
            method=modify_type,
            identity=relative.split("/")[1],
            split=_SPLITS[subset],
            fake_periods=parse_periods(entry.get("fake_segments"), where),
            extra={
                key: entry[key]
                for key in (
                    "file",
                    "audio_model",
                    "original",
                    "video_frames",
                    "audio_frames",
                    "visual_fake_segments",
                    "audio_fake_segments",
                )
                if key in entry
            },
        )
