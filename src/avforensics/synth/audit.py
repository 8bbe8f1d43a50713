"""Audit a synthetic corpus from its decoded files: no shortcuts, yet every manipulation is learnable.

Shortcut cues are properties a detector could exploit instead of the forgery (duration, file size, mean
brightness, leading silence, loudness): each alone should score fake-vs-real AUC near 0.5. Oracle
statistics are the simplest measurement that exposes each method's trace (AUC well above 0.5), proving the
corpus is learnable. Both are computed from the decoded .mp4 (25 fps, 16 kHz mono), not from the renderer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, signal
from sklearn.metrics import roc_auc_score

from avforensics.data.silence import leading_silence_seconds, loudness_db
from avforensics.media.decode import DecodedVideo, decode
from avforensics.synth.manifest import SynthVideo

FPS, SAMPLE_RATE = 25, 16000
SHORTCUT_CUES = ("duration", "file_size", "brightness", "leading_silence", "loudness")
# Face-box fractions (x0, x1, y0, y1) of the regions the oracles look at.
MOUTH_REGION = (0.3, 0.7, 0.63, 0.85)
EYE_REGION = (0.15, 0.85, 0.3, 0.5)
FACE_REGION = (0.2, 0.8, 0.15, 0.9)


@dataclass(frozen=True)
class DecodedClip:
    """A decoded corpus file with its manifest row and the true face box of every decoded frame."""

    video: SynthVideo
    media: DecodedVideo
    boxes: np.ndarray  # (T, 4) x1, y1, x2, y2

    @property
    def grey(self) -> np.ndarray:
        return self.media.frames.astype(np.float32).mean(axis=-1)


def load_clip(root: str | Path, video: SynthVideo) -> DecodedClip:
    """Decode `video` at 25 fps / 16 kHz and interpolate its per-second face boxes to every frame."""
    media = decode(Path(root) / video.path, fps=FPS, sample_rate=SAMPLE_RATE, require_audio=True)
    known = np.asarray(video.face_boxes, dtype=np.float64)
    times = np.arange(len(media.frames)) / FPS
    boxes = np.stack([np.interp(times, np.arange(len(known)), known[:, k]) for k in range(4)], axis=1)
    return DecodedClip(video, media, boxes)


def shortcut_cues(root: str | Path, clip: DecodedClip) -> dict[str, float]:
    """The trivial properties of a file that must NOT separate real from fake."""
    audio = clip.media.audio
    return {
        "duration": len(clip.media.frames) / FPS,
        "file_size": float(os.path.getsize(Path(root) / clip.video.path)),
        "brightness": float(clip.media.frames.mean()),
        "leading_silence": leading_silence_seconds(audio, SAMPLE_RATE),
        "loudness": loudness_db(audio),
    }


def face_region(
    image: np.ndarray, box: np.ndarray, fractions: tuple[float, float, float, float]
) -> np.ndarray:
    x1, y1, x2, y2 = box
    fx0, fx1, fy0, fy1 = fractions
    width, height = x2 - x1, y2 - y1
    return image[
        int(y1 + fy0 * height) : int(y1 + fy1 * height), int(x1 + fx0 * width) : int(x1 + fx1 * width)
    ]


def lip_audio_correlation(clip: DecodedClip) -> float:
    """Pearson correlation of mouth darkness (an open mouth is dark) with the log audio envelope."""
    grey = clip.grey
    darkness = np.array(
        [-face_region(frame, box, MOUTH_REGION).mean() for frame, box in zip(grey, clip.boxes, strict=True)]
    )
    per_frame = SAMPLE_RATE // FPS
    audio = clip.media.audio[: len(grey) * per_frame].reshape(len(grey), per_frame)
    envelope = np.log(np.sqrt(np.mean(audio**2, axis=1)) + 1e-5)
    return float(np.corrcoef(darkness, envelope)[0, 1])


def _sharpness(clip: DecodedClip, fractions: tuple[float, float, float, float]) -> float:
    """Mean absolute Laplacian in a face region: detail that low-resolution generators lose."""
    grey = clip.grey
    return float(
        np.mean(
            [
                np.abs(ndimage.laplace(face_region(f, b, fractions))).mean()
                for f, b in zip(grey, clip.boxes, strict=True)
            ]
        )
    )


def checkerboard_energy(clip: DecodedClip) -> float:
    """Strength of period-2 patterns (x, y, diagonal) in the high-passed face, relative to its contrast."""
    energies = []
    for frame, box in zip(clip.grey, clip.boxes, strict=True):
        face = face_region(frame, box, FACE_REGION)
        detail = face - ndimage.uniform_filter(face, 3)
        rows, cols = np.indices(detail.shape)
        signs = [(-1.0) ** cols, (-1.0) ** rows, (-1.0) ** (rows + cols)]
        energies.append(max(abs(float((detail * s).mean())) for s in signs) / (float(detail.std()) + 1e-6))
    return float(np.mean(energies))


def high_band_ratio(clip: DecodedClip) -> float:
    """log10 energy ratio of 6.8-7.9 kHz to 0.3-4 kHz in the louder half of the frames (band limit)."""
    frequencies, _, spectrum = signal.stft(clip.media.audio, SAMPLE_RATE, nperseg=512)
    power = np.abs(spectrum) ** 2
    loud = power.sum(axis=0) >= np.median(power.sum(axis=0))
    high = power[(frequencies > 6800) & (frequencies < 7900)][:, loud].sum()
    low = power[(frequencies > 300) & (frequencies < 4000)][:, loud].sum()
    return float(np.log10((high + 1e-12) / (low + 1e-12)))


# Per method: the oracle score, larger = more likely manipulated.
ORACLES: dict[str, Callable[[DecodedClip], float]] = {
    "faceswap": lambda clip: -_sharpness(clip, EYE_REGION),
    "gan_upsampling": checkerboard_energy,
    "lipsync": lambda clip: -lip_audio_correlation(clip),
    "desync": lambda clip: -lip_audio_correlation(clip),
    "vocoder_tts": lambda clip: -high_band_ratio(clip),
    "voice_conversion": lambda clip: -high_band_ratio(clip),
}


def auc(fake_scores: Sequence[float], real_scores: Sequence[float]) -> float:
    """ROC-AUC of a score for fake (positive) vs real."""
    labels = [1] * len(fake_scores) + [0] * len(real_scores)
    return float(roc_auc_score(labels, list(fake_scores) + list(real_scores)))


def shortcut_aucs(root: str | Path, clips: Sequence[DecodedClip]) -> dict[str, float]:
    """AUC of each shortcut cue alone, fake vs real: near 0.5 means harmless."""
    cues = [shortcut_cues(root, clip) for clip in clips]
    fake = [c for c, clip in zip(cues, clips, strict=True) if clip.video.label == 1]
    real = [c for c, clip in zip(cues, clips, strict=True) if clip.video.label == 0]
    return {name: auc([c[name] for c in fake], [c[name] for c in real]) for name in SHORTCUT_CUES}


def oracle_aucs(clips: Sequence[DecodedClip]) -> dict[str, float]:
    """AUC of each method's oracle statistic, clips with that method vs real clips."""
    real = [clip for clip in clips if clip.video.label == 0]
    result = {}
    for method, oracle in ORACLES.items():
        fakes = [clip for clip in clips if method in clip.video.methods.split("+")]
        if fakes and real:
            result[method] = auc([oracle(c) for c in fakes], [oracle(c) for c in real])
    return result
