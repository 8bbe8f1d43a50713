"""Lossy round trips in memory (PyAV codecs, soxr resampling): what a platform's re-encode does to a clip.

Used by training augmentation (random quality) and by the robustness protocol (fixed levels). Nothing
touches the disk: frames or samples are encoded into an in-memory container and decoded back to the same
shape, so the only change is the codec's loss (and, for audio, the encoder's priming delay, removed here
so that a round trip does not also shift the sound against the picture).
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import soxr

from avforensics.media.encode import write_video

# codec name -> (PyAV encoder, container format); Opus is encoded at 48 kHz only by libopus' contract
AUDIO_CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", "mp3"),
    "aac": ("aac", "adts"),
    "opus": ("libopus", "ogg"),
}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def h264_roundtrip(frames: np.ndarray, crf: int, fps: float = 25.0, preset: str = "veryfast") -> np.ndarray:
    """(T, H, W, 3) uint8 frames encoded with libx264 at `crf` (yuv420p) and decoded back, same shape.

    Odd sides are padded by one edge row/column for the encoder and cut again after decoding.
    """
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"h264_roundtrip: expected (T, H, W, 3) uint8 frames, got {frames.shape}")
    _, height, width, _ = frames.shape
    padded = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    write_video(buffer, padded, fps=fps, crf=crf, preset=preset, threads=1, container_format="mp4")
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    out = np.stack(decoded)[:, :height, :width]
    if len(out) != len(frames):
        raise RuntimeError(f"h264_roundtrip: {len(frames)} frames in, {len(out)} out")
    return out


def encoded_size(frames: np.ndarray, crf: int, fps: float = 25.0) -> int:
    """Bytes of the H.264 stream of `frames` at `crf` (what a CRF level costs, for tests and reports)."""
    buffer = io.BytesIO()
    write_video(buffer, np.asarray(frames, dtype=np.uint8), fps=fps, crf=crf, threads=1,
                container_format="mp4")
    return buffer.getbuffer().nbytes


def audio_roundtrip(audio: np.ndarray, sample_rate: int, codec: str, bitrate_kbps: int) -> np.ndarray:
    """Mono float32 `audio` through `codec` ("mp3", "aac", "opus") at `bitrate_kbps` and back: same length,
    same rate, the encoder's leading delay removed."""
    if codec not in AUDIO_CODECS:
        raise ValueError(f"audio codec {codec!r}: expected one of {sorted(AUDIO_CODECS)}")
    if codec == "opus" and sample_rate not in _OPUS_RATES:
        raise ValueError(f"opus encodes {_OPUS_RATES} Hz only, got {sample_rate}")
    audio = np.asarray(audio, dtype=np.float32)
    encoder, container_format = AUDIO_CODECS[codec]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=sample_rate, layout="mono")
        stream.bit_rate = bitrate_kbps * 1000
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, len(audio), frame_size):
            chunk = np.clip(audio[None, start : start + frame_size], -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks, first_pts = [], None
    with av.open(buffer, mode="r") as container:
        for frame in container.decode(audio=0):
            if first_pts is None and frame.pts is not None:
                first_pts = float(frame.pts * frame.time_base)
            chunks.extend(resampled.to_ndarray().reshape(-1) for resampled in resampler.resample(frame))
    chunks.extend(resampled.to_ndarray().reshape(-1) for resampled in resampler.resample(None))
    decoded = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    # A negative first timestamp is the encoder's priming (AAC, Opus); MP3 in its own container declares
    # none, so its delay is found by aligning the decoded signal with the input.
    skip = round(-first_pts * sample_rate) if first_pts and first_pts < 0 else _delay(audio, decoded)
    out = np.zeros(len(audio), np.float32)
    kept = decoded[skip : skip + len(audio)]
    out[: len(kept)] = kept
    return out


def resample_through(audio: np.ndarray, sample_rate: int, through: int) -> np.ndarray:
    """Down to `through` Hz and back up (soxr, high quality), same length: a narrow-band channel's band."""
    if through >= sample_rate:
        return np.asarray(audio, np.float32)
    down = soxr.resample(audio, sample_rate, through, quality="HQ")
    up = soxr.resample(down, through, sample_rate, quality="HQ").astype(np.float32)
    out = np.zeros(len(audio), np.float32)
    out[: min(len(up), len(audio))] = up[: len(audio)]
    return out


def _delay(reference: np.ndarray, decoded: np.ndarray, max_delay: int = 4096) -> int:
    """Leading samples of `decoded` that are codec delay: the lag (0..max_delay) best aligning it with
    `reference` by cross-correlation."""
    span = min(len(reference), len(decoded) - max_delay, 16000)
    if span <= 0 or not np.any(reference[:span]):
        return 0
    head = reference[:span]
    scores = [float(np.dot(head, decoded[lag : lag + span])) for lag in range(max_delay + 1)]
    return int(np.argmax(scores))
