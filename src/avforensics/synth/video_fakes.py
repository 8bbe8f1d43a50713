"""Visual manipulations, applied to the face sprite of a frame before it is composited into the scene.

Each imitates the trace a family of real forgeries leaves (docs/synthetic.md maps them to datasets):
- `FaceSwap`: another identity's inner face blended in (Faceswap / FSGAN in FakeAVCeleb, DFDC swaps):
  a blending boundary, a colour mismatch, the lower resolution of the swap network.
- `GanUpsampling`: the face passed through a 2x down/up-sampling whose transposed-convolution phases have
  unequal gains: the checkerboard and spectral peaks of GAN decoders.
- `LipSync`: the mouth re-rendered at low resolution from a different phoneme track (Wav2Lip in
  FakeAVCeleb, the lip-synced segments of LAV-DF).
Desynchronisation needs no sprite edit: the renderer shifts the lip curves instead.

`strength` is 0..1 (1 = blatant); the corpus derives it from its difficulty setting.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from avforensics.synth.face import FaceSprite, soft_inside


@dataclass(frozen=True)
class Pose:
    """What animates a face in one frame."""

    mouth_open: float
    mouth_width: float
    blink: float


@functools.lru_cache(maxsize=64)
def _linear_upsampler(n_small: int, factor: int) -> np.ndarray:
    """(n_small * factor, n_small) matrix of linear interpolation between pixel centres."""
    centres = (np.arange(n_small * factor) + 0.5) / factor - 0.5
    position = np.clip(centres, 0, n_small - 1)
    lower = (
        np.minimum(np.floor(position).astype(int), n_small - 2)
        if n_small > 1
        else np.zeros_like(centres, int)
    )
    fraction = position - lower
    matrix = np.zeros((n_small * factor, n_small), dtype=np.float32)
    rows = np.arange(n_small * factor)
    matrix[rows, lower] = 1.0 - fraction
    if n_small > 1:
        matrix[rows, lower + 1] += fraction
    return matrix


def _low_resolution(image: np.ndarray, factor: int) -> np.ndarray:
    """Block-average by `factor` and upsample back linearly: the detail a small generator never had."""
    height, width = image.shape[:2]
    rows, cols = height // factor, width // factor
    small = image[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor, 3).mean(axis=(1, 3))
    tall = (_linear_upsampler(rows, factor) @ small.reshape(rows, cols * 3)).reshape(-1, cols, 3)
    large = (tall.transpose(0, 2, 1) @ _linear_upsampler(cols, factor).T).transpose(0, 2, 1)
    out = image.copy()
    out[: rows * factor, : cols * factor] = large
    return out


class FaceSwap:
    """Replace the inner face of `target` by `donor`'s, animated with the same pose."""

    def __init__(self, target: FaceSprite, donor: FaceSprite, strength: float) -> None:
        self.donor = donor
        feather = 0.04 + 0.2 * (1.0 - strength)
        distance = target.skin_distance()
        v_over_aspect = target.v / target.style.aspect
        inner = soft_inside(distance / 0.86, feather) * soft_inside(-v_over_aspect / 0.62, feather)
        self.mask = inner[..., None].astype(np.float32)
        self.rows, self.cols = target.face_slices()
        self.factor = 1 + int(round(2 * strength))  # 1 (full resolution) .. 3
        mismatch = 0.1 + 0.5 * strength  # share of the skin colour difference left uncorrected
        colour_gap = np.asarray(target.style.skin) - np.asarray(donor.style.skin)
        self.colour_shift = (1.0 - mismatch) * colour_gap + 0.05 * strength * np.array([1.0, -0.5, -0.5])
        self.colour_shift = self.colour_shift.astype(np.float32)

    def __call__(self, image: np.ndarray, pose: Pose, frame: int) -> np.ndarray:
        donor = self.donor.frame(pose.mouth_open, pose.mouth_width, pose.blink)
        box = (self.rows, self.cols)
        swapped = _low_resolution(donor[box], self.factor) + self.colour_shift
        out = image.copy()
        out[box] += self.mask[box] * (swapped - image[box])
        return out


class GanUpsampling:
    """Down-sample the face 2x and up-sample it with unequal per-phase gains (transposed-conv fingerprint)."""

    def __init__(self, target: FaceSprite, strength: float, rng: np.random.Generator) -> None:
        gains = rng.standard_normal((2, 2))
        gains = (gains - gains.mean()) / (np.abs(gains - gains.mean()).max() or 1.0)
        self.amplitude = 0.005 + 0.07 * strength
        self.rows, self.cols = target.face_slices()
        height = self.rows.stop - self.rows.start
        width = self.cols.stop - self.cols.start
        self.pattern = np.tile(gains, ((height + 1) // 2, (width + 1) // 2))[:height, :width, None].astype(
            np.float32
        )
        self.mask = soft_inside(target.skin_distance()[self.rows, self.cols] / 0.95, 0.1)[..., None].astype(
            np.float32
        )

    def __call__(self, image: np.ndarray, pose: Pose, frame: int) -> np.ndarray:
        box = (self.rows, self.cols)
        face = image[box]
        generated = _low_resolution(face, 2)
        height, width = generated.shape[:2]
        generated = generated * (1.0 + self.amplitude * self.pattern[:height, :width])
        out = image.copy()
        out[box] += self.mask * (generated - face)
        return out


class LipSync:
    """Re-render the mouth at low resolution following another phoneme track's lip curves."""

    def __init__(self, target: FaceSprite, opening: np.ndarray, width: np.ndarray, strength: float) -> None:
        self.target = target
        self.opening, self.width = opening, width
        self.factor = 2 + int(round(2 * strength))  # 2 .. 4
        rows, cols = target.mouth_box
        u = target.u[rows, cols]
        v = target.v[rows, cols] - target.mouth_level
        ellipse = np.sqrt((u / 0.55) ** 2 + (v / 0.3) ** 2)
        self.mask = soft_inside(ellipse, 0.35 + 0.3 * (1 - strength))[..., None].astype(np.float32)
        self.tint = np.array([0.03, -0.01, -0.01], dtype=np.float32) * strength

    def __call__(self, image: np.ndarray, pose: Pose, frame: int) -> np.ndarray:
        patch = self.target.mouth_patch(float(self.opening[frame]), float(self.width[frame]))
        patch = _low_resolution(patch, self.factor) + self.tint
        box = self.target.mouth_box
        out = image.copy()
        out[box] += self.mask * (patch - image[box])
        return out
