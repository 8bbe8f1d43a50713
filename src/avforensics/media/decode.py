"""Decode any video FFmpeg reads into frames at a constant frame rate and mono audio at one sample rate.

One timeline for everything: zero is the start of the container's presentation; output frame k is the
source frame on screen at time k/fps (the nearest earlier source frame, so frames are duplicated or dropped
as FFmpeg's fps filter does), and audio sample k * sample_rate / fps is the sound at that same instant,
placed by the audio stream's own timestamps. Rotation metadata is applied so frames come out upright.
`decode()` loads a span into memory; `iter_windows()` streams a file of any length in one pass. See
docs/media.md for the full semantics.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import soxr
from av.video.reformatter import VideoReformatter

from avforensics.media.clips import samples_per_frame
from avforensics.media.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    MediaTooLongError,
    MediaTooShortError,
    MediaWarning,
    MissingFileError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
)

_AV_TIME_BASE = Fraction(1, av.time_base)
_GAP_TOLERANCE = 0.001  # seconds of audio timestamp jitter accepted without a warning
_TRUNCATION_TOLERANCE = 0.25  # seconds a file may end before its declared duration (codec padding, rounding)
# Leading bytes of containers FFmpeg reads: a file that starts like one of these but does not open is damaged.
_SIGNATURES = (
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "RIFF (AVI/WAV)"),
    (0, b"OggS", "Ogg"),
    (0, b"FLV\x01", "FLV"),
    (0, b"ID3", "MP3"),
    (0, b"fLaC", "FLAC"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream"),
)


@dataclass(frozen=True)
class MediaInfo:
    """What a file contains, read from its headers (and its first video frame, for rotation)."""

    path: str
    has_video: bool
    has_audio: bool
    duration: float | None  # seconds, as the container declares it
    fps: float | None  # source average frame rate
    width: int | None  # as displayed, i.e. after rotation
    height: int | None
    rotation: int  # degrees counter-clockwise the stored picture is turned for display: 0, 90, 180 or 270
    sample_rate: int | None
    channels: int | None
    is_variable_frame_rate: bool | None  # None when the headers cannot tell; decode() measures it


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
    n_valid: int  # real frames; fewer than len(frames) only in a padded last window (partial="pad")


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open a file for reading, turning every way it can fail into a typed MediaError."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "file does not exist")
    if not path.is_file():
        raise NotMediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyFileError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise _open_failure(path, error) from error


def probe(path: str | Path) -> MediaInfo:
    """Read what a file contains without decoding it (only its first video frame, to read the rotation)."""
    with open_media(path) as container:
        if not container.streams.video and not container.streams.audio:
            raise NotMediaError(
                path, f"no audio or video stream (FFmpeg reads it as '{container.format.name}')"
            )
        duration = container.duration / av.time_base if container.duration else None
        info = MediaInfo(
            str(path), False, bool(container.streams.audio), duration, None, None, None, 0, None, None, None
        )
        if container.streams.audio:
            audio = container.streams.audio[0].codec_context
            info = dataclasses.replace(info, sample_rate=audio.sample_rate, channels=audio.channels)
        if container.streams.video:
            info = _probe_video(container, Path(path), info)
        return info


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
    info = probe(path)
    _check_streams(info, require_audio, require_video)
    span = duration if duration is not None else (info.duration - start if info.duration else None)
    if span is not None and span > max_duration:
        raise _too_long(path, span, max_duration)
    flags = _Flags(str(path), info)
    source = _Source(Path(path), info, Fraction(fps), sample_rate, start, duration, max_side, flags)
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
    partial: Literal["drop", "pad"] = "drop",
    require_audio: bool = False,
) -> Iterator[AVWindow]:
    """Stream a video of any length as windows of `frames_per_window` frames every `hop` frames, in one pass.

    Memory stays bounded by a few windows whatever the length. A last window with fewer frames is dropped
    (partial="drop", the default, matching the consecutive test protocol) or filled by repeating the last
    frame and zero audio (partial="pad", `n_valid` tells how many frames are real); either way a
    MediaWarning says so. A video shorter than one window raises MediaTooShortError under "drop".
    """
    spf = samples_per_frame(fps, sample_rate)
    hop = hop or frames_per_window
    if frames_per_window <= 0 or hop <= 0:
        raise ValueError(f"frames_per_window ({frames_per_window}) and hop ({hop}) must be positive")
    if partial not in ("drop", "pad"):
        raise ValueError(f"partial must be 'drop' or 'pad', got {partial!r}")
    info = probe(path)
    _check_streams(info, require_audio, require_video=True)
    flags = _Flags(str(path), info)
    source = _Source(Path(path), info, Fraction(fps), sample_rate, 0.0, None, max_side, flags)
    assembler = _WindowAssembler(frames_per_window, hop, spf, float(fps), info.has_audio)
    for kind, data in source.events():
        assembler.add(kind, data)
        yield from assembler.ready()
    yield from assembler.finish(Path(path), partial, flags)


class _Flags:
    """Collects the warnings of one file and also issues them as MediaWarning, naming the file."""

    def __init__(self, path: str, info: MediaInfo) -> None:
        self.path = path
        self.messages: list[str] = []
        if not info.has_audio:
            self.add("no audio stream; audio is None")

    def add(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(f"{self.path}: {message}", MediaWarning, stacklevel=4)


class _Source:
    """One pass over a file's packets, yielding ("video", frame) and ("audio", samples) on the output grid.

    Video events are consecutive output frames from frame 0; audio events are consecutive chunks of output
    samples from sample 0, both counted from `start` on the container's timeline.
    """

    def __init__(
        self,
        path: Path,
        info: MediaInfo,
        fps: Fraction,
        sample_rate: int,
        start: float,
        duration: float | None,
        max_side: int | None,
        flags: _Flags,
    ) -> None:
        self.path, self.info, self.flags = path, info, flags
        self.start = Fraction(start).limit_denominator(1_000_000)
        self.duration = Fraction(duration).limit_denominator(1_000_000) if duration is not None else None
        self.fps, self.sample_rate, self.max_side = fps, sample_rate, max_side
        self.picker: _FramePicker | None = None

    def measured_vfr(self) -> bool | None:
        return self.picker.is_variable() if self.picker else None

    def events(self) -> Iterator[tuple[str, np.ndarray]]:
        with open_media(self.path) as container:
            zero = Fraction(container.start_time or 0) * _AV_TIME_BASE
            origin = zero + self.start
            end = origin + self.duration if self.duration is not None else None
            video = container.streams.video[0] if self.info.has_video else None
            audio = container.streams.audio[0] if self.info.has_audio else None
            if video is not None:
                video.thread_type = "AUTO"
                convert = _FrameConverter(self.max_side, self.flags)
                source_fps = Fraction(self.info.fps).limit_denominator(1001) if self.info.fps else self.fps
                self.picker = _FramePicker(origin, end, self.fps, source_fps, convert, self.flags)
            aligner = _AudioAligner(origin, end, self.sample_rate, self.path, self.flags) if audio else None
            if self.start > 0:
                container.seek(int(origin / _AV_TIME_BASE), backward=True)
            reached_eof = True
            for frame in self._frames(container, [s for s in (video, audio) if s is not None]):
                if isinstance(frame, av.VideoFrame):
                    yield from (("video", image) for image in self.picker.push(frame))
                else:
                    yield from (("audio", chunk) for chunk in aligner.push(frame))
                if (
                    end is not None
                    and (self.picker is None or self.picker.done)
                    and (aligner is None or aligner.done)
                ):
                    reached_eof = False
                    break
            stream_end = max(self.picker.last_end if self.picker else 0, aligner.last_end if aligner else 0)
            if reached_eof and container.duration:
                self._check_complete(stream_end - zero, Fraction(container.duration) * _AV_TIME_BASE)
            if self.picker is not None:
                yield from (("video", image) for image in self.picker.finish(_declared_end(video)))
            if aligner is not None:
                yield from (("audio", chunk) for chunk in aligner.finish())

    def _frames(self, container, streams) -> Iterator[av.VideoFrame | av.AudioFrame]:
        """Decoded frames in demux order; FFmpeg failures become CorruptMediaError saying where."""
        packet_time = 0.0
        try:
            for packet in container.demux(*streams):
                if packet.pts is not None and packet.time_base is not None:
                    packet_time = float(packet.pts * packet.time_base)
                yield from packet.decode()
        except av.error.FFmpegError as error:
            raise CorruptMediaError(
                self.path, f"decoding failed part-way, near {packet_time:.2f} s: {error.strerror or error}"
            ) from error

    def _check_complete(self, decoded: Fraction, declared: Fraction) -> None:
        if decoded < declared - _TRUNCATION_TOLERANCE:
            raise CorruptMediaError(
                self.path,
                f"truncated: the streams end at {float(decoded):.2f} s but the container declares "
                f"{float(declared):.2f} s",
            )


class _FramePicker:
    """Resamples to a constant rate by timestamp: output frame k shows the latest source frame at or before
    origin + k/fps (duplicating or dropping source frames), converting each chosen source frame once."""

    def __init__(
        self,
        origin: Fraction,
        end: Fraction | None,
        fps: Fraction,
        source_fps: Fraction,
        convert: _FrameConverter,
        flags: _Flags,
    ) -> None:
        self.origin, self.end, self.fps, self.convert, self.flags = origin, end, fps, convert, flags
        self.source_step = 1 / source_fps  # assumed spacing of frames that carry no timestamp
        self.untimed = 0
        self.next_index = 0
        self.pending: av.VideoFrame | None = None
        self.pending_time: Fraction | None = None
        self.last_end = Fraction(0)
        self.min_step: Fraction | None = None
        self.max_step: Fraction | None = None
        self.tick: Fraction = Fraction(0)
        self.out_of_order = 0

    @property
    def done(self) -> bool:
        return self.end is not None and self.pending_time is not None and self.pending_time >= self.end

    def is_variable(self) -> bool | None:
        if self.min_step is None:
            return None
        return self.max_step - self.min_step > max(2 * self.tick, Fraction(1, 500))

    def push(self, frame: av.VideoFrame) -> Iterator[np.ndarray]:
        time = self._time(frame)
        if self.pending_time is not None and time <= self.pending_time:
            self.out_of_order += 1
            if time < self.pending_time:
                return
        elif self.pending_time is not None:
            step = time - self.pending_time
            self.min_step = step if self.min_step is None else min(self.min_step, step)
            self.max_step = step if self.max_step is None else max(self.max_step, step)
            yield from self._emit_until(time)
        elif time > self._output_time(self.next_index):
            self.flags.add(
                f"video starts {float(time - self.origin):.3f} s after the timeline start; "
                "its first frame is repeated to fill the gap"
            )
            self.pending = frame
            yield from self._emit_until(time)
        self.pending, self.pending_time = frame, time
        timed = frame.time_base is not None
        self.tick = frame.time_base if timed else self.tick
        duration = (
            Fraction(frame.duration) * frame.time_base if frame.duration and timed else self.source_step
        )
        self.last_end = max(self.last_end, time + duration)

    def finish(self, declared_end: Fraction | None) -> Iterator[np.ndarray]:
        """Emit the last source frame until the video's end: the end the stream header declares when there
        is one (exact in MP4, where per-frame durations are in decode order), else the last frame's own."""
        if self.pending is not None:
            use_declared = declared_end is not None and declared_end > self.pending_time
            yield from self._emit_until(declared_end if use_declared else self.last_end)
        if self.untimed:
            self.flags.add(
                f"{self.untimed} video frames had no timestamp; placed one source frame interval "
                f"({float(self.source_step):.4f} s) after their predecessor"
            )
        if self.out_of_order:
            self.flags.add(
                f"{self.out_of_order} video frames had timestamps at or before their predecessor's; "
                "backward ones were skipped, of equal ones the later-decoded was kept"
            )

    def _emit_until(self, limit: Fraction) -> Iterator[np.ndarray]:
        image = None
        while self._output_time(self.next_index) < limit and (
            self.end is None or self._output_time(self.next_index) < self.end
        ):
            image = self.convert(self.pending) if image is None else image
            self.next_index += 1
            yield image

    def _output_time(self, index: int) -> Fraction:
        return self.origin + index / self.fps

    def _time(self, frame: av.VideoFrame) -> Fraction:
        if frame.pts is None:
            self.untimed += 1
            return self.pending_time + self.source_step if self.pending_time is not None else self.origin
        return Fraction(frame.pts) * frame.time_base


class _FrameConverter:
    """Decoded frame -> upright RGB uint8 array, scaled (area-averaged) so the longer side <= max_side."""

    def __init__(self, max_side: int | None, flags: _Flags) -> None:
        if max_side is not None and max_side <= 0:
            raise ValueError(f"max_side must be positive, got {max_side}")
        self.max_side, self.flags = max_side, flags
        self.warned_rotation = self.warned_resize = False
        self.size: tuple[int, int] | None = None  # output (width, height) before rotation
        self.source_size: tuple[int, int] | None = None
        # One reformatter for the whole stream: PyAV otherwise builds a new scaler context per frame,
        # which costs more than decoding small frames.
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self.size is None:
            self.size = self._output_size(frame.width, frame.height)
        elif (frame.width, frame.height) != self.source_size and not self.warned_resize:
            self.warned_resize = True
            self.flags.add(
                f"frame size changes mid-stream from {self.source_size[0]}x{self.source_size[1]} to "
                f"{frame.width}x{frame.height}; later frames are scaled to the first frames' size"
            )
        if self.size == (frame.width, frame.height):
            rgb = self.reformatter.reformat(frame, format="rgb24")  # colour conversion only: the fast path
        else:
            # Area averaging when shrinking: no aliasing of fine texture (which detectors look at).
            rgb = self.reformatter.reformat(frame, *self.size, "rgb24", interpolation="AREA")
        image = rgb.to_ndarray()
        turns = self._quarter_turns(frame.rotation)
        return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image

    def _output_size(self, width: int, height: int) -> tuple[int, int]:
        self.source_size = (width, height)
        if self.max_side is None or max(width, height) <= self.max_side:
            return width, height
        scale = self.max_side / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))

    def _quarter_turns(self, rotation: float) -> int:
        turns = round(rotation / 90)
        if abs(rotation - 90 * turns) > 1 and not self.warned_rotation:
            self.warned_rotation = True
            self.flags.add(
                f"rotation metadata of {rotation} degrees is not a multiple of 90; "
                f"rotated by {90 * turns} degrees instead"
            )
        return turns % 4


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
            self.buffer = np.empty((self.expected, *image.shape), np.uint8)
        elif self.count == len(self.buffer):
            extra = np.empty((max(1, len(self.buffer) // 4), *image.shape), np.uint8)
            self.buffer = np.concatenate([self.buffer, extra])
        self.buffer[self.count] = image
        self.count += 1

    def array(self) -> np.ndarray:
        """The frames; copied only when the estimate was far too high, so the spare tail is freed."""
        frames = self.buffer[: self.count]
        return frames.copy() if self.count < 0.75 * len(self.buffer) else frames


class _AudioAligner:
    """Places decoded audio on the output timeline by its timestamps: downmix to mono, fill late starts and
    gaps with silence, drop overlaps, and resample with soxr (very high quality, anti-aliased)."""

    def __init__(
        self, origin: Fraction, end: Fraction | None, sample_rate: int, path: Path, flags: _Flags
    ) -> None:
        self.origin, self.sample_rate, self.path, self.flags = origin, sample_rate, path, flags
        self.limit = round((end - origin) * sample_rate) if end is not None else None
        self.in_rate: int | None = None
        self.resampler: soxr.ResampleStream | None = None
        self.fed = 0  # input samples placed so far, counted from `origin`
        self.emitted = 0  # output samples yielded so far
        self.last_end = Fraction(0)

    @property
    def done(self) -> bool:
        return self.limit is not None and self.emitted >= self.limit

    def push(self, frame: av.AudioFrame) -> Iterator[np.ndarray]:
        if self.in_rate is None:
            self.in_rate = frame.sample_rate
            if self.in_rate != self.sample_rate:
                self.resampler = soxr.ResampleStream(self.in_rate, self.sample_rate, 1, "float32", "VHQ")
        elif frame.sample_rate != self.in_rate:
            raise CorruptMediaError(
                self.path,
                f"audio sample rate changes mid-stream ({self.in_rate} Hz -> {frame.sample_rate} Hz)",
            )
        samples = _to_mono(frame)
        if frame.pts is not None:
            start_time = Fraction(frame.pts) * frame.time_base
            self.last_end = max(self.last_end, start_time + Fraction(frame.samples, self.in_rate))
            position = round((start_time - self.origin) * self.in_rate)
            samples = self._place(samples, position, float(frame.time_base * self.in_rate))
        yield from self._output(samples, last=False)

    def finish(self) -> Iterator[np.ndarray]:
        if self.resampler is not None:
            yield from self._output(np.zeros(0, np.float32), last=True)

    def _place(self, samples: np.ndarray, start: int, precision: float) -> np.ndarray:
        """Pad or trim `samples` (beginning at input sample `start`) to continue exactly at `self.fed`.

        Once audio has started, a mismatch within the timestamps' precision (`precision` samples: one tick
        of the stream's time base, at least 1 ms) is rounding, e.g. Matroska's millisecond timestamps on
        1024-sample frames, and the stream is kept continuous.
        """
        gap = start - self.fed
        slack = max(precision, _GAP_TOLERANCE * self.in_rate)
        seconds = abs(gap) / self.in_rate
        if self.fed > 0 and abs(gap) <= slack:
            return samples
        if gap > 0:
            if self.fed == 0 and seconds > _GAP_TOLERANCE:
                self.flags.add(f"audio starts {seconds:.3f} s after the timeline start; padded with silence")
            elif self.fed > 0:
                at = self.fed / self.in_rate
                self.flags.add(f"gap of {seconds:.3f} s in the audio at {at:.2f} s; filled with silence")
            return np.concatenate([np.zeros(gap, np.float32), samples])
        if gap < 0 and self.fed > 0:
            at = self.fed / self.in_rate
            self.flags.add(f"audio timestamps overlap by {seconds:.3f} s at {at:.2f} s; overlap dropped")
        return samples[-gap:] if gap < 0 else samples

    def _output(self, samples: np.ndarray, last: bool) -> Iterator[np.ndarray]:
        self.fed += len(samples)
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples, last=last)
        if self.limit is not None:
            samples = samples[: max(0, self.limit - self.emitted)]
        if len(samples):
            self.emitted += len(samples)
            yield samples


class _WindowAssembler:
    """Buffers streamed frames and samples and cuts them into windows as soon as each one is complete."""

    def __init__(self, frames_per_window: int, hop: int, spf: int, fps: float, has_audio: bool) -> None:
        self.size, self.hop, self.spf, self.fps, self.has_audio = frames_per_window, hop, spf, fps, has_audio
        self.frames: list[np.ndarray] = []
        self.frame_base = 0  # output frame index of self.frames[0]
        self.audio = np.zeros(0, np.float32)
        self.audio_base = 0  # output sample index of self.audio[0]
        self.index = 0

    def add(self, kind: str, data: np.ndarray) -> None:
        if kind == "video":
            self.frames.append(data)
        else:
            self.audio = np.concatenate([self.audio, data])

    def ready(self) -> Iterator[AVWindow]:
        while self._frames_available() >= self.size and (
            not self.has_audio or self._audio_available() >= self.size * self.spf
        ):
            yield self._cut(self.size)

    def finish(self, path: Path, partial: str, flags: _Flags) -> Iterator[AVWindow]:
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
        else:
            flags.add(
                f"last window has {remaining} real frames of {self.size}; padded by repeating the last "
                "frame and with silent audio"
            )
            yield self._cut(remaining)

    def _frames_available(self) -> int:
        return self.frame_base + len(self.frames) - self.index * self.hop

    def _audio_available(self) -> int:
        return self.audio_base + len(self.audio) - self.index * self.hop * self.spf

    def _cut(self, n_valid: int) -> AVWindow:
        start = self.index * self.hop
        offset = start - self.frame_base
        frames = self.frames[offset : offset + n_valid]
        frames = frames + [frames[-1]] * (self.size - n_valid)
        audio = None
        if self.has_audio:
            begin = start * self.spf - self.audio_base
            audio = self.audio[begin : begin + self.size * self.spf]
            audio = np.pad(audio, (0, self.size * self.spf - len(audio)))
        window = AVWindow(
            self.index,
            start,
            np.stack(frames),
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
        drop_samples = min(max(0, next_start * self.spf - self.audio_base), len(self.audio))
        self.audio = self.audio[drop_samples:]
        self.audio_base += drop_samples


def _to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Any sample format and layout -> float32 mono in [-1, 1] (the mean of the channels)."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if array.dtype == np.uint8:
        array = (array.astype(np.float32) - 128) / 128
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max + 1)
    return array.astype(np.float32).mean(axis=0)


def _declared_end(stream: av.video.stream.VideoStream) -> Fraction | None:
    """Presentation end time of a stream according to its header, when the container stores one."""
    if not stream.duration or stream.start_time is None:
        return None
    return Fraction(stream.start_time + stream.duration) * stream.time_base


def _fit_audio(
    audio: np.ndarray, n_samples: int, sample_rate: int, flags: _Flags, reference: str = "the video"
) -> np.ndarray:
    """Make the audio exactly `n_samples` long: trim the excess, pad a short track with silence."""
    if len(audio) < n_samples:
        missing = n_samples - len(audio)
        if missing / sample_rate > _GAP_TOLERANCE:
            flags.add(f"audio ends {missing / sample_rate:.3f} s before {reference}; padded with silence")
        return np.pad(audio, (0, missing))
    return audio[:n_samples]


def _probe_video(container, path: Path, info: MediaInfo) -> MediaInfo:
    stream = container.streams.video[0]
    average, base = stream.average_rate, stream.base_rate
    vfr = None
    if average and base:
        vfr = abs(float(average) - float(base)) > 0.01 * float(base)
    try:
        first = next(container.decode(stream), None)
    except av.error.FFmpegError as error:
        raise CorruptMediaError(
            path, f"the first video frame cannot be decoded: {error.strerror or error}"
        ) from error
    if first is None:
        raise CorruptMediaError(path, "the video stream has no decodable frames")
    rotation = round(first.rotation / 90) * 90 % 360
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    return dataclasses.replace(
        info,
        has_video=True,
        fps=float(average) if average else None,
        width=width,
        height=height,
        rotation=rotation,
        is_variable_frame_rate=vfr,
    )


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


def _open_failure(path: Path, error: av.error.FFmpegError) -> MediaError:
    with path.open("rb") as handle:
        head = handle.read(16)
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return CorruptMediaError(
                path,
                f"looks like {name} but FFmpeg cannot open it (truncated or damaged: "
                f"{error.strerror or error})",
            )
    return NotMediaError(path, f"not a media file FFmpeg recognises ({error.strerror or error})")
