"""How one prepared video is stored in the cache: the format version and its two encodings.

Each video is one .npz holding, besides the crop boxes (T, 4) float32 and face flags (T,) bool:
- "compact" (the default): the face crops as an H.264 stream (libx264, yuv444p, CRF 18) and the audio as
  16-bit FLAC, both in memory. The encoder runs with one thread and without macroblock-tree rate control,
  so the same crops give the same bytes in any process. The crops lose a little (PSNR >= 40 dB against the
  exact ones), the audio is rounded to 16 bits (an error below 2^-15 of full scale).
- "exact": the crops as raw uint8 and the audio as float32, zip-deflated: bit-identical input for tests,
  and the only layout of format 1 (caches made before the compact encoding), so those are still read.

Readers and writers take open binary files, so the cache may live on any file system a caller opens.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import IO, Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter

FORMAT_VERSION = 2  # 1: exact .npz only, no version recorded; 2: the version recorded, compact encoding added
Encoding = Literal["compact", "exact"]
ENCODINGS: tuple[str, ...] = ("compact", "exact")
CRF = 18
_X264_OPTIONS = {"crf": str(CRF), "preset": "medium", "x264-params": "mbtree=0:threads=1"}
_INT16_SCALE = 32768.0
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # np.savez stamps members with the time; a fixed one keeps bytes equal


class CacheFormatError(ValueError):
    """A cache (or one of its files) this version cannot read; the message says which and what to do."""


@dataclass(frozen=True)
class ItemArrays:
    """The arrays of one prepared video."""

    frames: np.ndarray  # (T, S, S, 3) uint8 face crops
    audio: np.ndarray | None  # (N,) float32 at sample_rate, None when the video has no audio
    boxes: np.ndarray  # (T, 4) crop squares in decoded-frame pixels
    face_found: np.ndarray  # (T,) bool
    fps: float
    sample_rate: int


def check_version(version: int, source: str) -> None:
    """Refuse a format newer than this code reads, naming `source` and the way out."""
    if version > FORMAT_VERSION:
        raise CacheFormatError(
            f"{source}: prepared cache format {version}, but this avforensics reads formats "
            f"1-{FORMAT_VERSION}; upgrade avforensics, or re-run `avforensics prepare` into a new --out"
        )


def write_item(handle: IO[bytes], item: ItemArrays, encoding: Encoding) -> None:
    """Write `item` as one .npz in `encoding` to the open binary file `handle`."""
    common = {
        "format_version": np.int64(FORMAT_VERSION),
        "boxes": item.boxes,
        "face_found": item.face_found,
        "fps": np.float64(item.fps),
        "sample_rate": np.int64(item.sample_rate),
    }
    if encoding == "exact":
        audio = item.audio if item.audio is not None else np.zeros(0, np.float32)
        _save_npz(handle, {"frames": item.frames, "audio": audio, **common}, zipfile.ZIP_DEFLATED)
    elif encoding == "compact":
        audio = {} if item.audio is None else {
            "audio_flac": _bytes(encode_audio(item.audio, item.sample_rate))
        }
        shape = np.array(item.frames.shape, np.int64)
        video = {"video_h264": _bytes(encode_crops(item.frames, item.fps)), "frames_shape": shape}
        _save_npz(handle, {**video, **audio, **common}, zipfile.ZIP_STORED)
    else:
        raise ValueError(f"unknown cache encoding {encoding!r}; use one of {list(ENCODINGS)}")


def read_item(handle: IO[bytes] | str, audio_present: bool, source: str) -> ItemArrays:
    """Read one .npz written by `write_item` (either encoding, format 1 or 2); `source` names it in errors."""
    try:
        arrays = np.load(handle, allow_pickle=False)
    except (OSError, ValueError) as error:
        message = f"{source}: not a prepared video ({error}); re-run `avforensics prepare`"
        raise CacheFormatError(message) from error
    with arrays:
        check_version(int(arrays["format_version"]) if "format_version" in arrays else 1, source)
        if "frames" in arrays:
            frames = arrays["frames"]
            audio = arrays["audio"] if audio_present else None
        elif "video_h264" in arrays:
            frames = decode_crops(arrays["video_h264"].tobytes(), tuple(arrays["frames_shape"]), source)
            audio = decode_audio(arrays["audio_flac"].tobytes()) if audio_present else None
        else:
            raise CacheFormatError(
                f"{source}: holds neither crops nor an H.264 stream (keys {sorted(arrays.files)}); "
                "re-run `avforensics prepare`"
            )
        return ItemArrays(frames, audio, arrays["boxes"], arrays["face_found"], float(arrays["fps"]),
                          int(arrays["sample_rate"]))


def _save_npz(handle: IO[bytes], arrays: dict[str, np.ndarray], compression: int) -> None:
    """An .npz as np.savez writes it, but with fixed member times, so equal arrays give equal bytes."""
    with zipfile.ZipFile(handle, "w", compression) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


def encode_crops(frames: np.ndarray, fps: float) -> bytes:
    """(T, S, S, 3) uint8 crops as a raw H.264 stream, the same bytes for the same crops."""
    if not len(frames):
        return b""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p"
        stream.codec_context.thread_count = 1
        stream.options = dict(_X264_OPTIONS)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_crops(data: bytes, shape: tuple[int, ...], source: str) -> np.ndarray:
    """The crops of `encode_crops`' stream, checked against the stored (T, S, S, 3) shape."""
    frames = np.empty(shape, np.uint8)
    if not shape[0]:
        return frames
    count = 0
    to_rgb = VideoReformatter()  # one colour converter for every frame: half the time of one per frame
    with av.open(io.BytesIO(data), "r", format="h264") as container:
        container.streams.video[0].thread_count = 1
        for count, frame in enumerate(container.decode(video=0), start=1):
            if count > shape[0]:
                break
            frames[count - 1] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
    if count != shape[0]:
        raise CacheFormatError(f"{source}: the H.264 stream holds {count} crops, not {shape[0]}; "
                               "re-run `avforensics prepare`")
    return frames


def encode_audio(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio as 16-bit FLAC (lossless from there on)."""
    samples = np.clip(np.round(audio * _INT16_SCALE), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    # without the muxer's default 8 KiB of header padding (room for tags we never add)
    options = {"fflags": "+bitexact", "metadata_header_padding": "0"}
    with av.open(buffer, "w", format="flac", options=options) as container:
        stream = container.add_stream("flac", rate=sample_rate, layout="mono")
        stream.format = "s16"
        if len(samples):
            frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
            frame.sample_rate = sample_rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_audio(data: bytes) -> np.ndarray:
    """The float32 samples of `encode_audio`'s FLAC."""
    with av.open(io.BytesIO(data), "r", format="flac") as container:
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return (samples.astype(np.float32) / _INT16_SCALE).astype(np.float32)
