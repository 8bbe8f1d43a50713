"""DFDC (Dolhansky et al. 2020) and its preview release DFDCP.

DFDC: `train/dfdc_train_part_N/metadata.json` (dict by file name: label FAKE/REAL, `original` for fakes,
missing or null for reals; parts sometimes nested one level deeper after unzipping), and
`validation/labels.csv`, `test/labels.csv` (`filename,label`, 0 real 1 fake), optionally `test/metadata.json`
(`is_fake`, `augmentations`, where `no_audio` marks the clips without an audio track).
DFDC has one label per video: a fake may have a swapped face, a swapped voice or both, and nothing says
which, so fakes get video_label = audio_label = -1 (unknown); reals are real in both modalities.
There are no actor ids: `identity` is the source real clip (`original`), which groups a real clip with all
fakes made from it, the tightest grouping the metadata allows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetLayoutError,
    DatasetMetadataError,
    modality_category,
    parse_label,
    relative_id,
    require_root,
    warn_missing,
)
from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord

_SPLIT_FOLDERS = {"validation": "val", "test": "test"}


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetMetadataError(f"{path}: not valid JSON ({error})") from error


def _load_json_object(path: Path, keyed_by: str) -> dict[str, Any]:
    """A metadata file holding one JSON object of per-clip entries, keyed by `keyed_by`."""
    entries = _load_json(path)
    if not isinstance(entries, dict):
        raise DatasetMetadataError(f"{path}: expected a JSON object keyed by {keyed_by}")
    return entries


def _mentions_no_audio(value: Any) -> bool:
    """True if `no_audio` occurs as a key or value anywhere in a test clip's augmentation description."""
    if isinstance(value, dict):
        return any(key == "no_audio" or _mentions_no_audio(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_mentions_no_audio(item) for item in value)
    return value == "no_audio"


def _clip_labelled_record(dataset: str, record_id: str, path: Path, label: int, **fields: Any) -> VideoRecord:
    """DFDC labels clips, not modalities: a real clip is real in both, a fake one unknown in each (its
    audio may or may not have been swapped), so only real clips get a modality category (RVRA)."""
    modality = REAL if label == REAL else UNKNOWN
    return VideoRecord(
        id=record_id,
        path=str(path),
        label=label,
        video_label=modality,
        audio_label=modality,
        dataset=dataset,
        category=modality_category(modality, modality),
        **fields,
    )


class DFDCAdapter(DatasetAdapter):
    name = "dfdc"
    description = "DFDC full: train/dfdc_train_part_*/metadata.json, validation|test/labels.csv"
    expected = (
        "train/dfdc_train_part_*/metadata.json and/or validation/labels.csv, test/labels.csv "
        "(the full DFDC release)"
    )

    def records(self, root: str | Path) -> list[VideoRecord]:
        if not Path(root).is_dir():
            raise DatasetLayoutError(self.name, root, self.expected)
        root = Path(root)
        metadata_files = sorted(root.glob("train/*/metadata.json")) + sorted(
            root.glob("train/*/*/metadata.json")
        )
        records = [record for metadata in metadata_files for record in self._train_part(root, metadata)]
        for folder, split in _SPLIT_FOLDERS.items():
            records.extend(self._labelled_folder(root, root / folder, split))
        if not records:
            raise DatasetLayoutError(self.name, root, self.expected)
        return records

    def _train_part(self, root: Path, metadata: Path) -> list[VideoRecord]:
        entries = _load_json_object(metadata, "file name")
        records, missing = [], []
        for filename, entry in sorted(entries.items()):
            where = f"{metadata}: {filename}"
            label = parse_label(entry.get("label", ""), where)
            if label == UNKNOWN:
                raise DatasetMetadataError(f"{where}: label must be REAL or FAKE, got {entry.get('label')!r}")
            path = metadata.parent / filename
            if not path.is_file():
                missing.append(filename)
                continue
            original = entry.get("original") or None
            if label == FAKE and original is None:
                raise DatasetMetadataError(f"{where}: a FAKE clip without `original`")
            records.append(
                self._record(
                    root,
                    path,
                    label,
                    "train",
                    identity=original or filename,
                    extra={"original": original} if original else {},
                )
            )
        warn_missing(self.name, metadata, missing)
        return records

    def _labelled_folder(self, root: Path, folder: Path, split: str) -> list[VideoRecord]:
        labels_csv, metadata_json = folder / "labels.csv", folder / "metadata.json"
        metadata = _load_json(metadata_json) if metadata_json.is_file() else {}
        if labels_csv.is_file():
            labels = self._read_labels_csv(labels_csv)
        elif metadata:
            labels = {
                name: parse_label(entry.get("is_fake", ""), f"{metadata_json}: {name}")
                for name, entry in metadata.items()
            }
        else:
            return []
        records, missing = [], []
        for filename, label in sorted(labels.items()):
            path = folder / filename
            if not path.is_file():
                missing.append(filename)
                continue
            augmentations = metadata.get(filename, {}).get("augmentations", {})
            audio_present = False if _mentions_no_audio(augmentations) else None
            extra = {"augmentations": augmentations} if augmentations else {}
            records.append(
                self._record(root, path, label, split, identity="", extra=extra, audio_present=audio_present)
            )
        warn_missing(self.name, labels_csv if labels_csv.is_file() else metadata_json, missing)
        return records

    @staticmethod
    def _read_labels_csv(path: Path) -> dict[str, int]:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"filename", "label"} <= set(reader.fieldnames or ()):
                raise DatasetMetadataError(
                    f"{path}: expected columns filename,label; got {reader.fieldnames}"
                )
            return {
                row["filename"].strip(): parse_label(row["label"], f"{path}:{line}")
                for line, row in enumerate(reader, start=2)
            }

    def _record(
        self,
        root: Path,
        path: Path,
        label: int,
        split: str,
        identity: str,
        extra: dict[str, Any],
        audio_present: bool | None = None,
    ) -> VideoRecord:
        return _clip_labelled_record(
            self.name,
            relative_id(self.name, path, root),
            path,
            label,
            method="real" if label == REAL else "dfdc",
            identity=identity,
            split=split,
            audio_present=audio_present,
            extra=extra,
        )


class DFDCPreviewAdapter(DatasetAdapter):
    """DFDC Preview: `dataset.json` keyed by relative path (original_videos/, method_A/, method_B/).

    Each entry has `label` (real/fake) and `set` (train/test). Other fields are not documented; when an
    entry carries `target_id` it is used as identity, otherwise the folder below the method folder
    (a subject number in the copies described publicly; treat it as a guess).
    """

    name = "dfdc-preview"
    description = "DFDC Preview: dataset.json + original_videos/, method_A/, method_B/"
    expected = "dataset.json keyed by paths under original_videos/, method_A/, method_B/ (DFDC Preview)"

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = require_root(self.name, root, "dataset.json", self.expected)
        metadata = root / "dataset.json"
        entries = _load_json_object(metadata, "relative path")
        records, missing = [], []
        for relative, entry in sorted(entries.items()):
            where = f"{metadata}: {relative}"
            label = parse_label(entry.get("label", ""), where)
            path = root / relative
            if not path.is_file():
                missing.append(relative)
                continue
            parts = Path(relative).parts
            records.append(
                _clip_labelled_record(
                    self.name,
                    f"{self.name}/{Path(relative).as_posix()}",
                    path,
                    label,
                    method="real" if label == REAL else parts[0],
                    identity=str(entry.get("target_id") or (parts[1] if len(parts) > 2 else "")),
                    split={"train": "train", "test": "test"}.get(str(entry.get("set", "")), ""),
                    extra={key: value for key, value in entry.items() if key not in ("label", "set")},
                )
            )
        warn_missing(self.name, metadata, missing)
        return records
