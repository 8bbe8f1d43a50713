"""Write videos with PyAV: used by the synthetic corpus, test fixtures and timeline renders.

Frames are RGB uint8 (T, H, W, 3); audio is float32 in [-1, 1], shape (N,) mono or (C, N) multi-channel.
Video and audio packets are interleaved as they are encoded, so long files are written in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

_AUDIO_CHUNK = 1024  # samples per audio frame handed to the encoder (AAC's frame size)
_VFR_TIME_BASE = Fraction(1, 90000)


def write_video(
    path: str | Path | BinaryIO,
    frames: np.ndarray | Iterable[np.ndarray] | None,
    fps: float | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    *,
    size: tuple[int, int] | None = None,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    crf: float = 20,
    preset: str = "veryfast",
    frame_times: np.ndarray | None = None,
    rotation: int = 0,
    audio_start: float = 0.0,
    faststart: bool = False,
    threads: int = 0,
    reproducible: bool = False,
    container_format: str | None = None,
) -> Path | BinaryIO:
    """Encode frames and/or audio into one container (format from the suffix: .mp4, .mkv, .mov, .wav...).

    `frames` may be an array or an iterable of (H, W, 3) images (then `size` = (width, height) is required),
    so a long video never has to be held in memory. `frame_times` (seconds, increasing) gives each frame its
    own timestamp, for variable-frame-rate files. `rotation` stores display-matrix metadata (degrees
    counter-clockwise, as phones record portrait video) without touching the pixels; `audio_start` (seconds)
    delays the audio track's timestamps, as in files whose sound starts after the picture. `faststart`
    moves an MP4's index to the front (as web uploads are), so players can start before the whole file.
    `threads` sets x264's thread count (0: the encoder chooses); 1 keeps parallel workers from
    oversubscribing the cores. Even single-threaded, libx264's default output varies in a few macroblocks
    from run to run (its macroblock tree); `reproducible` turns that off (`mbtree=0`) with one thread, so the
    same frames give the same bytes. Without the tree a given CRF spends more bits: raise it to compensate.
    `path` may be a writable binary file object (an in-memory round trip); `container_format` then names
    the format (e.g. "mp4").
    """
    path = path if hasattr(path, "write") else Path(path)  # type: ignore[arg-type]
    if frames is None and audio is None:
        raise ValueError(f"{path}: nothing to write (no frames and no audio)")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        audio = audio[None, :] if audio.ndim == 1 else audio
    options = {"movflags": "+faststart"} if faststart else {}
    target = path if hasattr(path, "write") else str(path)
    with av.open(target, mode="w", format=container_format, options=options) as container:
        video_stream = audio_stream = None
        if frames is not None:
            if size is None:
                frames = np.asarray(frames, dtype=np.uint8)
                size = (frames.shape[2], frames.shape[1])
            x264 = {"crf": str(crf), "preset": preset}
            x264 |= {"threads": "1", "x264-params": "mbtree=0"} if reproducible else {}
            x264 |= {"threads": str(threads)} if threads and not reproducible else {}
            video_stream = _video_stream(container, size, fps, video_codec, x264, frame_times)
            if rotation:
                video_stream.set_display_rotation(rotation)
        if audio is not None:
            audio_stream = _audio_stream(container, audio.shape[0], sample_rate, audio_codec)
        audio_offset = round(audio_start * sample_rate)
        audio_chunks = (
            _audio_frames(audio, sample_rate, audio_codec, audio_offset) if audio is not None else iter(())
        )
        audio_done = 0.0
        if video_stream is not None:
            for index, image in enumerate(frames):
                frame = _video_frame(image, video_stream, index, frame_times)
                container.mux(video_stream.encode(frame))
                now = frame_times[index] if frame_times is not None else index / float(fps)
                while audio_stream is not None and audio_done <= now:
                    chunk = next(audio_chunks, None)
                    if chunk is None:
                        break
                    container.mux(audio_stream.encode(chunk))
                    audio_done = (chunk.pts + chunk.samples - audio_offset) / sample_rate
            container.mux(video_stream.encode())
        if audio_stream is not None:
            for chunk in audio_chunks:
                container.mux(audio_stream.encode(chunk))
            container.mux(audio_stream.encode())
    return path


def _video_stream(
    container: av.container.OutputContainer,
    size: tuple[int, int],
    fps: float | Fraction,
    codec: str,
    x264_options: dict[str, str],
    frame_times: np.ndarray | None,
) -> av.video.stream.VideoStream:
    width, height = size
    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = width - width % 2, height - height % 2
    stream.pix_fmt = "yuv420p"
    if codec == "libx264":
        stream.options = x264_options
    if frame_times is not None:
        stream.codec_context.time_base = _VFR_TIME_BASE
    return stream


def _video_frame(
    image: np.ndarray, stream: av.video.stream.VideoStream, index: int, frame_times: np.ndarray | None
) -> av.VideoFrame:
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"frame {index} must be (H, W, 3) uint8, got {image.shape}")
    frame = av.VideoFrame.from_ndarray(
        np.ascontiguousarray(image[: stream.height, : stream.width]), format="rgb24"
    )
    if frame_times is not None:
        frame.pts = round(float(frame_times[index]) / _VFR_TIME_BASE)
        frame.time_base = _VFR_TIME_BASE
    return frame


def _audio_stream(
    container: av.container.OutputContainer, channels: int, sample_rate: int, codec: str
) -> av.audio.stream.AudioStream:
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        raise ValueError(f"audio must have 1 or 2 channels, got {channels}")
    return container.add_stream(codec, rate=sample_rate, layout=layout)


def _audio_frames(audio: np.ndarray, sample_rate: int, codec: str, offset: int) -> Iterator[av.AudioFrame]:
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    planar = codec in ("aac", "libopus", "libvorbis", "mp3", "libmp3lame")
    for start in range(0, audio.shape[1], _AUDIO_CHUNK):
        chunk = np.clip(audio[:, start : start + _AUDIO_CHUNK], -1.0, 1.0)
        if codec.startswith("pcm_s16"):
            data, audio_format = (chunk.T.reshape(1, -1) * 32767).astype(np.int16), "s16"
        elif planar:
            data, audio_format = np.ascontiguousarray(chunk), "fltp"
        else:
            data, audio_format = np.ascontiguousarray(chunk.T.reshape(1, -1)), "flt"
        frame = av.AudioFrame.from_ndarray(data, format=audio_format, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = offset + start
        frame.time_base = Fraction(1, sample_rate)
        yield frame
