"""Leading silence: measure it, and trim it with the video kept in step.

In FakeAVCeleb and AV-Deepfake1M fake clips start with a short silence that alone nearly separates real
from fake (Smeu et al., arXiv 2412.00175); a detector trained on such data may learn the silence, not the
forgery. Measuring it is the audit; trimming it in the loader removes the shortcut.

A 10 ms window is silent when its RMS level is more than `relative_db` below the loudest window of the
clip, or below the absolute floor `floor_db` (dBFS); the relative rule makes the measure independent of
recording gain, the floor makes a near-silent clip count as silent throughout.
"""

from __future__ import annotations

import math

import numpy as np

WINDOW_SECONDS = 0.01
_EPSILON = 1e-10


def window_levels_db(
    audio: np.ndarray, sample_rate: int = 16000, window: float = WINDOW_SECONDS
) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping windows (a partial last window is included)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
    size = max(1, round(window * sample_rate))
    count = math.ceil(len(audio) / size)
    padded = np.zeros(count * size, dtype=np.float64)
    padded[: len(audio)] = audio
    power = (padded.reshape(count, size) ** 2).sum(axis=1)
    lengths = np.full(count, size, dtype=np.float64)
    if count and len(audio) % size:
        lengths[-1] = len(audio) % size
    return 10 * np.log10(power / lengths + _EPSILON)


def leading_silence_seconds(
    audio: np.ndarray,
    sample_rate: int = 16000,
    *,
    relative_db: float = 35.0,
    floor_db: float = -60.0,
    window: float = WINDOW_SECONDS,
) -> float:
    """Seconds from the start until the first non-silent window (the whole length if all are silent)."""
    levels = window_levels_db(audio, sample_rate, window)
    if not len(levels):
        return 0.0
    threshold = max(float(levels.max()) - relative_db, floor_db)
    loud = np.flatnonzero(levels >= threshold)
    first = int(loud[0]) if len(loud) else len(levels)
    return min(first * round(window * sample_rate), len(audio)) / sample_rate


def loudness_db(audio: np.ndarray) -> float:
    """RMS level of the whole clip in dBFS (-100 for digital silence)."""
    audio = np.asarray(audio, dtype=np.float64)
    return float(10 * np.log10(np.mean(audio**2) + _EPSILON)) if len(audio) else -100.0


def trim_leading_silence(
    audio: np.ndarray,
    sample_rate: int = 16000,
    *,
    fps: float | None = 25.0,
    max_seconds: float | None = None,
    keep_seconds: float = 0.0,
    relative_db: float = 35.0,
    floor_db: float = -60.0,
) -> tuple[np.ndarray, float]:
    """Drop the leading silence; returns (trimmed audio, seconds removed).

    With `fps`, the cut is rounded DOWN to a whole video frame, so dropping
    `frame_offset(seconds, fps)` frames from the video keeps picture and sound aligned. `keep_seconds`
    leaves a little silence in place (a natural onset); `max_seconds` caps the cut.
    """
    silence = leading_silence_seconds(audio, sample_rate, relative_db=relative_db, floor_db=floor_db)
    seconds = max(0.0, silence - keep_seconds)
    if max_seconds is not None:
        seconds = min(seconds, max_seconds)
    if fps is not None:
        seconds = math.floor(seconds * fps + 1e-9) / fps
    samples = round(seconds * sample_rate)
    return np.asarray(audio)[samples:], samples / sample_rate


def frame_offset(seconds_trimmed: float, fps: float = 25.0) -> int:
    """The number of video frames to drop to match `seconds_trimmed` of audio cut by trim_leading_silence."""
    return round(seconds_trimmed * fps)


def trim_clip(
    frames: np.ndarray | None,
    audio: np.ndarray,
    fps: float = 25.0,
    sample_rate: int = 16000,
    **options: float,
) -> tuple[np.ndarray | None, np.ndarray, float]:
    """Trim leading silence from a decoded clip: (frames, audio, seconds removed), still in step."""
    audio, seconds = trim_leading_silence(audio, sample_rate, fps=fps, **options)
    return (frames[frame_offset(seconds, fps) :] if frames is not None else None), audio, seconds
