"""Perturbations of decoded media at fixed severity levels: what happens to a video in the world.

Each acts on a whole decoded video (frames (T, H, W, 3) uint8 at `fps`, mono float32 audio at
`sample_rate`) before any face work, as an upload's re-encode or a phone line acts on it, and is seeded
so a robustness table is the same on every run.

The video set is DeeperForensics-1.0's (Jiang et al., CVPR 2020), at its five levels, with its
definitions: colour saturation scales the chroma (Cb, Cr) of YCbCr; colour contrast multiplies the pixel
values; block-wise pastes grey 8-pixel blocks (their count times the image's short side in units of 256,
new places every frame); Gaussian noise of the given variance is added in YCbCr scaled to [0, 1]; Gaussian
blur has the given kernel and sigma = kernel / 6; "JPEG" is a down-scale by the factor and back up;
video compression is an H.264 re-encode at the CRF. The audio and audio-visual ones: white noise at an
SNR, an MP3 re-encode at a bitrate, a narrow-band channel (resampled to 8 kHz and back), the sound late
(`audio_delay`) or early (`audio_advance`) against the picture, and one modality masked (black picture or
silent sound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from avforensics.media.roundtrip import audio_roundtrip, h264_roundtrip, resample_through

BLOCK_SIDE = 8
BLOCK_GREY = 128


@dataclass(frozen=True)
class Media:
    """A decoded video: frames (T, H, W, 3) uint8 and its audio (N,) float32 (None: no track)."""

    frames: np.ndarray
    audio: np.ndarray | None
    fps: float = 25.0
    sample_rate: int = 16000


Level = float | int | str
Apply = Callable[[Media, Level, np.random.Generator], Media]


@dataclass(frozen=True)
class Perturbation:
    """A named perturbation, the modality it touches and its levels, mildest first."""

    name: str
    modality: str  # "video", "audio" or "audio-video"
    levels: tuple[Level, ...]
    unit: str
    apply: Apply


def _per_frame(function: Callable[[np.ndarray, Level, np.random.Generator], np.ndarray]) -> Apply:
    def apply(media: Media, level: Level, rng: np.random.Generator) -> Media:
        if not len(media.frames):
            return media
        return replace(media, frames=np.stack([function(frame, level, rng) for frame in media.frames]))
    return apply


def _on_audio(function: Callable[[np.ndarray, Level, int, np.random.Generator], np.ndarray]) -> Apply:
    def apply(media: Media, level: Level, rng: np.random.Generator) -> Media:
        if media.audio is None:
            return media
        return replace(media, audio=function(media.audio, level, media.sample_rate, rng).astype(np.float32))
    return apply


def saturation(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    ycrcb = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    ycrcb[..., 1:] = 128.0 + (ycrcb[..., 1:] - 128.0) * float(level)
    return cv2.cvtColor(np.clip(ycrcb + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def contrast(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    return (frame.astype(np.float32) * float(level)).astype(np.uint8)


def blocks(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    out = frame.copy()
    for _ in range(max(1, min(height, width) // 256) * int(level)):
        row = int(rng.integers(0, max(1, height - BLOCK_SIDE)))
        col = int(rng.integers(0, max(1, width - BLOCK_SIDE)))
        out[row : row + BLOCK_SIDE, col : col + BLOCK_SIDE] = BLOCK_GREY
    return out


def gaussian_noise(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    ycrcb = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb).astype(np.float32) / 255.0
    noisy = ycrcb + np.sqrt(float(level)) * rng.standard_normal(ycrcb.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(noisy * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def blur(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    kernel = int(level)
    return cv2.GaussianBlur(frame, (kernel, kernel), kernel / 6)


def downscale(frame: np.ndarray, level: Level, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    factor = int(level)
    small = cv2.resize(frame, (max(1, width // factor), max(1, height // factor)))
    return cv2.resize(small, (width, height))


def _h264(media: Media, level: Level, rng: np.random.Generator) -> Media:
    if not len(media.frames):
        return media
    return replace(media, frames=h264_roundtrip(media.frames, int(level), media.fps))


def snr_noise(audio: np.ndarray, level: Level, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(np.square(audio, dtype=np.float64))) if len(audio) else 0.0
    if power == 0.0:  # a silent track has no signal to measure a ratio against
        return audio
    return audio + rng.standard_normal(len(audio)) * np.sqrt(power / 10 ** (float(level) / 10))


def mp3(audio: np.ndarray, level: Level, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return audio_roundtrip(audio, sample_rate, "mp3", int(level))


def narrow_band(audio: np.ndarray, level: Level, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return resample_through(audio, sample_rate, int(level))


def delay(audio: np.ndarray, level: Level, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sound `level` seconds late against the picture, silence where none is left."""
    return shifted(audio, round(float(level) * sample_rate))


def advance(audio: np.ndarray, level: Level, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sound `level` seconds early against the picture, silence where none is left."""
    return shifted(audio, -round(float(level) * sample_rate))


def shifted(audio: np.ndarray, shift: int) -> np.ndarray:
    """`audio` moved `shift` samples later (negative: earlier), same length, silence filling the gap."""
    out = np.zeros_like(audio)
    if shift >= 0:
        out[shift:] = audio[: max(0, len(audio) - shift)]
    else:
        out[:shift] = audio[-shift:]
    return out


def _mask(media: Media, level: Level, rng: np.random.Generator) -> Media:
    if level == "video":
        return replace(media, frames=np.zeros_like(media.frames))
    if level == "audio":
        return replace(media, audio=None if media.audio is None else np.zeros_like(media.audio))
    raise ValueError(f"mask level {level!r}: expected 'video' or 'audio'")


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("saturation", "video", (0.4, 0.3, 0.2, 0.1, 0.0), "chroma scale", _per_frame(saturation)),
    Perturbation("contrast", "video", (0.85, 0.725, 0.6, 0.475, 0.35), "pixel scale", _per_frame(contrast)),
    Perturbation("blocks", "video", (16, 32, 48, 64, 80), "blocks", _per_frame(blocks)),
    Perturbation("noise", "video", (0.001, 0.002, 0.005, 0.01, 0.05), "variance", _per_frame(gaussian_noise)),
    Perturbation("blur", "video", (7, 9, 13, 17, 21), "kernel", _per_frame(blur)),
    Perturbation("downscale", "video", (2, 3, 4, 5, 6), "factor", _per_frame(downscale)),
    Perturbation("h264", "video", (30, 32, 35, 38, 40), "CRF", _h264),
    Perturbation("audio_noise", "audio", (30, 20, 10), "SNR dB", _on_audio(snr_noise)),
    Perturbation("mp3", "audio", (128, 64, 32), "kbps", _on_audio(mp3)),
    Perturbation("resample", "audio", (8000,), "Hz", _on_audio(narrow_band)),
    Perturbation("audio_delay", "audio-video", (0.1, 0.2, 0.4), "s", _on_audio(delay)),
    Perturbation("audio_advance", "audio-video", (0.1, 0.2, 0.4), "s", _on_audio(advance)),
    Perturbation("mask", "audio-video", ("audio", "video"), "masked", _mask),
)}


def perturb(media: Media, name: str, level: Level, seed: int = 0) -> Media:
    """`media` under perturbation `name` at `level` (one of its levels), drawn from `seed`."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    perturbation = PERTURBATIONS[name]
    if level not in perturbation.levels:
        raise ValueError(f"perturbation {name}: level {level!r} is not one of {list(perturbation.levels)}")
    return perturbation.apply(media, level, np.random.default_rng(seed))
