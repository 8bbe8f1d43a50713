"""IDForge (Xu et al. 2024), v1 (mp4 shots) and v2 (16 sampled frames + mp3 per shot, the paper's version).

v1: `main/<type>/<idXX>/<idXX_YY>/<shot>.mp4` with split lists `train.csv`, `val.csv`, `test.csv`: plain
relative paths `<type>/<idXX>/<idXX_YY>/<shot>.mp4`, no header, no label (a leading `main/` is tolerated).
v2: `{ref,train,val,test}/<type>/<idXX>/<idXX_YY>/<shot>/frames_ndarray.npy` (16 frames: 4 groups of 4
consecutive frames), `<shot>.mp3` and `<shot>.txt`; the record's path is the .npy and `extra["audio_path"]`
the .mp3. The array's dtype and shape are not documented; loaders must check them.
Labels follow the type folder: `pristine` is real; `face_*` (face swap + lip-sync) and `lip_*` (lip-sync)
fake the video; `audiomismatch` (another shot's audio), `rvc` (voice conversion) and `tts` fake the audio.
`tts_textgen` and `tts_textmismatch` are not described by the README; by their names only the audio is
fake, which is the reading taken here.
"""

from __future__ import annotations

import re
from pathlib import Path

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetLayoutError,
    DatasetMetadataError,
    audio_visual_record,
    require_root,
    warn_missing,
)
from avforensics.data.records import FAKE, REAL, VideoRecord

PRISTINE = "pristine"
_VIDEO_PREFIXES = ("face_", "lip_")
_AUDIO_TOKENS = {"audiomismatch", "rvc", "tts"}
_TEXT_TOKENS = {"textmismatch", "textgen"}
_SWAP_ENGINES = ("simswap", "infoswap", "roop", "insightface")
_IDENTITY = re.compile(r"^id\d+$")
SPLITS = ("train", "val", "test")


def type_labels(forgery_type: str, where: str) -> tuple[int, int]:
    """(video_label, audio_label) of an IDForge type folder name."""
    if forgery_type == PRISTINE:
        return REAL, REAL
    tokens = set(forgery_type.split("_"))
    video = FAKE if forgery_type.startswith(_VIDEO_PREFIXES) else REAL
    audio = FAKE if tokens & _AUDIO_TOKENS else REAL
    if not tokens <= _AUDIO_TOKENS | _TEXT_TOKENS | {"face", "lip"} or (video, audio) == (REAL, REAL):
        raise DatasetMetadataError(f"{where}: unknown IDForge forgery type {forgery_type!r}")
    return video, audio


def idforge_record(
    dataset: str,
    record_id: str,
    path: Path,
    forgery_type: str,
    identity: str,
    split: str,
    extra: dict,
    audio_present: bool | None = None,
) -> VideoRecord:
    video_label, audio_label = type_labels(forgery_type, str(path))
    engine = next((name for name in _SWAP_ENGINES if name in path.name.lower()), "")
    return audio_visual_record(
        dataset,
        record_id,
        path,
        video_label,
        audio_label,
        method="real" if forgery_type == PRISTINE else forgery_type,
        identity=identity,
        split=split,
        audio_present=audio_present,
        extra={**extra, "swap_engine": engine} if engine else extra,
    )


class IDForgeV1Adapter(DatasetAdapter):
    name = "idforge-v1"
    description = "IDForge v1: main/<type>/<idXX>/<idXX_YY>/*.mp4 + train|val|test.csv path lists"
    expected = "main/<type>/<idXX>/<idXX_YY>/<shot>.mp4 (IDForge v1), with train.csv/val.csv/test.csv lists"

    def records(self, root: str | Path) -> list[VideoRecord]:
        found = require_root(self.name, root, "main/pristine", self.expected)
        main = found / "main"
        split_of: dict[str, str] = {}
        for split in SPLITS:
            listing = found / f"{split}.csv"
            if listing.is_file():
                listed = self._read_list(listing)
                warn_missing(self.name, listing, [path for path in listed if not (main / path).is_file()])
                split_of.update(dict.fromkeys(listed, split))
        records = []
        for path in sorted(main.rglob("*.mp4")):
            relative = path.relative_to(main).as_posix()
            parts = relative.split("/")
            if len(parts) != 4:
                raise DatasetMetadataError(f"{path}: expected main/<type>/<idXX>/<idXX_YY>/<shot>.mp4")
            records.append(
                idforge_record(
                    self.name,
                    f"{self.name}/{relative}",
                    path,
                    parts[0],
                    parts[1],
                    split_of.get(relative, ""),
                    {"source_video": parts[2]},
                )
            )
        return records

    @staticmethod
    def _read_list(listing: Path) -> list[str]:
        lines = [line.strip().strip('"') for line in listing.read_text(encoding="utf-8").splitlines()]
        return [line.removeprefix("main/") for line in lines if line]


class IDForgeV2Adapter(DatasetAdapter):
    name = "idforge-v2"
    description = "IDForge v2: {ref,train,val,test}/<type>/<idXX>/<idXX_YY>/<shot>/frames_ndarray.npy + .mp3"
    expected = (
        "train/, val/, test/ (and ref/) folders of <type>/<idXX>/<idXX_YY>/<shot>/frames_ndarray.npy "
        "with <shot>.mp3 (IDForge v2)"
    )

    def records(self, root: str | Path) -> list[VideoRecord]:
        found = require_root(self.name, root, "*/pristine", self.expected)
        records = []
        for split in (*SPLITS, "ref"):
            for frames in (
                sorted((found / split).rglob("frames_ndarray.npy")) if (found / split).is_dir() else []
            ):
                records.append(self._record(found, split, frames))
        if not records:
            raise DatasetLayoutError(self.name, root, self.expected)
        return records

    def _record(self, root: Path, split: str, frames: Path) -> VideoRecord:
        shot = frames.parent
        parts = shot.relative_to(root / split).parts
        if len(parts) < 3:
            raise DatasetMetadataError(f"{frames}: expected {split}/<type>/<idXX>/<idXX_YY>/<shot>/")
        forgery_type, identity = (
            (parts[0], parts[1]) if not _IDENTITY.match(parts[0]) else (PRISTINE, parts[0])
        )
        audio = sorted(shot.glob("*.mp3"))
        transcript = sorted(shot.glob("*.txt"))
        extra = {
            "format": "frames_npy",
            "audio_path": str(audio[0]) if audio else "",
            "transcript_path": str(transcript[0]) if transcript else "",
        }
        sr_frames = shot / "frames_ndarray_sr.npy"
        if sr_frames.is_file():
            extra["super_resolved_path"] = str(sr_frames)
        return idforge_record(
            self.name,
            f"{self.name}/{shot.relative_to(root).as_posix()}",
            frames,
            forgery_type,
            identity,
            split,
            extra,
            audio_present=bool(audio),
        )
