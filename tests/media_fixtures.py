"""Synthetic media for the media room's tests: frames that carry their own index, tones, clicks, flashes.

Each frame shows its source index as a row of black/white 8x8 blocks (one bit per block), which survives
H.264 compression, so a test can read back exactly which source frame an output frame shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avforensics.media.encode import write_video

BLOCK = 8  # pixels per bit block
BITS = 8  # bits per row of blocks; frames are at least BITS * BLOCK = 64 pixels wide


def indexed_frame(index: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A frame whose top rows of blocks spell `index` in binary (two rows: up to 16 bits)."""
    frame = np.full((height, width, 3), 40, np.uint8)
    for bit in range(2 * BITS):
        if index >> bit & 1:
            row, column = divmod(bit, BITS)
            frame[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK] = 220
    return frame


def read_index(frame: np.ndarray) -> int:
    """Inverse of `indexed_frame`: the mean brightness of each block decides its bit."""
    index = 0
    for bit in range(2 * BITS):
        row, column = divmod(bit, BITS)
        block = frame[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK]
        if block.mean() > 130:
            index |= 1 << bit
    return index


def indexed_frames(count: int, height: int = 64, width: int = 64) -> Iterator[np.ndarray]:
    """Generate frames one at a time, so long test videos are written in bounded memory."""
    return (indexed_frame(index, height, width) for index in range(count))


def tone(frequency: float, seconds: float, sample_rate: int, channels: int = 1, amplitude: float = 0.5):
    """A sine wave, (N,) for mono or (channels, N) with the same tone in every channel."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    wave = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return wave if channels == 1 else np.tile(wave, (channels, 1))


def peak_frequency(audio: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a Hann-windowed signal."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sample_rate)[np.argmax(spectrum)])


def band_level_db(audio: np.ndarray, sample_rate: int, low: float, high: float) -> float:
    """Peak spectral magnitude in [low, high] Hz, in dB relative to the whole signal's peak."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    band = spectrum[(freqs >= low) & (freqs <= high)]
    return float(20 * np.log10(band.max() / spectrum.max() + 1e-12))


def flash_and_click(
    path: Path, event_time: float, seconds: float, fps: float, sample_rate: int, channels: int = 2
) -> Path:
    """Dark frames turning white at `event_time`, and silence with a click (short burst) at the same time."""
    n_frames = round(seconds * fps)
    frames = np.zeros((n_frames, 64, 64, 3), np.uint8)
    frames[np.arange(n_frames) / fps >= event_time] = 255
    audio = np.zeros((channels, round(seconds * sample_rate)), np.float32)
    onset = round(event_time * sample_rate)
    burst = tone(1000, 0.02, sample_rate, amplitude=0.8)
    audio[:, onset : onset + len(burst)] = burst
    return write_video(path, frames, fps, audio if channels > 1 else audio[0], sample_rate)


def write_indexed_video(path: Path, n_frames: int, fps: float = 25, **kwargs) -> Path:
    """A video of `n_frames` indexed 64x64 frames (streamed to the encoder)."""
    return write_video(path, indexed_frames(n_frames), fps, size=(64, 64), **kwargs)


def write_audio_with_gap(
    path: Path, seconds: float, gap_at: float, gap: float, sample_rate: int = 16000
) -> Path:
    """A PCM audio-only Matroska file of a 440 Hz tone whose timestamps jump by `gap` s at `gap_at` s."""
    wave = tone(440, seconds, sample_rate)
    chunk = 1600  # 0.1 s at 16 kHz: frame boundaries fall on the gap
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        for start in range(0, len(wave), chunk):
            samples = (wave[start : start + chunk] * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.time_base = Fraction(1, sample_rate)
            frame.pts = start + (round(gap * sample_rate) if start >= gap_at * sample_rate else 0)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
