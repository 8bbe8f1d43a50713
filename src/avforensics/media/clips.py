"""Exact clip-window arithmetic on the shared timeline: frame k <-> time k/fps <-> sample k*sample_rate/fps.

All three detectors consume windows of 16 frames at 25 fps with the matching 10,240 audio samples at
16 kHz (0.64 s). Windows are computed in integer frames and samples only, so video and audio of a window
can never drift apart by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

Policy = Literal["consecutive", "random", "sliding"]


def samples_per_frame(fps: float | Fraction, sample_rate: int) -> int:
    """Audio samples per video frame; an integer is required so every frame owns a whole number of samples."""
    ratio = Fraction(sample_rate) / Fraction(fps).limit_denominator(1001)
    if ratio.denominator != 1:
        raise ValueError(
            f"sample_rate {sample_rate} / fps {fps} = {float(ratio):.4f} is not a whole number of "
            "samples per frame; choose e.g. fps=25 with sample_rate=16000 (640 samples per frame)"
        )
    return int(ratio)


@dataclass(frozen=True)
class ClipWindow:
    """`n_frames` frames starting at `start_frame`, and the audio samples covering exactly the same time."""

    start_frame: int
    n_frames: int
    fps: float = 25
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.start_frame < 0 or self.n_frames <= 0:
            raise ValueError(f"invalid window: start_frame={self.start_frame}, n_frames={self.n_frames}")
        samples_per_frame(self.fps, self.sample_rate)

    @property
    def end_frame(self) -> int:
        """One past the last frame of the window."""
        return self.start_frame + self.n_frames

    @property
    def start_sample(self) -> int:
        return self.start_frame * samples_per_frame(self.fps, self.sample_rate)

    @property
    def n_samples(self) -> int:
        return self.n_frames * samples_per_frame(self.fps, self.sample_rate)

    @property
    def start_time(self) -> float:
        return self.start_frame / self.fps

    @property
    def end_time(self) -> float:
        return self.end_frame / self.fps

    def frames_of(self, frames: np.ndarray) -> np.ndarray:
        """This window's frames of a (T, ...) array; raises if the array is too short."""
        if self.end_frame > len(frames):
            raise ValueError(f"window ends at frame {self.end_frame} but the video has {len(frames)} frames")
        return frames[self.start_frame : self.end_frame]

    def audio_of(self, audio: np.ndarray) -> np.ndarray:
        """This window's samples of an (N,) (or (..., N)) audio array; raises if the audio is too short."""
        end = self.start_sample + self.n_samples
        if end > audio.shape[-1]:
            raise ValueError(f"window ends at sample {end} but the audio has {audio.shape[-1]} samples")
        return audio[..., self.start_sample : end]


def plan_windows(
    n_frames: int,
    frames_per_window: int = 16,
    policy: Policy = "consecutive",
    stride: int | None = None,
    count: int | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    fps: float = 25,
    sample_rate: int = 16000,
) -> list[ClipWindow]:
    """Cut a video of `n_frames` frames into windows.

    - "consecutive": non-overlapping windows from frame 0 (the test-time protocol); a tail shorter than one
      window is left out.
    - "sliding": windows every `stride` frames (default: half a window).
    - "random": `count` (default 1) windows at uniformly random starts (training); `rng` is a Generator or
      a seed, so a seed reproduces the same windows.
    `count` caps the number of windows for "consecutive" and "sliding" too (the first `count`).
    A video shorter than one window raises ValueError (callers that must use it can pad it first).
    """
    if frames_per_window <= 0:
        raise ValueError(f"frames_per_window must be positive, got {frames_per_window}")
    if n_frames < frames_per_window:
        raise ValueError(
            f"video has {n_frames} frames ({n_frames / fps:.2f} s), shorter than one window of "
            f"{frames_per_window} frames ({frames_per_window / fps:.2f} s)"
        )
    if count is not None and count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    last_start = n_frames - frames_per_window
    if policy == "consecutive":
        starts = list(range(0, last_start + 1, frames_per_window))
    elif policy == "sliding":
        step = stride if stride is not None else max(1, frames_per_window // 2)
        if step <= 0:
            raise ValueError(f"stride must be positive, got {step}")
        starts = list(range(0, last_start + 1, step))
    elif policy == "random":
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        starts = generator.integers(0, last_start + 1, size=count or 1).tolist()
    else:
        raise ValueError(f"unknown policy {policy!r}; use 'consecutive', 'random' or 'sliding'")
    if count is not None:
        starts = starts[:count]
    return [ClipWindow(start, frames_per_window, fps, sample_rate) for start in starts]
