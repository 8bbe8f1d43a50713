"""Live sources: a stream (stdin pipe, network URL, capture device, a file still being written, or byte chunks
handed over by a caller such as a WebSocket) decoded as it arrives and cut into windows.

    source = parse_source("-")                                # or "udp://127.0.0.1:5000", "growing.ts", ...
    for item in live_windows(source, frames_per_window=16):
        if isinstance(item, AVWindow): ...                     # frames + audio, on one stream clock
        else: ...                                              # a SourceNote: reconnect, partial window

The timeline is the one of `decode`/`iter_windows` (media/timeline.py): frame k at k / fps from the
container's start, audio placed by its timestamps, so a recorded copy of the stream gives the same windows
when read as a file. Only the frames and samples not yet cut into a window are held (bounded memory).
After a reconnect the stream clock continues from the frames already seen; the new connection's own
timestamps restart the grid there.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Literal

import av

from avforensics.media.clips import samples_per_frame
from avforensics.media.decode import AVWindow, assemble_windows
from avforensics.media.errors import MediaError, MediaFlags, NoVideoStreamError
from avforensics.media.probe import container_info
from avforensics.media.timeline import TimelineSource

SourceKind = Literal["stdin", "url", "device", "follow", "chunks"]
URL_SCHEMES = ("udp", "tcp", "rtp", "rtsp", "rtmp", "rtmps", "http", "https", "srt")
# FFmpeg input devices: SOURCE names the device (or, for lavfi, a filter graph generating the stream).
DEVICE_FORMATS = ("v4l2", "video4linux2", "alsa", "pulse", "avfoundation", "dshow", "gdigrab", "x11grab",
                  "kmsgrab", "lavfi")
_PADDED_TAIL = "last window has "


class LiveSourceError(MediaError):
    """A live source that cannot be opened or read, even after the reconnects allowed."""


@dataclass(frozen=True)
class LiveSource:
    """Where a stream comes from. `target`: a URL, device or path string, or a binary file-like object.

    kind: "stdin" (`-`), "url", "device" (FFmpeg input device `format`, e.g. v4l2), "follow" (a file still
    being written, read until it stops growing for `idle_timeout` s), "chunks" (a caller's byte chunks).
    idle_timeout: seconds without data after which a network stream or followed file counts as ended.
    """

    target: Any
    kind: SourceKind
    name: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    idle_timeout: float = 10.0

    @property
    def reconnectable(self) -> bool:
        return self.kind in ("url", "device")


def parse_source(
    spec: str, *, format: str | None = None, idle_timeout: float = 10.0, options: dict[str, str] | None = None
) -> LiveSource:
    """The LiveSource a command-line SOURCE names: `-`, a URL, a device (`format` one of DEVICE_FORMATS),
    or a file path (followed while it grows). Without `format`, FFmpeg probes the container."""
    options = dict(options or {})
    if spec == "-":
        return LiveSource(sys.stdin.buffer, "stdin", "<stdin>", format, options, idle_timeout)
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in URL_SCHEMES:
        return LiveSource(spec, "url", spec, format, options, idle_timeout)
    if format in DEVICE_FORMATS:
        return LiveSource(spec, "device", spec, format, options, idle_timeout)
    if scheme:
        schemes = ", ".join(URL_SCHEMES)
        raise ValueError(f"{spec}: unsupported stream URL scheme {scheme!r}; use one of {schemes}")
    return LiveSource(spec, "follow", spec, format, options, idle_timeout)


def chunk_source(chunks: Iterable[bytes], name: str = "<chunks>", format: str | None = None) -> LiveSource:
    """A LiveSource over byte chunks handed over as they arrive (e.g. from a WebSocket): the iterator may
    block until the next chunk; it ends the stream by stopping."""
    return LiveSource(ChunkReader(chunks), "chunks", name, format)


class ChunkReader(io.RawIOBase):
    """A readable, non-seekable binary file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = bytes(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


class FollowedFile(io.RawIOBase):
    """Reads a file that another process is still writing: at its current end it waits for more bytes, and
    ends once the file has not grown for `idle_timeout` seconds (or has not appeared in that time)."""

    def __init__(self, path: str | Path, idle_timeout: float, poll: float = 0.05) -> None:
        self.path, self.idle_timeout, self.poll = Path(path), idle_timeout, poll
        self._handle: IO[bytes] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        waited_since = time.monotonic()
        while True:
            if self._handle is None and self.path.is_file():
                self._handle = self.path.open("rb")
            if self._handle is not None:
                count = self._handle.readinto(buffer)
                if count:
                    return count
            if time.monotonic() - waited_since >= self.idle_timeout:
                return 0
            time.sleep(self.poll)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        super().close()


@dataclass(frozen=True)
class SourceNote:
    """Something about the stream itself, not a window: kind is "connected", "reconnect", "partial"
    (the stream ended mid-window: `frames` frames not scored), "warning" or "ended"."""

    kind: str
    message: str
    stream_time: float
    frames: int = 0


def open_live(source: LiveSource) -> av.container.InputContainer:
    """Open the source with FFmpeg; failures become LiveSourceError naming the source and the reason."""
    target = source.target
    if source.kind == "follow":
        if not Path(target).is_file():
            _wait_for_file(Path(target), source.idle_timeout)
        target = FollowedFile(target, source.idle_timeout)
    options = dict(source.options)
    timeout = source.idle_timeout if source.kind in ("url", "device") else None
    try:
        return av.open(target, format=source.format, options=options, timeout=timeout,
                       metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise LiveSourceError(source.name, f"cannot open the stream: {error.strerror or error}") from error


def live_windows(
    source: LiveSource,
    frames_per_window: int = 16,
    hop: int | None = None,
    fps: float = 25,
    sample_rate: int = 16000,
    max_side: int | None = None,
    *,
    reconnects: int = 0,
    retry_delay: float = 1.0,
) -> Iterator[AVWindow | SourceNote]:
    """The stream's windows (every `hop` frames, default consecutive) as each one completes, with notes.

    A network or device source that fails to open or breaks off is reopened up to `reconnects` times in a
    row (each attempt is a "reconnect" note; a window in between resets the count). The last note is always
    "ended", saying why: the end of the stream, or the error that ended it. A window cut short by the end
    of a connection is not yielded: a "partial" note says how many frames it had.
    """
    samples_per_frame(fps, sample_rate)
    hop = hop or frames_per_window
    frame_offset = 0  # stream frames of earlier connections
    failures = windows = 0
    while True:
        problem, local_end = None, 0  # local_end: frames of this connection placed on the stream clock
        try:
            with open_live(source) as container:
                yield SourceNote("connected", f"{source.name}: {_describe(container)}", frame_offset / fps)
                for item in _connection_windows(container, source, frames_per_window, hop, fps, sample_rate,
                                                max_side):
                    if isinstance(item, SourceNote):
                        if item.kind == "partial":
                            local_end = round(item.stream_time * fps) + item.frames
                        yield replace(item, stream_time=item.stream_time + frame_offset / fps)
                        continue
                    failures = 0
                    local_end = item.start_frame + item.n_valid
                    yield _shifted(item, frame_offset, fps, windows)
                    windows += 1
        except MediaError as error:
            problem = error.reason
        frame_offset += local_end
        if problem is None:
            yield SourceNote("ended", "end of stream", frame_offset / fps)
            return
        if not source.reconnectable or failures >= reconnects:
            yield SourceNote("ended", f"error: {problem}", frame_offset / fps)
            return
        failures += 1
        message = f"attempt {failures} of {reconnects} after: {problem}"
        yield SourceNote("reconnect", message, frame_offset / fps)
        time.sleep(retry_delay)


def _connection_windows(
    container: av.container.InputContainer,
    source: LiveSource,
    frames_per_window: int,
    hop: int,
    fps: float,
    sample_rate: int,
    max_side: int | None,
) -> Iterator[AVWindow | SourceNote]:
    """Windows of one connection on its own clock (from 0); the padded last one becomes a "partial" note."""
    info = container_info(container, source.name, read_rotation=False)
    if not info.has_video:
        raise NoVideoStreamError(source.name, "the stream has no video track")
    flags = MediaFlags(source.name)
    timeline = TimelineSource(Path(source.name), info, Fraction(fps), sample_rate, 0.0, None, max_side, flags)
    events = timeline.container_events(container, live=True)
    reported = 0
    for window in assemble_windows(events, frames_per_window, hop, fps, sample_rate, info.has_audio, "pad",
                                   flags):
        for message in flags.messages[reported:]:
            if _PADDED_TAIL not in message:
                yield SourceNote("warning", message, window.start_time)
        reported = len(flags.messages)
        if window.n_valid < frames_per_window:
            yield SourceNote(
                "partial",
                f"the stream ended mid-window: {window.n_valid} frame(s) from {window.start_time:.2f} s "
                f"({window.n_valid / fps:.2f} s) do not fill a window of {frames_per_window}; not scored",
                window.start_time,
                window.n_valid,
            )
            return
        yield window


def _shifted(window: AVWindow, frames: int, fps: float, index: int) -> AVWindow:
    """The window of a connection placed on the stream's clock: after `frames` earlier frames, `index`-th."""
    seconds = frames / fps
    return replace(window, index=index, start_frame=window.start_frame + frames,
                   start_time=window.start_time + seconds, end_time=window.end_time + seconds)


def _describe(container: av.container.InputContainer) -> str:
    parts = [container.format.name]
    if container.streams.video:
        video = container.streams.video[0].codec_context
        parts.append(f"video {video.name} {video.width}x{video.height}")
    if container.streams.audio:
        audio = container.streams.audio[0].codec_context
        parts.append(f"audio {audio.name} {audio.sample_rate} Hz")
    else:
        parts.append("no audio")
    return ", ".join(parts)


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() >= deadline:
            raise LiveSourceError(path, f"the file did not appear within {timeout:.0f} s")
        time.sleep(0.05)
