"""Training augmentation of one clip window: face crops and audio, seeded, clip-consistent.

Video transforms draw their parameters once per clip and replay them on every frame (albumentations'
multi-image call), so a clip stays temporally consistent, as DeepfakeBench-MM augments its clips; a
flicker the augmenter added would otherwise be a temporal artefact the detector could learn. Codec round
trips (H.264, MP3/AAC/Opus) run in the loader's processes, like the rest (`data.workers`).

`self_blend` is the one augmentation that changes a label: a real clip's face is blended with a
re-coloured, lower-resolution, slightly shifted copy of itself through a soft mask, and the clip becomes
video-fake (Shiohara & Yamasaki's self-blended images, CVPR 2022). It teaches the generic trace of every
blending forgery (a boundary, a colour and a resolution mismatch) rather than one method's fingerprint,
which is what lets a detector score a face-swap method it never saw (docs/robustness.md).

`data.augment` maps each name of AUGMENTATIONS to the probability it is applied to a clip (missing: 0).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network on import

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from avforensics.media.roundtrip import (  # noqa: E402
    AUDIO_CODECS,
    audio_roundtrip,
    h264_roundtrip,
    resample_through,
)

VIDEO_AUGMENTATIONS = ("flip", "colour", "blur", "jpeg", "downscale", "box_jitter", "h264", "self_blend")
AUDIO_AUGMENTATIONS = ("noise", "gain", "codec", "resample")
AUGMENTATIONS = VIDEO_AUGMENTATIONS + AUDIO_AUGMENTATIONS

# Ranges drawn from (documented in docs/robustness.md): wide enough to cover the robustness levels.
H264_CRF = (23, 40)
SNR_DB = (10.0, 40.0)
GAIN_DB = (-6.0, 6.0)
CODEC_KBPS = (32, 128)
RESAMPLE_HZ = (8000, 16000)


class AugmentConfigError(ValueError):
    """`data.augment` names an unknown augmentation or a probability outside [0, 1]."""


@dataclass(frozen=True)
class AugmentedClip:
    """An augmented window: frames (T, S, S, 3) uint8, audio (N,) float32, and whether the video was
    forged by `self_blend` (its labels then become video-fake)."""

    frames: np.ndarray
    audio: np.ndarray
    forged: bool = False


def check_probabilities(probabilities: Mapping[str, float]) -> dict[str, float]:
    """The mapping as floats, or AugmentConfigError naming the key (`data.augment.<name>`)."""
    checked = {}
    for name, value in probabilities.items():
        if name not in AUGMENTATIONS:
            raise AugmentConfigError(
                f"data.augment.{name}: unknown augmentation; allowed: {list(AUGMENTATIONS)}")
        try:
            probability = float(value)
        except (TypeError, ValueError):
            raise AugmentConfigError(f"data.augment.{name}: expected a probability, got {value!r}") from None
        if not 0.0 <= probability <= 1.0:
            raise AugmentConfigError(f"data.augment.{name}: probability {probability} is outside [0, 1]")
        checked[name] = probability
    return checked


class ClipAugmenter:
    """Augments windows; every random choice comes from the generator the caller passes (seeded per
    (seed, epoch, window) by the dataset), so a run and its resume see the same clips."""

    def __init__(self, probabilities: Mapping[str, float], fps: float = 25.0, sample_rate: int = 16000
                 ) -> None:
        self.p = {name: 0.0 for name in AUGMENTATIONS} | check_probabilities(probabilities)
        self.fps, self.sample_rate = fps, sample_rate
        self.pixels = A.Compose([
            A.HorizontalFlip(p=self.p["flip"]),
            A.OneOf([A.RandomBrightnessContrast(0.2, 0.2, p=1.0),
                     A.HueSaturationValue(10, 20, 15, p=1.0)], p=self.p["colour"]),
            A.GaussianBlur(blur_limit=(3, 7), p=self.p["blur"]),
            A.Downscale(scale_range=(0.4, 0.8), p=self.p["downscale"]),
            A.ImageCompression(quality_range=(30, 95), p=self.p["jpeg"]),
            A.Affine(scale=(0.92, 1.08), translate_percent=(-0.04, 0.04), p=self.p["box_jitter"]),
        ])

    @property
    def active(self) -> bool:
        return any(self.p.values())

    def __call__(self, frames: np.ndarray, audio: np.ndarray, rng: np.random.Generator,
                 real_video: bool) -> AugmentedClip:
        """Augment one window; `real_video` says whether `self_blend` may forge it."""
        forged = real_video and rng.random() < self.p["self_blend"]
        if forged:
            frames = self_blend(frames, rng)
        self.pixels.set_random_seed(int(rng.integers(2**31)))
        frames = self.pixels(images=frames)["images"]
        if rng.random() < self.p["h264"]:
            frames = h264_roundtrip(frames, _between(rng, H264_CRF), self.fps)
        return AugmentedClip(np.ascontiguousarray(frames), self._audio(audio, rng), forged)

    def _audio(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(audio, np.float32)
        if not out.any():  # silence (no track, or padding) stays silence
            return out
        if rng.random() < self.p["resample"]:
            out = resample_through(out, self.sample_rate, _between(rng, RESAMPLE_HZ))
        if rng.random() < self.p["codec"]:
            codec = sorted(AUDIO_CODECS)[int(rng.integers(len(AUDIO_CODECS)))]
            out = audio_roundtrip(out, self.sample_rate, codec, _between(rng, CODEC_KBPS))
        if rng.random() < self.p["gain"]:
            out = out * np.float32(10 ** (rng.uniform(*GAIN_DB) / 20))
        if rng.random() < self.p["noise"]:
            out = add_noise(out, rng.uniform(*SNR_DB), rng)
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def _between(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer drawn uniformly from the closed range `bounds`."""
    return int(rng.integers(bounds[0], bounds[1] + 1))


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`audio` plus white Gaussian noise at `snr_db` below the signal's power (silence is left silent)."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    if power == 0.0:
        return audio
    noise = rng.standard_normal(len(audio)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def self_blend(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend each face crop with a transformed copy of itself inside a soft face-shaped mask.

    One set of parameters per clip: the copy is shifted by a few pixels, colour-shifted per channel and
    brought down to a lower resolution (the swap network's), the mask an ellipse over the inner face (or,
    one time in three, the mouth, as a lip-sync re-render) feathered by a random width.
    """
    _, size, width, _ = frames.shape
    factor = rng.uniform(1.5, 3.0)
    shift = rng.uniform(-0.03, 0.03, 2) * (width, size)
    colour = rng.uniform(-0.08, 0.08, 3) * 255
    mouth = rng.random() < 1 / 3
    centre = (0.5 + rng.uniform(-0.03, 0.03), (0.72 if mouth else 0.52) + rng.uniform(-0.03, 0.03))
    radii = (rng.uniform(0.14, 0.22), rng.uniform(0.08, 0.13)) if mouth else (
        rng.uniform(0.22, 0.34), rng.uniform(0.26, 0.38))
    feather = rng.uniform(0.02, 0.1) * width
    ys, xs = np.mgrid[0:size, 0:width].astype(np.float32)
    inside = ((xs / width - centre[0]) / radii[0]) ** 2 + ((ys / size - centre[1]) / radii[1]) ** 2 <= 1.0
    mask = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), feather)[..., None]
    small = (max(1, round(width / factor)), max(1, round(size / factor)))
    move = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        source = cv2.resize(cv2.resize(frame, small, interpolation=cv2.INTER_AREA), (width, size),
                            interpolation=cv2.INTER_LINEAR)
        source = cv2.warpAffine(source, move, (width, size), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        blended = mask * (source + colour) + (1.0 - mask) * frame
        out[index] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out
