"""FakeAVCeleb v1.2 (Khalid et al. 2021), read from `meta_data.csv` exactly as distributed.

Quirks handled (see docs/datasets.md):
* the header ends with a trailing comma: the column headed `path` holds the FILE NAME and the 10th,
  unnamed column the DIRECTORY, prefixed `FakeAVCeleb/`; columns are read by position, and a copy whose
  header names them `filename,path` (as one public loader does) works too, since the file name is
  recognised by its video suffix;
* 22 more rows than files: rows naming the same file twice are merged (the first row wins, the other
  methods are kept in `extra["other_methods"]` and reported in one warning);
* race folders with spaces and parentheses (`Asian (East)`); renamed copies (`Asian_East`, `Asian-East`,
  `AsianEast`) are matched too;
* the archive may unpack double-nested (`FakeAVCeleb_v1.2/FakeAVCeleb_v1.2/`);
* basenames are not unique: ids are full relative paths.
Identity follows the face shown: `source` for real, rtvc and wav2lip rows, `target1` for fsgan,
faceswap-wav2lip and fsgan-wav2lip rows, and for faceswap rows `target1` when it is an id.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from avforensics.data.adapters.base import DatasetAdapter, DatasetMetadataError, require_root, warn_missing
from avforensics.data.adapters.manifest import VIDEO_SUFFIXES
from avforensics.data.records import FAKE, REAL, VideoRecord

log = logging.getLogger(__name__)

TYPES = {
    "RealVideo-RealAudio": (REAL, REAL, "RVRA"),
    "RealVideo-FakeAudio": (REAL, FAKE, "RVFA"),
    "FakeVideo-RealAudio": (FAKE, REAL, "FVRA"),
    "FakeVideo-FakeAudio": (FAKE, FAKE, "FVFA"),
}
#: The AVAD category suffix of each visual method (FVRA-WL, FVFA-FS, FVFA-GAN, ...).
_METHOD_SUFFIX = {
    "wav2lip": "WL",
    "faceswap": "FS",
    "faceswap-wav2lip": "FS",
    "fsgan": "GAN",
    "fsgan-wav2lip": "GAN",
}
_TARGET_IDENTITY_METHODS = {"fsgan", "faceswap-wav2lip", "fsgan-wav2lip"}
_IDENTITY = re.compile(r"^id\d{5}$")
_HEADER = ("source", "target1", "target2", "method", "category", "type", "race", "gender")


def category_of(video_type: str, method: str) -> str:
    """The AVAD-style category: RVRA, RVFA, or FVRA/FVFA + -WL/-FS/-GAN from the visual method."""
    base = TYPES[video_type][2]
    suffix = _METHOD_SUFFIX.get(method) if base.startswith("FV") else None
    return f"{base}-{suffix}" if suffix else base


def identity_of(method: str, source: str, target1: str) -> str:
    if method in _TARGET_IDENTITY_METHODS or (method == "faceswap" and _IDENTITY.match(target1)):
        return target1
    return source


def _folder_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class FakeAVCelebAdapter(DatasetAdapter):
    name = "fakeavceleb"
    description = "FakeAVCeleb v1.2: meta_data.csv + RealVideo-RealAudio/... race/gender/id folders"
    expected = (
        "meta_data.csv next to the RealVideo-RealAudio, RealVideo-FakeAudio, FakeVideo-RealAudio and "
        "FakeVideo-FakeAudio folders (FakeAVCeleb v1.2, possibly nested FakeAVCeleb_v1.2/FakeAVCeleb_v1.2/)"
    )

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = require_root(self.name, root, "meta_data.csv", self.expected)
        metadata = root / "meta_data.csv"
        folders = _FolderResolver(root)
        chosen: dict[str, VideoRecord] = {}
        conflicts: list[str] = []
        missing: list[str] = []
        repeated = 0
        for line, fields in self._rows(metadata):
            record = self._record(fields, f"{metadata}:{line}", folders)
            if record is None:
                missing.append(fields["filename"])
            elif record.id not in chosen:
                chosen[record.id] = record
            elif chosen[record.id].method != record.method:
                chosen[record.id].extra.setdefault("other_methods", []).append(record.method)
                conflicts.append(f"{record.id} ({chosen[record.id].method} vs {record.method})")
            else:
                repeated += 1
        if repeated:
            log.info("%s: %d repeated row(s) merged", metadata, repeated)
        if conflicts:
            log.warning(
                "%s: %d file(s) listed under two methods; kept the first row's method, e.g. %s",
                metadata,
                len(conflicts),
                conflicts[0],
            )
        warn_missing(self.name, metadata, missing)
        return list(chosen.values())

    def _rows(self, metadata: Path) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, fields) of each non-empty row; the two path cells may come in either order."""
        with metadata.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if tuple(header[:8]) != _HEADER or len(header) < 10:
                raise DatasetMetadataError(
                    f"{metadata}: header {header} is not FakeAVCeleb's "
                    f"({','.join(_HEADER)},path, with a trailing comma)"
                )
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) < 10:
                    raise DatasetMetadataError(f"{metadata}:{line}: {len(row)} fields, expected 10")
                fields = dict(zip(_HEADER, (cell.strip() for cell in row[:8]), strict=True))
                first, second = row[8].strip(), row[9].strip()
                fields["filename"], fields["directory"] = (
                    (first, second) if first.lower().endswith(VIDEO_SUFFIXES) else (second, first)
                )
                yield line, fields

    def _record(self, fields: dict[str, str], where: str, folders: _FolderResolver) -> VideoRecord | None:
        video_type = fields["type"]
        if video_type not in TYPES:
            raise DatasetMetadataError(f"{where}: type {video_type!r} is not one of {sorted(TYPES)}")
        parts = fields["directory"].replace("\\", "/").split("/")
        if video_type not in parts:
            raise DatasetMetadataError(
                f"{where}: directory {fields['directory']!r} has no {video_type} folder"
            )
        relative = "/".join([*parts[parts.index(video_type) :], fields["filename"]])
        path = folders.resolve(relative)
        if path is None:
            return None
        video_label, audio_label, _ = TYPES[video_type]
        method = fields["method"]
        return VideoRecord(
            id=f"{self.name}/{relative}",
            path=str(path),
            label=FAKE if FAKE in (video_label, audio_label) else REAL,
            video_label=video_label,
            audio_label=audio_label,
            dataset=self.name,
            method=method,
            category=category_of(video_type, method),
            identity=identity_of(method, fields["source"], fields["target1"]),
            ethnicity=fields["race"],
            gender=fields["gender"],
            extra={
                "type": video_type,
                "source": fields["source"],
                "target1": fields["target1"],
                "target2": fields["target2"],
            },
        )


class _FolderResolver:
    """Finds a metadata path on disk, also in copies whose race folders were renamed (`Asian_East`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._renamed: dict[Path, dict[str, str]] = {}

    def resolve(self, relative: str) -> Path | None:
        path = self.root / relative
        if path.is_file():
            return path
        parts = relative.split("/")
        type_folder = self.root / parts[0]
        if type_folder not in self._renamed:
            children = [child.name for child in type_folder.iterdir()] if type_folder.is_dir() else []
            self._renamed[type_folder] = {_folder_key(name): name for name in children}
        race = self._renamed[type_folder].get(_folder_key(parts[1]))
        if race is None:
            return None
        path = type_folder / race / "/".join(parts[2:])
        return path if path.is_file() else None
