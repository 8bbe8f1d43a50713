"""The decoding engine: one pass over a file's packets, placing video and audio on one output timeline.

Output frame k is the source frame on screen at origin + k/fps (the nearest earlier source frame, so
frames are duplicated or dropped as FFmpeg's fps filter does); audio sample k * sample_rate / fps is the
sound at that same instant, placed by the audio stream's own timestamps and resampled with soxr. Rotation
metadata is applied so frames come out upright. `decode.py` builds the public API on this engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr
from av.video.reformatter import VideoReformatter

from avforensics.media.errors import CorruptMediaError, MediaFlags
from avforensics.media.probe import MediaInfo, declared_end, open_media

_AV_TIME_BASE = Fraction(1, av.time_base)
GAP_TOLERANCE = 0.001  # seconds of audio timestamp jitter accepted without a warning
_TIMESTAMP_SLACK = 10  # seconds audio may start past the file's declared end before it counts as damaged
_TRUNCATION_TOLERANCE = 0.25  # seconds a file may end before its declared duration (codec padding, rounding)


class TimelineSource:
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
        flags: MediaFlags,
        threads: int = 0,
    ) -> None:
        """`threads`: FFmpeg's video decoding threads (0: its choice, one per core)."""
        self.path, self.info, self.flags, self.threads = path, info, flags, threads
        self.start = Fraction(start).limit_denominator(1_000_000)
        self.duration = Fraction(duration).limit_denominator(1_000_000) if duration is not None else None
        self.fps, self.sample_rate, self.max_side = fps, sample_rate, max_side
        self.picker: FramePicker | None = None

    def measured_vfr(self) -> bool | None:
        return self.picker.is_variable() if self.picker else None

    def events(self) -> Iterator[tuple[str, np.ndarray]]:
        with open_media(self.path) as container:
            yield from self.container_events(container)

    def container_events(
        self, container: av.container.InputContainer, *, live: bool = False
    ) -> Iterator[tuple[str, np.ndarray]]:
        """The events of an open container: a file, or a live stream (`live=True`), which declares no
        duration: its end is neither checked for truncation nor used to bound audio timestamps."""
        zero = Fraction(container.start_time or 0) * _AV_TIME_BASE
        origin = zero + self.start
        end = origin + self.duration if self.duration is not None else None
        video = container.streams.video[0] if self.info.has_video else None
        audio = container.streams.audio[0] if self.info.has_audio else None
        if video is not None:
            video.thread_type = "AUTO"
            video.codec_context.thread_count = self.threads
            convert = FrameConverter(self.max_side, self.flags)
            source_fps = Fraction(self.info.fps).limit_denominator(1001) if self.info.fps else self.fps
            self.picker = FramePicker(origin, end, self.fps, source_fps, convert, self.flags)
        aligner = None
        if audio is not None:
            horizon = None if live else latest_declared_end(container)
            aligner = AudioAligner(origin, end, self.sample_rate, self.path, self.flags, horizon)
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
        if reached_eof and not live:
            stream_end = max(
                self.picker.last_end if self.picker else 0, aligner.last_end if aligner else 0
            )
            self._check_complete(container, [s for s in (video, audio) if s is not None], stream_end)
        if self.picker is not None:
            yield from (("video", image) for image in self.picker.finish(declared_end(video)))
        if aligner is not None:
            yield from (("audio", chunk) for chunk in aligner.finish())

    def _frames(
        self, container: av.container.InputContainer, streams: list[av.stream.Stream]
    ) -> Iterator[av.VideoFrame | av.AudioFrame]:
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

    def _check_complete(
        self, container: av.container.InputContainer, streams: list[av.stream.Stream], decoded_end: Fraction
    ) -> None:
        """Raise if decoding ended well before the declared end of the decoded streams (a truncated file).

        Per-stream durations are used where the container stores them, so a longer subtitle or data track
        does not count; otherwise the container's duration.
        """
        zero = Fraction(container.start_time or 0, av.time_base)
        ends = [end for end in map(declared_end, streams) if end is not None]
        if ends:
            declared = max(ends)
        elif container.duration:
            declared = zero + Fraction(container.duration, av.time_base)
        else:
            return
        if decoded_end < declared - _TRUNCATION_TOLERANCE:
            raise CorruptMediaError(
                self.path,
                f"truncated: the streams end at {float(decoded_end - zero):.2f} s but the container declares "
                f"{float(declared - zero):.2f} s",
            )


def latest_declared_end(container: av.container.InputContainer) -> Fraction | None:
    """The latest end any stream header or the container declares, on the container's timeline."""
    ends = [end for end in map(declared_end, container.streams) if end is not None]
    if container.duration:
        zero = Fraction(container.start_time or 0, av.time_base)
        ends.append(zero + Fraction(container.duration, av.time_base))
    return max(ends, default=None)


class FramePicker:
    """Resamples to a constant rate by timestamp: output frame k shows the latest source frame at or before
    origin + k/fps (duplicating or dropping source frames), converting each chosen source frame once."""

    def __init__(
        self,
        origin: Fraction,
        end: Fraction | None,
        fps: Fraction,
        source_fps: Fraction,
        convert: FrameConverter,
        flags: MediaFlags,
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


class FrameConverter:
    """Decoded frame -> upright RGB uint8 array, scaled (area-averaged) so the longer side <= max_side."""

    def __init__(self, max_side: int | None, flags: MediaFlags) -> None:
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


class AudioAligner:
    """Places decoded audio on the output timeline by its timestamps: downmix to mono, fill late starts and
    gaps with silence, drop overlaps, and resample with soxr (very high quality, anti-aliased)."""

    def __init__(
        self,
        origin: Fraction,
        end: Fraction | None,
        sample_rate: int,
        path: Path,
        flags: MediaFlags,
        horizon: Fraction | None = None,
    ) -> None:
        self.origin, self.sample_rate, self.path, self.flags = origin, sample_rate, path, flags
        self.horizon = horizon  # the file's declared end: audio timestamped far past it is damaged
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
        samples = to_mono(frame)
        if frame.pts is not None:
            start_time = Fraction(frame.pts) * frame.time_base
            if self.horizon is not None and start_time > self.horizon + _TIMESTAMP_SLACK:
                # Filling the gap up to such a timestamp with silence could take gigabytes.
                raise CorruptMediaError(
                    self.path,
                    f"damaged audio timestamps: a frame at {float(start_time):.1f} s, past the declared end "
                    f"of {float(self.horizon):.1f} s",
                )
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
        slack = max(precision, GAP_TOLERANCE * self.in_rate)
        seconds = abs(gap) / self.in_rate
        if self.fed > 0 and abs(gap) <= slack:
            return samples
        if gap > 0:
            if self.fed == 0 and seconds > GAP_TOLERANCE:
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


def to_mono(frame: av.AudioFrame) -> np.ndarray:
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
