"""Open media files and read what they contain, turning every way a file can fail into a typed MediaError."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from avforensics.media.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    MissingFileError,
    NotMediaError,
)

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
        return container_info(container, path)


def container_info(
    container: av.container.InputContainer, path: str | Path, *, read_rotation: bool = True
) -> MediaInfo:
    """What an open container holds. Without `read_rotation` nothing is decoded (a live stream cannot be
    rewound after its first frame); rotation is then 0 here, and decoding still turns each frame upright."""
    if not container.streams.video and not container.streams.audio:
        raise NotMediaError(path, f"no audio or video stream (FFmpeg reads it as '{container.format.name}')")
    duration = container.duration / av.time_base if container.duration else None
    info = MediaInfo(
        str(path), False, bool(container.streams.audio), duration, None, None, None, 0, None, None, None
    )
    if container.streams.audio:
        audio = _codec(container.streams.audio[0], Path(path))
        info = dataclasses.replace(info, sample_rate=audio.sample_rate, channels=audio.channels)
    if container.streams.video:
        info = _probe_video(container, Path(path), info, read_rotation)
    return info


def declared_end(stream: av.stream.Stream) -> Fraction | None:
    """Presentation end time of a stream according to its header, when the container stores one."""
    if not stream.duration or stream.start_time is None:
        return None
    return Fraction(stream.start_time + stream.duration) * stream.time_base


def _probe_video(
    container: av.container.InputContainer, path: Path, info: MediaInfo, read_rotation: bool
) -> MediaInfo:
    stream = container.streams.video[0]
    average, base = stream.average_rate, stream.base_rate
    vfr = None
    if average and base:
        vfr = abs(float(average) - float(base)) > 0.01 * float(base)
    codec = _codec(stream, path)
    rotation = _first_frame_rotation(container, path) if read_rotation else 0
    width, height = codec.width, codec.height
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


def _first_frame_rotation(container: av.container.InputContainer, path: Path) -> int:
    try:
        first = next(container.decode(container.streams.video[0]), None)
    except av.error.FFmpegError as error:
        raise CorruptMediaError(
            path,
            f"the first video frame cannot be decoded (damaged or truncated file): {error.strerror or error}",
        ) from error
    if first is None:
        raise CorruptMediaError(path, "the video stream has no decodable frames")
    return round(first.rotation / 90) * 90 % 360


def _codec(stream: av.stream.Stream, path: Path) -> av.codec.context.CodecContext:
    """The stream's decoder; PyAV gives none when FFmpeg has no decoder for the codec the header names."""
    if stream.codec_context is None:
        raise CorruptMediaError(
            path,
            f"FFmpeg has no decoder for the {stream.type} stream's codec (a damaged header or an unsupported "
            "codec)",
        )
    return stream.codec_context


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
