"""Everything around the face: background, head motion, blinks, lip motion curves, compositing.

All per-clip randomness comes from the generator passed in; real clips and their manipulated versions
share one scene (same background, motion and blinks), so the only differences are the manipulations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avforensics.synth.phonemes import PHONEMES, PhonemeTrack

_MOUTH_OPEN = np.array([p.mouth_open for p in PHONEMES])
_MOUTH_WIDTH = np.array([p.mouth_width for p in PHONEMES])
_LIP_INERTIA_SECONDS = 0.05


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A room-like backdrop: smooth colour field, a wall/floor split, a few soft rectangles, fine texture."""
    coarse = rng.uniform(0.15, 0.85, (4, 4, 3))
    grey = coarse.mean(axis=-1, keepdims=True)
    coarse = (grey + rng.uniform(0.2, 0.6) * (coarse - grey)) * rng.uniform(0.5, 1.25)
    image = _smooth_upsample(coarse, size)
    floor = int(size * rng.uniform(0.6, 0.9))
    image[floor:] *= rng.uniform(0.6, 0.9)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        image[y0 : y0 + h, x0 : x0 + w] = 0.6 * image[y0 : y0 + h, x0 : x0 + w] + 0.4 * rng.uniform(
            0.1, 0.9, 3
        )
    image = ndimage.gaussian_filter(image, (1.5, 1.5, 0))
    image *= 1.0 + 0.03 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.8)[..., None]
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _smooth_upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """(k, k, 3) control colours -> (size, size, 3) by separable Gaussian-weighted interpolation."""
    count = coarse.shape[0]
    centres = (np.arange(count) + 0.5) * size / count
    weights = np.exp(-0.5 * ((np.arange(size)[:, None] + 0.5 - centres[None, :]) / (0.5 * size / count)) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    rows = (weights @ coarse.reshape(count, -1)).reshape(size, count, 3)
    return np.matmul(weights, rows)  # out[y] = weights @ rows[y]


def head_offsets(rng: np.random.Generator, times: np.ndarray, amplitude: float) -> np.ndarray:
    """Small smooth head motion: integer (dx, dy) per frame, a sum of slow sinusoids."""
    offsets = np.zeros((len(times), 2))
    for axis in range(2):
        for _ in range(3):
            frequency, phase = rng.uniform(0.15, 1.2), rng.uniform(0, 2 * np.pi)
            offsets[:, axis] += (
                rng.uniform(0.2, 0.6) * amplitude * np.sin(2 * np.pi * frequency * times + phase)
            )
    return np.round(offsets).astype(np.int64)


def blink_curve(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Eyelid closure 0..1 per frame: blinks every 2-6 s, each ~0.25 s long."""
    closure = np.zeros(len(times))
    moment = rng.uniform(0.3, 2.5)
    end = times[-1] if len(times) else 0.0
    while moment < end:
        closure = np.maximum(closure, np.clip(1.0 - np.abs(times - moment) / 0.12, 0.0, 1.0))
        moment += rng.uniform(2.0, 6.0)
    return closure


def lip_curves(track: PhonemeTrack, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mouth opening and width per frame from the phoneme visemes, smoothed by articulator inertia."""
    step = 0.005
    fine = np.arange(-0.2, track.duration + 0.2, step)
    phonemes = track.index_at(np.clip(fine, 0, track.duration))
    width = int(_LIP_INERTIA_SECONDS / step)
    kernel = np.hanning(2 * width + 1)
    kernel /= kernel.sum()
    opening = np.convolve(_MOUTH_OPEN[phonemes], kernel, mode="same")
    spread = np.convolve(_MOUTH_WIDTH[phonemes], kernel, mode="same")
    return np.interp(times, fine, opening), np.interp(times, fine, spread)


def composite(
    background: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, top: int, left: int
) -> np.ndarray:
    """The sprite alpha-blended onto a copy of the background at (top, left), clipped to the frame."""
    frame = background.copy()
    height, width = background.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + sprite.shape[0], height), min(left + sprite.shape[1], width)
    if y1 <= y0 or x1 <= x0:
        return frame
    window = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    weight = alpha[window][..., None]
    frame[y0:y1, x0:x1] += weight * (sprite[window] - frame[y0:y1, x0:x1])
    return frame
