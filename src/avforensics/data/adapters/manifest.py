"""Generic datasets: a CSV manifest, or a folder with `real/` and `fake/` sub-folders.

This is the way in for private or unpublished datasets (and for DefakeAVMiT, whose format is not public).
Manifest columns: `path` (relative to the manifest's folder, or absolute) and `label` are required (`label`
may be left out when both `video_label` and `audio_label` are given); optional: `id`, `video_label`,
`audio_label`, `method` (or `methods`), `category`, `identity`, `ethnicity`, `gender`, `split`,
`fake_periods` (JSON list of [start, end] seconds). Any other column is kept in `VideoRecord.extra`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetLayoutError,
    DatasetMetadataError,
    modality_category,
    overall_label,
    parse_label,
    parse_periods,
)
from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
MANIFEST_NAME = "manifest.csv"
_TEXT_COLUMNS = ("method", "category", "identity", "ethnicity", "gender", "split")
_KNOWN_COLUMNS = {
    "id",
    "path",
    "label",
    "video_label",
    "audio_label",
    "methods",
    "fake_periods",
    *_TEXT_COLUMNS,
}


def split_methods(value: str) -> list[str]:
    """Method names from a JSON list or a `+`, `;` or `|` separated string (compound forgeries)."""
    value = value.strip()
    if value.startswith("["):
        return [str(method) for method in json.loads(value)]
    for separator in "+;|":
        if separator in value:
            return [part.strip() for part in value.split(separator) if part.strip()]
    return [value] if value else []


def read_manifest(dataset: str, manifest: Path) -> list[VideoRecord]:
    """Records from a manifest CSV (see the module docstring for the columns)."""
    base = manifest.parent
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if "path" not in columns or not ({"label"} <= columns or {"video_label", "audio_label"} <= columns):
            raise DatasetMetadataError(
                f"{manifest}: needs a `path` column and `label` (or `video_label` and `audio_label`); "
                f"found {sorted(columns)}"
            )
        return [
            _manifest_record(dataset, base, row, f"{manifest}:{line}")
            for line, row in enumerate(reader, start=2)
        ]


def _manifest_record(dataset: str, base: Path, row: dict[str, str], where: str) -> VideoRecord:
    relative = (row.get("path") or "").strip()
    if not relative:
        raise DatasetMetadataError(f"{where}: empty path")
    video_label = parse_label(row.get("video_label", ""), where)
    audio_label = parse_label(row.get("audio_label", ""), where)
    label = parse_label(row["label"], where) if "label" in row else overall_label(video_label, audio_label)
    methods = split_methods(row.get("method") or row.get("methods") or "")
    text = {name: (row.get(name) or "").strip() for name in _TEXT_COLUMNS if name != "method"}
    text["category"] = text["category"] or modality_category(video_label, audio_label)
    extra = {key: value for key, value in row.items() if key not in _KNOWN_COLUMNS and key is not None}
    if len(methods) > 1:
        extra["methods"] = methods
    return VideoRecord(
        id=(row.get("id") or "").strip() or f"{dataset}/{Path(relative).as_posix()}",
        path=str(base / relative),
        label=label,
        video_label=video_label,
        audio_label=audio_label,
        dataset=dataset,
        method="+".join(methods),
        fake_periods=parse_periods(row.get("fake_periods"), where),
        extra=extra,
        **text,
    )


def read_folder(dataset: str, root: Path) -> list[VideoRecord]:
    """Records from `root/real/**` (label 0) and `root/fake/**` (label 1); modality labels stay unknown."""
    records = []
    for folder, label in (("real", REAL), ("fake", FAKE)):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                relative = path.relative_to(root).as_posix()
                records.append(
                    VideoRecord(
                        id=f"{dataset}/{relative}",
                        path=str(path),
                        label=label,
                        dataset=dataset,
                        video_label=REAL if label == REAL else UNKNOWN,
                        audio_label=REAL if label == REAL else UNKNOWN,
                        method="real" if label == REAL else "",
                    )
                )
    return records


class ManifestAdapter(DatasetAdapter):
    """A CSV manifest (a file, or `manifest.csv` in the folder) or a `real/` + `fake/` folder tree."""

    name = "manifest"
    description = "generic: manifest.csv (path,label,...) or a folder with real/ and fake/"

    def __init__(self, dataset: str | None = None) -> None:
        self.dataset = dataset or self.name

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = Path(root)
        if root.is_file() and root.suffix.lower() == ".csv":
            return read_manifest(self.dataset, root)
        if (root / MANIFEST_NAME).is_file():
            return read_manifest(self.dataset, root / MANIFEST_NAME)
        if (root / "real").is_dir() and (root / "fake").is_dir():
            records = read_folder(self.dataset, root)
            if records:
                return records
        raise DatasetLayoutError(self.dataset, root, self.expected_layout())

    def expected_layout(self) -> str:
        return (
            f"a CSV file, a folder holding {MANIFEST_NAME} (columns path,label[,video_label,audio_label,"
            f"method,category,identity,split,fake_periods]), or real/ and fake/ folders of videos"
        )
