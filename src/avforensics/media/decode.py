"""Decode any video FFmpeg reads into frames at a constant frame rate and mono audio at one sample rate.

One timeline for everything: zero is the start of the container's presentation, frame k <-> time k/fps
<-> audio sample k * sample_rate / fps (see timeline.py for how each stream is placed on it).
`decode()` loads a span into memory; `iter_windows()` streams a file of any length in one pass with
bounded memory. docs/media.md gives the full semantics.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from avforensics.media.clips import samples_per_frame
from avforensics.media.errors import (
    MediaFlags,
    MediaTooLongError,
    MediaTooShortError,
    NoAudioStreamError,
    NoVideoStreamError,
)
from avforensics.media.probe import MediaInfo, probe
from avforensics.media.timeline import GAP_TOLERANCE, TimelineSource

__all__ = ["AVWindow", "DecodedVideo", "MediaInfo", "assemble_windows", "decode", "iter_windows", "probe"]


@dataclass
class DecodedVideo:
    """A decoded span: frame k <-> time start + k/fps <-> audio sample k * sample_rate / fps."""

    path: str
    frames: np.ndarray | None  # (T, H, W, 3) uint8 RGB; None only for audio-only files (require_video=False)
    audio: np.ndarray | None  # (T * sample_rate / fps,) float32 mono, or None when there is no audio track
    audio_present: bool
    fps: float
    sample_rate: int
    start: float
    info: MediaInfo
    warnings: list[str]


@dataclass
class AVWindow:
    """One streamed window: `frames` and the `audio` samples covering exactly the same time span."""

    index: int
    start_frame: int
    frames: np.ndarray  # (frames_per_window, H, W, 3) uint8
    audio: np.ndarray | None  # (frames_per_window * samples_per_frame,) float32, None without audio track
    start_time: float
    end_time: float
    n_valid: int  # real frames; fewer than frames_per_window only in a last window (partial "pad"/"keep")


def decode(
    path: str | Path,
    fps: float = 25,
    sample_rate: int = 16000,
    *,
    start: float = 0.0,
    duration: float | None = None,
    max_side: int | None = None,
    require_audio: bool = False,
    require_video: bool = True,
    max_duration: float = 600.0,
) -> DecodedVideo:
    """Load `duration` s from `start` (default: to the end) as frames at `fps` and audio at `sample_rate`.

    Frames are downsized during decoding so their longer side is at most `max_side`. More than
    `max_duration` seconds raises MediaTooLongError: use `iter_windows()` for long videos.
    """
    spf = samples_per_frame(fps, sample_rate)
    if start < 0 or (duration is not None and duration <= 0):
        raise ValueError(f"start must be >= 0 and duration > 0, got start={start}, duration={duration}")
    info = probe(path)
    _check_streams(info, require_audio, require_video)
    span = duration if duration is not None else (info.duration - start if info.duration else None)
    if span is not None and span > max_duration:
        raise _too_long(path, span, max_duration)
    flags = _flags_for(path, info)
    source = TimelineSource(Path(path), info, Fraction(fps), sample_rate, start, duration, max_side, flags)
    frames = _FrameStack(round(span * fps) + 1 if span is not None else 1)
    audio: list[np.ndarray] = []
    max_frames = int(max_duration * fps) + 1
    for kind, data in source.events():
        if kind == "audio":
            audio.append(data)
        else:
            frames.append(data)
            if len(frames) > max_frames:
                raise _too_long(path, len(frames) / fps, max_duration)
    info = dataclasses.replace(info, is_variable_frame_rate=source.measured_vfr())
    if not info.has_video:
        # Audio-only: the declared duration is exact, and excludes the codec's padding at the end.
        samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        if span is not None:
            n_samples = round(span * sample_rate)
            samples = _fit_audio(samples, n_samples, sample_rate, flags, "its declared duration")
        return DecodedVideo(
            str(path), None, samples, True, float(fps), sample_rate, start, info, flags.messages
        )
    if not frames:
        raise MediaTooShortError(path, f"no video frames at or after start={start:.2f} s")
    samples = None
    if info.has_audio:
        samples = _fit_audio(
            np.concatenate(audio) if audio else np.zeros(0, np.float32), len(frames) * spf, sample_rate, flags
        )
    return DecodedVideo(
        str(path),
        frames.array(),
        samples,
        info.has_audio,
        float(fps),
        sample_rate,
        start,
        info,
        flags.messages,
    )


def iter_windows(
    path: str | Path,
    frames_per_window: int = 16,
    hop: int | None = None,
    fps: float = 25,
    sample_rate: int = 16000,
    max_side: int | None = None,
    *,
    partial: Literal["drop", "pad", "keep"] = "drop",
    require_audio: bool = False,
    threads: int = 0,
) -> Iterator[AVWindow]:
    """Stream a video of any length as windows of `frames_per_window` frames every `hop` frames, in one pass.

    Memory stays bounded by a few windows whatever the length. A last window with fewer frames is dropped
    (partial="drop", the default, matching the consecutive test protocol) or filled by repeating the last
    frame and zero audio (partial="pad", `n_valid` tells how many frames are real) or kept short
    (partial="keep": only its `n_valid` real frames and their audio, for callers that cut the window
    further and need no padding copied); in each case a
    MediaWarning says so. A video shorter than one window raises MediaTooShortError under "drop".
    `threads` bounds FFmpeg's decoding threads (0: one per core), for processes that share the cores.
    """
    samples_per_frame(fps, sample_rate)  # raises unless a whole number of samples per frame
    hop = hop or frames_per_window
    if frames_per_window <= 0 or hop <= 0:
        raise ValueError(f"frames_per_window ({frames_per_window}) and hop ({hop}) must be positive")
    if partial not in ("drop", "pad", "keep"):
        raise ValueError(f"partial must be 'drop', 'pad' or 'keep', got {partial!r}")
    info = probe(path)
    _check_streams(info, require_audio, require_video=True)
    flags = _flags_for(path, info)
    source = TimelineSource(
        Path(path), info, Fraction(fps), sample_rate, 0.0, None, max_side, flags, threads
    )
    yield from assemble_windows(
        source.events(), frames_per_window, hop, fps, sample_rate, info.has_audio, partial, flags
    )


def assemble_windows(
    events: Iterable[tuple[str, np.ndarray]],
    frames_per_window: int,
    hop: int,
    fps: float,
    sample_rate: int,
    has_audio: bool,
    partial: Literal["drop", "pad", "keep"],
    flags: MediaFlags,
) -> Iterator[AVWindow]:
    """Cut a timeline's ("video", frame) / ("audio", samples) events into windows as each one completes:
    `iter_windows` on a file, and the live sources (media.live) on a stream, share this."""
    assembler = _WindowAssembler(frames_per_window, hop, samples_per_frame(fps, sample_rate), float(fps),
                                 has_audio)
    for kind, data in events:
        assembler.add(kind, data)
        yield from assembler.ready()
    yield from assembler.finish(Path(flags.path), partial, flags)


class _FrameStack:
    """Collects output frames straight into one array sized from the expected count (grown if exceeded):
    no second copy of a whole video at the end, as stacking a list would need."""

    def __init__(self, expected: int) -> None:
        self.expected = max(1, expected)
        self.buffer: np.ndarray | None = None
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, image: np.ndarray) -> None:
        if self.buffer is None:
            self.buffer = _frame_memory(self.expected, image.shape)
        elif self.count == len(self.buffer):
            grown = _frame_memory(len(self.buffer) + max(1, len(self.buffer) // 4), image.shape)
            grown[: self.count] = self.buffer
            self.buffer = grown
        self.buffer[self.count] = image
        self.count += 1

    def array(self) -> np.ndarray:
        """The frames; copied only when the estimate was far too high, so the spare tail is freed."""
        frames = self.buffer[: self.count]
        return frames.copy() if self.count < 0.75 * len(self.buffer) else frames


def _frame_memory(count: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uninitialised uint8 memory for (count, *shape) frames, on ordinary pages, mapped in one go.

    numpy asks Linux for transparent huge pages on large arrays; with the common `defrag=madvise` setting
    the kernel then compacts memory synchronously as the pages are first written, which made decode() of
    720p video spend more CPU time in the kernel than in decoding. Ordinary pages cost what the plain PyAV
    loop pays (measured in benchmarks/bench_decode.py); populating them at mapping time takes one kernel
    call instead of a page fault per 4 KiB, a third less time for each 720p window.
    """
    no_huge_pages = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if no_huge_pages is None:
        return np.empty((count, *shape), np.uint8)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    memory = mmap.mmap(-1, count * math.prod(shape), flags=flags)
    memory.madvise(no_huge_pages)
    return np.frombuffer(memory, np.uint8).reshape(count, *shape)


class _WindowAssembler:
    """Buffers streamed frames and samples and cuts them into windows as soon as each one is complete."""

    def __init__(self, frames_per_window: int, hop: int, spf: int, fps: float, has_audio: bool) -> None:
        self.size, self.hop, self.spf, self.fps, self.has_audio = frames_per_window, hop, spf, fps, has_audio
        self.frames: list[np.ndarray] = []
        self.frame_base = 0  # output frame index of self.frames[0]
        self.audio = np.zeros(0, np.float32)
        self.audio_base = 0  # output sample index of self.audio[0]
        self.audio_chunks: list[np.ndarray] = []  # arrived after self.audio, joined when a window is cut
        self.audio_length = 0  # samples in self.audio and self.audio_chunks
        self.index = 0

    def add(self, kind: str, data: np.ndarray) -> None:
        if kind == "video":
            self.frames.append(data)
        else:
            # Joined only when needed: appending to one array would copy it once per decoded audio frame.
            self.audio_chunks.append(data)
            self.audio_length += len(data)

    def ready(self) -> Iterator[AVWindow]:
        while self._frames_available() >= self.size and (
            not self.has_audio or self._audio_available() >= self.size * self.spf
        ):
            yield self._cut(self.size)

    def finish(self, path: Path, partial: str, flags: MediaFlags) -> Iterator[AVWindow]:
        if self.has_audio and self._frames_available() >= self.size:
            missing = self.size * self.spf - self._audio_available()
            flags.add(
                f"audio ends {missing / self.spf / self.fps:.3f} s before the video; padded with silence"
            )
        while self._frames_available() >= self.size:
            yield self._cut(self.size)
        remaining = self._frames_available()
        if remaining <= 0:
            return
        if partial == "drop":
            if self.index == 0:
                raise MediaTooShortError(
                    path,
                    f"video has {remaining} frames, shorter than one window of "
                    f"{self.size} frames ({self.size / self.fps:.2f} s)",
                )
            flags.add(
                f"last {remaining} frames ({remaining / self.fps:.2f} s) do not fill a window and were "
                "dropped"
            )
        elif partial == "keep":
            flags.add(f"last window has {remaining} real frames of {self.size}; kept short")
            yield self._cut(remaining, pad=False)
        else:
            flags.add(
                f"last window has {remaining} real frames of {self.size}; padded by repeating the last "
                "frame and with silent audio"
            )
            yield self._cut(remaining)

    def _frames_available(self) -> int:
        return self.frame_base + len(self.frames) - self.index * self.hop

    def _audio_available(self) -> int:
        return self.audio_base + self.audio_length - self.index * self.hop * self.spf

    def _joined_audio(self) -> np.ndarray:
        if self.audio_chunks:
            self.audio = np.concatenate([self.audio, *self.audio_chunks])
            self.audio_chunks = []
        return self.audio

    def _cut(self, n_valid: int, pad: bool = True) -> AVWindow:
        start = self.index * self.hop
        offset = start - self.frame_base
        length = self.size if pad else n_valid
        frames = self.frames[offset : offset + n_valid]
        frames = frames + [frames[-1]] * (length - n_valid)
        stacked = np.stack(frames, out=_frame_memory(length, frames[0].shape))
        audio = None
        if self.has_audio:
            begin = start * self.spf - self.audio_base
            audio = self._joined_audio()[begin : begin + length * self.spf]
            audio = np.pad(audio, (0, length * self.spf - len(audio)))
        window = AVWindow(
            self.index,
            start,
            stacked,
            audio,
            start / self.fps,
            (start + self.size) / self.fps,
            n_valid,
        )
        self.index += 1
        self._release(self.index * self.hop)
        return window

    def _release(self, next_start: int) -> None:
        """Forget frames and samples before the next window's start, keeping memory bounded."""
        drop = min(max(0, next_start - self.frame_base), len(self.frames))
        del self.frames[:drop]
        self.frame_base += drop
        drop_samples = min(max(0, next_start * self.spf - self.audio_base), self.audio_length)
        self.audio = self._joined_audio()[drop_samples:]
        self.audio_length -= drop_samples
        self.audio_base += drop_samples


def _fit_audio(
    audio: np.ndarray, n_samples: int, sample_rate: int, flags: MediaFlags, reference: str = "the video"
) -> np.ndarray:
    """Make the audio exactly `n_samples` long: trim the excess, pad a short track with silence."""
    if len(audio) < n_samples:
        missing = n_samples - len(audio)
        if missing / sample_rate > GAP_TOLERANCE:
            flags.add(f"audio ends {missing / sample_rate:.3f} s before {reference}; padded with silence")
        return np.pad(audio, (0, missing))
    return audio[:n_samples]


def _flags_for(path: str | Path, info: MediaInfo) -> MediaFlags:
    flags = MediaFlags(path)
    if not info.has_audio:
        flags.add("no audio stream; audio is None")
    return flags


def _check_streams(info: MediaInfo, require_audio: bool, require_video: bool) -> None:
    if require_video and not info.has_video:
        raise NoVideoStreamError(
            info.path, "no video stream (audio-only file); pass require_video=False to decode its audio"
        )
    if require_audio and not info.has_audio:
        raise NoAudioStreamError(info.path, "no audio stream")


def _too_long(path: str | Path, seconds: float, max_duration: float) -> MediaTooLongError:
    return MediaTooLongError(
        path,
        f"asked to load {seconds:.1f} s into memory, more than max_duration={max_duration:.0f} s; use "
        "iter_windows() to stream it in bounded memory, or raise max_duration",
    )
