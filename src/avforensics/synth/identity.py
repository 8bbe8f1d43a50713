"""Synthetic people: a face style and a voice per identity, drawn deterministically from (seed, index)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Skin tones from dark to light (linear-ish RGB in 0..1), so identities span the range a detector meets.
_SKIN_TONES = np.array(
    [
        [0.36, 0.23, 0.16],
        [0.48, 0.32, 0.22],
        [0.60, 0.42, 0.30],
        [0.72, 0.53, 0.40],
        [0.82, 0.64, 0.52],
        [0.90, 0.74, 0.63],
    ]
)
_HAIR = np.array(
    [[0.07, 0.05, 0.04], [0.20, 0.13, 0.08], [0.40, 0.28, 0.16], [0.62, 0.50, 0.32], [0.5, 0.5, 0.5]]
)
_IRIS = np.array([[0.25, 0.15, 0.08], [0.12, 0.25, 0.45], [0.25, 0.40, 0.25], [0.10, 0.07, 0.05]])


@dataclass(frozen=True)
class FaceStyle:
    """Shape and colour of a face. Lengths are fractions of the face half-width/half-height."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    shirt: tuple[float, float, float]
    aspect: float  # face height / width
    chin: float  # how much the face narrows toward the chin
    eye_spacing: float
    eye_height: float
    eye_size: float
    brow_thickness: float
    nose_length: float
    mouth_width: float
    hair_volume: float
    light_side: float  # -1..1, where the key light comes from


@dataclass(frozen=True)
class Voice:
    """Source-filter voice: mean f0 (Hz), jitter/shimmer (relative), formant scale, breathiness."""

    f0: float
    jitter: float
    shimmer: float
    formant_scale: float
    breathiness: float
    spectral_tilt: float


@dataclass(frozen=True)
class Identity:
    index: int
    name: str
    face: FaceStyle
    voice: Voice


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    red, green, blue = (float(c) for c in np.clip(values, 0.0, 1.0))
    return red, green, blue


def _colour(rng: np.random.Generator, palette: np.ndarray, spread: float) -> tuple[float, float, float]:
    return _rgb(palette[int(rng.integers(len(palette)))] * rng.uniform(1 - spread, 1 + spread, 3))


def make_identity(seed: int, index: int) -> Identity:
    """Identity `index` of the corpus with seed `seed`: same arguments, same person."""
    rng = np.random.default_rng([seed, index, 0x1D])
    skin = _colour(rng, _SKIN_TONES, 0.05)
    face = FaceStyle(
        skin=skin,
        hair=_colour(rng, _HAIR, 0.1),
        iris=_colour(rng, _IRIS, 0.1),
        lips=_rgb(np.array(skin) * [1.0, 0.72, 0.72] + [0.08, 0.0, 0.0]),
        shirt=_rgb(rng.uniform(0.1, 0.85, 3)),
        aspect=float(rng.uniform(1.22, 1.42)),
        chin=float(rng.uniform(0.15, 0.35)),
        eye_spacing=float(rng.uniform(0.34, 0.42)),
        eye_height=float(rng.uniform(-0.16, -0.08)),
        eye_size=float(rng.uniform(0.9, 1.15)),
        brow_thickness=float(rng.uniform(0.025, 0.05)),
        nose_length=float(rng.uniform(0.26, 0.36)),
        mouth_width=float(rng.uniform(0.26, 0.36)),
        hair_volume=float(rng.uniform(0.1, 0.35)),
        light_side=float(rng.uniform(-1.0, 1.0)),
    )
    female = rng.random() < 0.5
    voice = Voice(
        f0=float(rng.uniform(170, 250) if female else rng.uniform(90, 145)),
        jitter=float(rng.uniform(0.004, 0.015)),
        shimmer=float(rng.uniform(0.03, 0.08)),
        formant_scale=float(rng.uniform(1.05, 1.18) if female else rng.uniform(0.9, 1.02)),
        breathiness=float(rng.uniform(0.02, 0.08)),
        spectral_tilt=float(rng.uniform(0.90, 0.97)),
    )
    return Identity(index=index, name=f"id{index:05d}", face=face, voice=voice)


def blend_voices(source: Voice, target: Voice, amount: float) -> Voice:
    """A voice `amount` of the way from `source` to `target` (geometric for f0 and formants)."""

    def geo(a: float, b: float) -> float:
        return float(a * (b / a) ** amount)

    def lin(a: float, b: float) -> float:
        return float(a + (b - a) * amount)

    return Voice(
        f0=geo(source.f0, target.f0),
        jitter=lin(source.jitter, target.jitter),
        shimmer=lin(source.shimmer, target.shimmer),
        formant_scale=geo(source.formant_scale, target.formant_scale),
        breathiness=lin(source.breathiness, target.breathiness),
        spectral_tilt=lin(source.spectral_tilt, target.spectral_tilt),
    )
