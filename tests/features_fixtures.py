"""Synthetic test audio for the features room: a voiced, speech-like signal with pauses."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16_000
# (F1, F2, F3) in Hz of a few vowels, cycled syllable by syllable.
_VOWEL_FORMANTS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (640, 1190, 2390),
)


def _resonator(signal: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonance (one formant), unity gain at 0 Hz."""
    radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    a1, a2 = -2 * radius * np.cos(2 * np.pi * frequency / SAMPLE_RATE), radius**2
    return lfilter([1 + a1 + a2], [1, a1, a2], signal)


def voiced_speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Glottal pulses (f0 100-160 Hz with jitter) through vowel formants: 0.25 s syllables, 0.15 s pauses."""
    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total)
    syllable, pause = int(0.25 * SAMPLE_RATE), int(0.15 * SAMPLE_RATE)
    start, index = int(0.1 * SAMPLE_RATE), 0
    while start < total:
        length = min(syllable, total - start)
        f0 = rng.uniform(100, 160)
        pulses = np.zeros(length)
        position = 0.0
        while position < length:
            pulses[int(position)] = 1.0
            position += SAMPLE_RATE / (f0 * (1 + 0.01 * rng.standard_normal()))
        voice = lfilter([1.0], [1.0, -0.97], pulses)  # glottal roll-off
        formants = _VOWEL_FORMANTS[index % len(_VOWEL_FORMANTS)]
        for formant, bandwidth in zip(formants, (80, 100, 120), strict=True):
            voice = _resonator(voice, formant, bandwidth)
        envelope = np.sin(np.linspace(0, np.pi, length)) ** 0.5
        out[start : start + length] = voice * envelope
        start += syllable + pause
        index += 1
    out += 1e-4 * rng.standard_normal(total)  # breath / room noise floor
    return (0.3 * out / np.abs(out).max()).astype(np.float32)
