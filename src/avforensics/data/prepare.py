"""Prepared cache: decode each video once, track and crop its face, and store crops + 16 kHz audio + labels.

Layout of the output folder:
    prepare.json                      the cache format version and the options used (a resume with other
                                      options, or into a cache of another format, is refused)
    items/<k[:2]>/<k>.npz             one video: face crops (T, S, S, 3), audio (N,), crop boxes,
                                      face_found, fps, sample_rate, encoded as data.cache_format says
                                      (compact H.264 + FLAC by default, exact raw arrays with --exact)
    items/<k[:2]>/<k>.json            its entry: status ok/failed, face ratio, warnings, error, the record
    manifest.jsonl                    every entry of the run, one JSON per line, ordered by record id
`k` is the sha1 of the record id, so 256 shard folders spread any dataset evenly.

Crash safety: every file is written to a temporary name in the same folder and renamed into place (an
atomic replace), the .npz before its .json. A video counts as prepared only when its .json exists, and
that is written last, so a run killed at any instant leaves no entry that could be read half-written;
the next run deletes stray temporaries and carries on with the videos that have no entry. The output
folder may be an fsspec URL (s3://bucket/prepared): there each object appears whole once written, the
same order holds, and source videos at URLs are downloaded to a temporary file for decoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.data.cache_format import (
    FORMAT_VERSION,
    Encoding,
    ItemArrays,
    check_version,
    read_item,
    write_item,
)
from avforensics.data.decoding import decode_collecting_warnings
from avforensics.data.records import VideoRecord
from avforensics.data.silence import trim_clip
from avforensics.data.storage import TEMP_SUFFIX, atomic_write, is_url, local_copy, location
from avforensics.data.workers import ItemMap, WorkerJob, local_map
from avforensics.media.errors import MediaError
from avforensics.media.faces import FaceDetector, FaceTrackerConfig, NoFacePolicy, crop_faces, track_faces

OK, FAILED = "ok", "failed"


class PrepareConfigError(ValueError):
    """The output folder was prepared with different options; mixing them would make one cache of two."""


class FaceDetectorUnavailable(RuntimeError):
    """The face detector cannot be built (e.g. its weights are missing): no video can be prepared."""


def build_detector(factory: Callable[[], FaceDetector]) -> FaceDetector:
    """The detector `factory` builds, its failure turned into FaceDetectorUnavailable saying why."""
    try:
        return factory()
    except Exception as error:
        raise FaceDetectorUnavailable(
            f"the face detector cannot be built: {type(error).__name__}: {error}"
        ) from error


@dataclass(frozen=True)
class PrepareOptions:
    """What preparation produces. `max_side` bounds decoded frames (faces are found on them, crops are
    taken from them); `trim_silence` removes leading silence, with the video cut in step; `encoding` is how
    the cache stores crops and audio (data.cache_format: "compact" by default, "exact" bit-identical)."""

    fps: float = 25.0
    sample_rate: int = 16000
    size: int = 224
    stride: int = 5
    max_side: int | None = 640
    max_duration: float = 600.0
    no_face: NoFacePolicy = "center"
    trim_silence: bool = False
    encoding: Encoding = "compact"

    def tracker(self) -> FaceTrackerConfig:
        return FaceTrackerConfig(stride=self.stride, size=self.size, no_face=self.no_face)


def entry_key(record_id: str) -> str:
    return hashlib.sha1(record_id.encode("utf-8")).hexdigest()


def entry_paths(out: Path, record_id: str) -> tuple[Path, Path]:
    """(arrays .npz, entry .json) of a record."""
    key = entry_key(record_id)
    folder = out / "items" / key[:2]
    return folder / f"{key}.npz", folder / f"{key}.json"


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda handle: handle.write(json.dumps(data, sort_keys=True)), mode="w")


def load_frames_and_audio(
    record: VideoRecord, options: PrepareOptions
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Frames (T, H, W, 3) uint8 at options.fps, mono audio at options.sample_rate (None if absent) and
    the decoder's warnings of one record, before any face work.

    Shared by preparation and by on-the-fly loading (data.windows), so both read a record the same way:
    a video file, or IDForge's stored frames (`extra["format"] == "frames_npy"`) with a separate audio file.
    """
    decode_options = {
        "fps": options.fps,
        "sample_rate": options.sample_rate,
        "max_duration": options.max_duration,
    }
    if record.extra.get("format") == "frames_npy":  # IDForge v2: sampled frames + a separate audio file
        frames = np.load(record.path, allow_pickle=False)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"{record.path}: expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}"
            )
        audio_path = record.extra.get("audio_path")
        if not audio_path:
            return frames, None, [f"{record.path}: no audio file next to the frames"]
        decoded, warnings = decode_collecting_warnings(audio_path, require_video=False, **decode_options)
        return frames, decoded.audio, warnings
    decoded, warnings = decode_collecting_warnings(record.path, max_side=options.max_side, **decode_options)
    return decoded.frames, decoded.audio, warnings


def prepare_record(record: VideoRecord, out: Path, options: PrepareOptions, detector: FaceDetector) -> dict:
    """Prepare one video and write its arrays and entry; a failure is recorded in the entry, not raised."""
    arrays_path, entry_path = entry_paths(out, record.id)
    entry: dict[str, Any] = {
        "id": record.id,
        "status": FAILED,
        "warnings": [],
        "error": "",
        "record": record.to_dict(),
    }
    try:
        with local_copy(record.path) as path:
            frames, audio, entry["warnings"] = load_frames_and_audio(dataclasses.replace(record, path=path),
                                                                    options)
        seconds_trimmed = 0.0
        if options.trim_silence and audio is not None:
            frames, audio, seconds_trimmed = trim_clip(frames, audio, options.fps, options.sample_rate)
        track = track_faces(frames, detector, options.tracker(), source=record.path)
        crops = crop_faces(frames, track, options.tracker(), source=record.path)
    except (MediaError, OSError, ValueError) as error:
        entry["error"] = f"{type(error).__name__}: {error}"
        _write_json(entry_path, entry)
        return entry

    item = ItemArrays(crops.frames, audio, crops.boxes, crops.face_found, options.fps, options.sample_rate)
    atomic_write(arrays_path, lambda handle: write_item(handle, item, options.encoding))
    entry.update(
        status=OK,
        frames=len(crops.frames),
        face_ratio=crops.found_ratio,
        no_face=crops.no_face,
        audio_present=audio is not None,
        seconds_trimmed=seconds_trimmed,
        warnings=entry["warnings"] + crops.warnings,
    )
    _write_json(entry_path, entry)
    return entry


# --- running over a dataset -----------------------------------------------------------------------------

def _prepare_worker(
    out: Path, options: PrepareOptions, detector_factory: Callable[[], FaceDetector]
) -> tuple[Path, PrepareOptions, FaceDetector]:
    """A worker's state: where to write, how, and its own face detector (built once per worker)."""
    return out, options, build_detector(detector_factory)


def _prepare_item(state: tuple[Path, PrepareOptions, FaceDetector], record: VideoRecord) -> dict:
    out, options, detector = state
    return prepare_record(record, out, options, detector)


def prepare_job(
    out: Path, options: PrepareOptions, detector_factory: Callable[[], FaceDetector]
) -> WorkerJob:
    """Preparation as a job any engine runs: one face detector per worker, one video per item."""
    return WorkerJob(setup=_prepare_worker, apply=_prepare_item, setup_args=(out, options, detector_factory))


def _check_options(out: Path, dataset: str, options: PrepareOptions) -> None:
    settings = {"format": FORMAT_VERSION, "dataset": dataset, "options": dataclasses.asdict(options)}
    path = out / "prepare.json"
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        version = recorded.get("format", 1)
        check_version(version, str(path))
        if version != FORMAT_VERSION:
            raise PrepareConfigError(
                f"{path}: this folder holds a cache of format {version}; this avforensics writes format "
                f"{FORMAT_VERSION}: prepare into a new --out (the old cache can still be read)"
            )
        if recorded != json.loads(json.dumps(settings)):
            raise PrepareConfigError(
                f"{path}: this folder was prepared with {recorded}, not {settings}; "
                "use another --out or the same options"
            )
    else:
        _write_json(path, settings)


def _remove_temporaries(out: Path) -> int:
    if is_url(out):  # objects in a store are written whole: no temporaries
        return 0
    stray = list((out / "items").rglob(f"*{TEMP_SUFFIX}")) if (out / "items").is_dir() else []
    for path in stray:
        path.unlink()
    return len(stray)


def read_entry(out: Path, record_id: str) -> dict | None:
    _, entry_path = entry_paths(out, record_id)
    return json.loads(entry_path.read_text(encoding="utf-8")) if entry_path.is_file() else None


def prepare_dataset(
    records: Sequence[VideoRecord],
    out: str | Path,
    options: PrepareOptions | None = None,
    *,
    dataset: str = "",
    workers: int = 1,
    detector_factory: Callable[[], FaceDetector] | None = None,
    retry_failed: bool = False,
    progress: Callable[[Iterator[dict], int], Iterator[dict]] | None = None,
    item_map: ItemMap = local_map,
) -> dict[str, int]:
    """Prepare every record not yet prepared (and failed ones with `retry_failed`); write manifest.jsonl.

    Returns counts: prepared and failed (this run), skipped (done before), failed_total (in the manifest),
    removed_temporaries (left by a killed run).
    `progress` wraps the stream of finished entries (e.g. a tqdm bar) given the number pending.
    `out` may be an fsspec URL (s3://bucket/prepared). `item_map` runs the work: local processes by default,
    or another engine given the same job (avforensics.scale runs it on Ray).
    """
    out = location(out)
    options = options or PrepareOptions()
    if detector_factory is None:
        from avforensics.media.mtcnn import MTCNN

        detector_factory = MTCNN
    out.mkdir(parents=True, exist_ok=True)
    _check_options(out, dataset, options)
    removed = _remove_temporaries(out)
    records = sorted(records, key=lambda record: record.id)
    existing = {record.id: read_entry(out, record.id) for record in records}
    pending = [
        r for r in records if existing[r.id] is None or (retry_failed and existing[r.id]["status"] == FAILED)
    ]
    finished = item_map(prepare_job(out, options, detector_factory), pending, workers)
    if progress is not None:
        finished = progress(finished, len(pending))
    failed = sum(entry["status"] == FAILED for entry in finished)
    entries = [read_entry(out, record.id) for record in records]
    lines = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
    atomic_write(out / "manifest.jsonl", lambda handle: handle.write(lines), "w")
    return {
        "prepared": len(pending) - failed,
        "skipped": len(records) - len(pending),
        "failed": failed,
        "failed_total": sum(entry["status"] == FAILED for entry in entries),
        "removed_temporaries": removed,
    }


# --- reading back ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedItem(ItemArrays):
    """One prepared video's arrays, with its record and manifest entry."""

    record: VideoRecord
    entry: dict


class PreparedStore:
    """Read a prepared folder: only entries whose .json exists (written last) are ever opened. Caches of
    every format up to FORMAT_VERSION are read; a newer one is refused up front (CacheFormatError)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        manifest = self.out / "manifest.jsonl"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest}: not a prepared folder (run `avforensics prepare` first)")
        settings = self.out / "prepare.json"
        if settings.is_file():
            check_version(json.loads(settings.read_text(encoding="utf-8")).get("format", 1), str(settings))
        self.entries = [
            json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line
        ]

    def ok(self) -> list[dict]:
        return [entry for entry in self.entries if entry and entry["status"] == OK]

    def load(self, record_id: str) -> PreparedItem:
        entry = read_entry(self.out, record_id)
        if entry is None or entry["status"] != OK:
            raise KeyError(
                f"{self.out}: {record_id} is not prepared ({entry['error'] if entry else 'no entry'})"
            )
        arrays_path, _ = entry_paths(self.out, record_id)
        with open(arrays_path, "rb") as handle:
            item = read_item(handle, entry["audio_present"], str(arrays_path))
        arrays = {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}
        return PreparedItem(**arrays, record=VideoRecord.from_dict(entry["record"]), entry=entry)
