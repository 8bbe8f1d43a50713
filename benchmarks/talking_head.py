"""A talking-head test video at broadcast sizes for the speed benchmarks: a real face, camera motion, sound.

skimage's astronaut photo (the one real face photo a registry ships) is filmed by a virtual camera that
sways and slowly zooms, as a handheld interview shot does, with a cut to a wider shot two thirds in;
the sound is a voiced, syllable-rate modulated tone. Encoded once with PyAV (H.264 + AAC) and reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from avforensics.media.encode import write_video

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
FPS, SECONDS, RATE = 30, 8.4, 44100


def _camera_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    photo = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1)[None].float()
    cut = round(count * 2 / 3)
    for index in range(count):
        t = index / FPS
        wide = index >= cut
        half_width = (330.0 if wide else 250.0 - 4.0 * t) * (1 + 0.01 * np.sin(2.1 * t))
        centre_x = 225.0 + 12.0 * np.sin(1.3 * t) + (30.0 if wide else 0.0)
        centre_y = 150.0 + 6.0 * np.sin(0.9 * t + 1.0)
        xs = torch.linspace(centre_x - half_width, centre_x + half_width, width) / 256 - 1
        ys = torch.linspace(-1, 1, height) * half_width * height / width / 256 + centre_y / 256 - 1
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([grid_x, grid_y], dim=-1)[None].float()
        frame = F.grid_sample(photo, grid, padding_mode="border", align_corners=False)[0]
        yield frame.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _voice(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 0.5 * t)) / RATE
    voiced = sum(np.sin(k * pitch) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, 1)
    return np.stack([0.15 * voiced * syllables] * 2).astype(np.float32)


def talking_head(folder: Path, size: str) -> Path:
    """`folder`/talking_head_<size>.mp4 (30 fps, 8.4 s, stereo 44.1 kHz), written on first use."""
    path = Path(folder) / f"talking_head_{size}.mp4"
    if not path.is_file():
        width, height = SIZES[size]
        count = round(SECONDS * FPS)
        partial = path.with_suffix(".partial.mp4")
        write_video(partial, _camera_frames(count, width, height), FPS, _voice(SECONDS), RATE,
                    size=(width, height))
        partial.rename(path)
    return path
