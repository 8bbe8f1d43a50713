"""Torch datasets of clip windows: the Batch of DESIGN.md, one window at a time, from real videos.

A video comes either from a prepared cache (`PreparedVideos`, the fast path) or is decoded and face-cropped
on first use (`DecodedVideos`, for small corpora); `WindowDataset` cuts it into windows of `clip_frames`
frames with exactly the audio samples of the same time span, and labels every window with the video's
overall and per-modality labels plus per-frame labels derived from the record's `fake_periods`.

Random choices depend only on (seed, epoch, index), never on a running random stream, so a resumed or
sharded run sees the same windows as an uninterrupted one.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from avforensics.data.prepare import PreparedStore, PrepareOptions, load_frames_and_audio
from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord
from avforensics.data.silence import trim_clip
from avforensics.features.image import clip_preprocess, resize_for_clip
from avforensics.media.clips import ClipWindow, Policy, plan_windows, samples_per_frame
from avforensics.media.errors import MediaError
from avforensics.media.faces import FaceDetector, extract_faces

if TYPE_CHECKING:  # the augmenter's libraries load only where a run augments
    from avforensics.data.augment import AugmentedClip, ClipAugmenter

log = logging.getLogger(__name__)

WindowPolicy = Literal["random", "all", "consecutive", "sliding"]
ClipTransform = Callable[[np.ndarray, np.ndarray], "AugmentedClip"]
POLICIES: tuple[str, ...] = ("random", "all", "consecutive", "sliding")
DEFAULT_CACHE_BYTES = 512 * 2**20
SMALL_CORPUS = 500  # videos: beyond this, decoding on the fly is worth a warning
UNKNOWN_FRAME = -1  # frame label of padding frames and of videos whose label is unknown
_BORDER = 1e-6  # seconds: frame times this close to a fake period's border count as on it


class VideoLoadError(RuntimeError):
    """A video could not be decoded or cropped; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoArrays:
    """One video ready to be windowed: face crops and audio on one timeline.

    `start_time` is the time in the ORIGINAL video of frame 0 (non-zero after leading silence was trimmed),
    so per-frame labels are read from `fake_periods` at the right place.
    """

    record: VideoRecord
    frames: np.ndarray  # (T, S, S, 3) uint8
    audio: np.ndarray | None  # (T * sample_rate / fps,) float32, None when the video has no audio track
    fps: float
    sample_rate: int
    start_time: float = 0.0

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + (self.audio.nbytes if self.audio is not None else 0)


class VideoSource(Protocol):
    """Where a dataset's videos come from."""

    records: list[VideoRecord]

    def frame_count(self, index: int) -> int | None:
        """Frames of video `index` if known without loading it, else None."""

    def load(self, index: int) -> VideoArrays:
        """The arrays of video `index`; raises VideoLoadError naming the file when it cannot."""


class PreparedVideos:
    """Videos of a prepared cache (`avforensics prepare`), optionally restricted to some record ids.

    Ids that failed preparation are left out with a logged warning giving the reason; ids the cache has
    never seen are an error (the cache belongs to another dataset or its preparation has not finished).
    """

    def __init__(self, store: PreparedStore | str | Path, ids: Sequence[str] | None = None) -> None:
        self.store = store if isinstance(store, PreparedStore) else PreparedStore(store)
        entries = {entry["id"]: entry for entry in self.store.entries if entry}
        wanted = sorted(entries) if ids is None else list(ids)
        unknown = [record_id for record_id in wanted if record_id not in entries]
        if unknown:
            raise KeyError(
                f"{self.store.out}: {len(unknown)} video(s) not in this prepared cache, e.g. {unknown[0]!r}; "
                "prepare the same dataset (and let the run finish) before loading it"
            )
        failed = [entries[record_id] for record_id in wanted if entries[record_id]["status"] != "ok"]
        if failed:
            log.warning(
                "%s: %d video(s) left out because their preparation failed, e.g. %s: %s",
                self.store.out, len(failed), failed[0]["id"], failed[0]["error"],
            )
        self.entries = [entries[record_id] for record_id in wanted if entries[record_id]["status"] == "ok"]
        self.records = [VideoRecord.from_dict(entry["record"]) for entry in self.entries]

    def frame_count(self, index: int) -> int | None:
        return int(self.entries[index]["frames"])

    def load(self, index: int) -> VideoArrays:
        item = self.store.load(self.entries[index]["id"])
        return VideoArrays(
            record=item.record,
            frames=item.frames,
            audio=item.audio,
            fps=item.fps,
            sample_rate=item.sample_rate,
            start_time=float(item.entry.get("seconds_trimmed", 0.0)),
        )


class DecodedVideos:
    """Videos decoded and face-cropped when first loaded, exactly as `prepare` would (same options).

    For small corpora only: every load decodes the file and runs the face detector, so the dataset keeps
    the results in its in-memory cache. The detector is built on first use, once per process.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        options: PrepareOptions | None = None,
        detector_factory: Callable[[], FaceDetector] | None = None,
    ) -> None:
        self.records = list(records)
        if len(self.records) > SMALL_CORPUS:
            log.warning(
                "decoding %d videos and detecting their faces on the fly, each process on its own; for a "
                "corpus this size run `avforensics prepare` once and read its cache instead",
                len(self.records),
            )
        self.options = options or PrepareOptions()
        if self.options.trim_silence:
            raise ValueError("DecodedVideos: trim leading silence with WindowDataset(trim_silence=True)")
        self.detector_factory = detector_factory
        self._detector: FaceDetector | None = None

    def frame_count(self, index: int) -> int | None:
        return None

    def load(self, index: int) -> VideoArrays:
        record = self.records[index]
        try:
            frames, audio, warnings = load_frames_and_audio(record, self.options)
            crops = extract_faces(frames, self._face_detector(), self.options.tracker(), source=record.path)
        except (MediaError, OSError, ValueError) as error:
            raise VideoLoadError(f"{record.path}: {type(error).__name__}: {error}") from error
        for warning in warnings + crops.warnings:
            log.warning("%s", warning)
        return VideoArrays(record, crops.frames, audio, self.options.fps, self.options.sample_rate)

    def _face_detector(self) -> FaceDetector:
        if self._detector is None:
            if self.detector_factory is None:
                from avforensics.media.mtcnn import MTCNN

                self.detector_factory = MTCNN
            self._detector = self.detector_factory()
        return self._detector

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes build their own detector rather than receive a pickled copy.
        return {**self.__dict__, "_detector": None}


class ArrayCache:
    """Least-recently-used cache of VideoArrays bounded by their total size in bytes (0 disables it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[int, VideoArrays] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: int) -> VideoArrays | None:
        arrays = self._items.get(key)
        if arrays is not None:
            self._items.move_to_end(key)
        return arrays

    def put(self, key: int, arrays: VideoArrays) -> None:
        if key in self._items or arrays.nbytes > self.max_bytes:
            return
        self._items[key] = arrays
        self.bytes += arrays.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= evicted.nbytes


def frame_labels(
    record: VideoRecord, n_frames: int, fps: float, start_time: float = 0.0, first_frame: int = 0
) -> np.ndarray:
    """Per-frame fake labels (n_frames,) int64 of frames first_frame, first_frame + 1, ...

    Frame k lies at start_time + k/fps in the original video and is 1 inside a fake period [start, end),
    0 outside (times within a microsecond of a border count as on it, so float rounding cannot move a
    frame across); a fake video without periods is fake throughout (a whole-clip forgery); a real video
    is 0 throughout; -1 throughout when the video's label is unknown.
    """
    if record.label == REAL:
        return np.zeros(n_frames, np.int64)
    if record.label != FAKE:
        return np.full(n_frames, UNKNOWN_FRAME, np.int64)
    if not record.fake_periods:
        return np.ones(n_frames, np.int64)
    times = start_time + (first_frame + np.arange(n_frames)) / fps
    fake = np.zeros(n_frames, bool)
    for start, end in record.fake_periods:
        fake |= (times >= start - _BORDER) & (times < end - _BORDER)
    return fake.astype(np.int64)


class WindowDataset(Dataset):
    """Map-style dataset of clip windows (the engine's `ClipDataset`).

    Policies: "random" = one window per video per epoch at a start drawn from (seed, epoch, index);
    "all" (= "consecutive") = every non-overlapping window from frame 0, a tail shorter than a window left
    out (the papers' test-time protocol); "sliding" = windows every `stride` frames.
    A video shorter than one window gives one window padded by repeating its last frame, with silent
    audio and frame label -1 on the padding; `padded_frames` in the window says how many frames are padding.
    Videos are held in an LRU cache of `cache_bytes` (per process: each DataLoader worker has its own).
    `augment` (training only) transforms every window with a generator seeded by (seed, epoch, index).
    """

    def __init__(
        self,
        source: VideoSource,
        window_policy: WindowPolicy = "random",
        clip_frames: int = 16,
        image_size: int = 224,
        *,
        stride: int | None = None,
        seed: int = 0,
        trim_silence: bool = False,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        augment: ClipAugmenter | None = None,
    ) -> None:
        if window_policy not in POLICIES:
            raise ValueError(f"unknown window policy {window_policy!r}; use one of {list(POLICIES)}")
        if clip_frames <= 0 or image_size <= 0:
            raise ValueError(f"clip_frames and image_size must be positive, got {clip_frames}, {image_size}")
        self.source = source
        self.policy = window_policy
        self.clip_frames = clip_frames
        self.image_size = image_size
        self.stride = stride
        self.seed = seed
        self.trim_silence = trim_silence
        self.cache = ArrayCache(cache_bytes)
        self.augment = augment if augment is not None and augment.active else None
        self.epoch = 0
        self.videos, self.frame_counts = self._usable_videos()
        self.windows = [] if window_policy == "random" else self._planned_windows()

    def _usable_videos(self) -> tuple[list[int], list[int]]:
        """Source indices that load, with their frame counts (loading, hence caching, those not known)."""
        videos, counts = [], []
        for index in range(len(self.source.records)):
            count = None if self.trim_silence else self.source.frame_count(index)
            if count is None:
                try:
                    count = len(self._arrays(index).frames)
                except VideoLoadError as error:
                    log.warning("left out: %s", error)
                    continue
            if count == 0:
                trimmed = " after trimming its leading silence" if self.trim_silence else ""
                log.warning("left out: %s has no frames%s", self.source.records[index].path, trimmed)
                continue
            videos.append(index)
            counts.append(count)
        return videos, counts

    def _planned_windows(self) -> list[tuple[int, int, ClipWindow]]:
        """(video position, window number in that video, window) of every window, video by video."""
        policy: Policy = "sliding" if self.policy == "sliding" else "consecutive"
        return [
            (position, number, window)
            for position, count in enumerate(self.frame_counts)
            for number, window in enumerate(plan_video_windows(count, self.clip_frames, policy, self.stride))
        ]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random windows `__getitem__` returns."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) if self.policy == "random" else len(self.windows)

    def record(self, position: int) -> VideoRecord:
        """The record of the `position`-th usable video."""
        return self.source.records[self.videos[position]]

    def video_timing(self, position: int) -> tuple[float, float, int]:
        """(fps, start time, frame count) of the `position`-th usable video: frame k lies at start time +
        k / fps seconds of the original file (the start time is the trimmed silence, if any). Loads the
        video unless it is cached."""
        arrays = self._arrays(self.videos[position])
        return arrays.fps, arrays.start_time, self.frame_counts[position]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        if self.policy == "random":
            rng = np.random.default_rng([self.seed, self.epoch, index])
            position, number = index, 0
            window = plan_video_windows(self.frame_counts[position], self.clip_frames, "random", rng=rng)[0]
        else:
            position, number, window = self.windows[index]
        arrays = self._arrays(self.videos[position])
        transform = None
        if self.augment is not None:
            augment_rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # apart from the window's
            transform = functools.partial(self.augment, rng=augment_rng,
                                          real_video=arrays.record.video_label == REAL)
        return cut_window(arrays.frames, arrays.audio, window, fps=arrays.fps, sample_rate=arrays.sample_rate,
                          image_size=self.image_size, number=number, record=arrays.record,
                          start_time=arrays.start_time, augment=transform)

    def _arrays(self, index: int) -> VideoArrays:
        arrays = self.cache.get(index)
        if arrays is None:
            arrays = _aligned(self.source.load(index))
            if self.trim_silence and arrays.audio is not None:
                frames, audio, cut = trim_clip(arrays.frames, arrays.audio, arrays.fps, arrays.sample_rate)
                arrays = replace(arrays, frames=frames, audio=audio, start_time=arrays.start_time + cut)
            # Kept at the model's size: each window then skips the resize, and more videos fit the cache.
            arrays = replace(arrays, frames=resize_for_clip(arrays.frames, self.image_size))
            self.cache.put(index, arrays)
        return arrays


def plan_video_windows(
    count: int,
    clip_frames: int,
    policy: Policy,
    stride: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[ClipWindow]:
    """Windows of a `count`-frame video in frame numbers (only `start_frame` and `n_frames` are used: audio
    follows the video's own samples per frame); a video shorter than a window gets one window from frame 0,
    to be padded by `cut_window`."""
    if count < clip_frames:
        return [ClipWindow(0, clip_frames)]
    return plan_windows(count, clip_frames, policy, stride=stride, rng=rng)


def cut_window(
    frames: np.ndarray,
    audio: np.ndarray | None,
    window: ClipWindow,
    *,
    fps: float,
    sample_rate: int,
    image_size: int,
    number: int = 0,
    record: VideoRecord | None = None,
    video_id: str | None = None,
    start_time: float = 0.0,
    augment: ClipTransform | None = None,
) -> dict[str, Any]:
    """One model window of a decoded video: the one function training and inference both cut windows with.

    `frames` (T, S, S, 3) uint8 face crops (already at `image_size` for speed, else resized here), `audio`
    the video's samples on the same timeline (None: no audio track). Frames past the end repeat the last
    frame, with silent audio and frame label -1 (`padded_frames` counts them). Labels come from `record`;
    without one (inference) every label is unknown and the window is named `video_id`. `augment` (training)
    transforms the window's crops and samples; a clip it forged is labelled video-fake on its real frames.
    """
    start = window.start_frame
    available = max(0, min(window.n_frames, len(frames) - start))
    padding = window.n_frames - available
    clip = frames[start : start + available]
    if padding:
        clip = np.concatenate([clip, np.repeat(clip[-1:], padding, axis=0)])
    labels = np.full(window.n_frames, UNKNOWN_FRAME, np.int64)
    if record is not None:
        labels[:available] = frame_labels(record, available, fps, start_time, start)
    spf = samples_per_frame(fps, sample_rate)
    samples = np.zeros(window.n_frames * spf, np.float32)
    if audio is not None:
        samples[: available * spf] = audio[start * spf : (start + available) * spf]
    label = record.label if record is not None else UNKNOWN
    video_label = record.video_label if record is not None else UNKNOWN
    if augment is not None:
        augmented = augment(clip, samples)
        clip, samples = augmented.frames, augmented.audio
        if augmented.forged:
            label = video_label = FAKE
            labels[:available] = FAKE
    return {
        "video_id": record.id if record is not None else video_id,
        "window": number,
        "start_frame": start,
        "padded_frames": padding,
        "frames": clip_preprocess(clip, size=image_size),
        "audio": torch.from_numpy(samples),
        "audio_present": audio is not None,
        "label": label,
        "video_label": video_label,
        "audio_label": record.audio_label if record is not None else UNKNOWN,
        "frame_labels": torch.from_numpy(labels),
        "category": record.category if record is not None else "",
        "method": record.method if record is not None else "",
    }


def cut_windows(
    frames: np.ndarray, audio: np.ndarray | None, clip_frames: int, *, fps: float, sample_rate: int,
    image_size: int, video_id: str,
) -> list[dict[str, Any]]:
    """Every consecutive window of an unlabelled decoded video (the papers' test-time protocol; a video
    shorter than one window gives one padded window), as the training loader's "all" policy cuts them."""
    resized = resize_for_clip(frames, image_size)
    return [
        cut_window(resized, audio, window, fps=fps, sample_rate=sample_rate, image_size=image_size,
                   number=number, video_id=video_id)
        for number, window in enumerate(plan_video_windows(len(frames), clip_frames, "consecutive"))
    ]


#: Stored-frame formats whose frames are evenly spaced groups of consecutive frames, not continuous
#: video: IDForge-v2's `frames_ndarray.npy` holds 16 frames, 4 groups of 4, across the whole shot.
FRAME_GROUPS = {"frames_npy": 4}


def grouped_audio(audio: np.ndarray, n_frames: int, groups: int, fps: float, sample_rate: int) -> np.ndarray:
    """The audio of `n_frames` stored frames that come as `groups` evenly spaced runs of consecutive frames
    across the span `audio` covers: run g (of n_frames / groups frames, n_frames / groups / fps seconds)
    gets the audio of that length centred on (g + 1/2) / groups of the span, zero-padded at the edges.

    The runs are laid end to end, so frame k is paired with samples [k spf, (k + 1) spf) of the result, as
    the samples of continuous video are: each frame group meets its own audio, not the clip's first
    n_frames / fps seconds. (IDForge-v2: 4 groups of 4 frames = 0.16 s of audio each at 25 fps.)
    """
    if groups <= 0 or n_frames % groups:
        raise ValueError(f"{n_frames} frames cannot form {groups} equal groups")
    spf = samples_per_frame(fps, sample_rate)
    span = n_frames // groups * spf
    grouped = np.zeros(n_frames * spf, np.float32)
    for group in range(groups):
        start = round((group + 0.5) * len(audio) / groups) - span // 2
        low, high = max(0, start), min(len(audio), start + span)
        if high > low:
            grouped[group * span + low - start : group * span + high - start] = audio[low:high]
    return grouped


def _aligned(arrays: VideoArrays) -> VideoArrays:
    """Audio on the frames' timeline: for grouped stored frames (`FRAME_GROUPS`) each group's own audio
    span, else cut or zero-padded to exactly the frames' span, with a warning naming the file when it was
    not (decoded videos always match; separately stored audio may not)."""
    if arrays.audio is None:
        return arrays
    groups = FRAME_GROUPS.get(arrays.record.extra.get("format", ""))
    if groups:
        try:
            audio = grouped_audio(arrays.audio, len(arrays.frames), groups, arrays.fps, arrays.sample_rate)
        except ValueError as error:
            raise VideoLoadError(f"{arrays.record.path}: {error}") from None
        return replace(arrays, audio=audio)
    expected = len(arrays.frames) * samples_per_frame(arrays.fps, arrays.sample_rate)
    if len(arrays.audio) == expected:
        return arrays
    log.warning(
        "%s: audio has %d samples, the %d frames span %d; %s to match",
        arrays.record.path, len(arrays.audio), len(arrays.frames), expected,
        "cut" if len(arrays.audio) > expected else "padded with silence",
    )
    fitted = np.zeros(expected, np.float32)
    fitted[: min(expected, len(arrays.audio))] = arrays.audio[:expected]
    return replace(arrays, audio=fitted)
