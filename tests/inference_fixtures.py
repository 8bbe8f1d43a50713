"""A tiny detector that reads real windows (face crops + audio), a trained checkpoint of it, media files.

Importing this module registers model "tiny_av". Run as a script, it is the `avforensics` command with
that model registered (the kill-and-rerun test starts `detect` this way, as a process it can SIGKILL).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from avforensics.experiment.config import config_from_dict
from avforensics.media.encode import write_video
from avforensics.models.base import Batch, DetectorModel, Outputs
from avforensics.models.common import masked_bce_with_logits
from avforensics.models.registry import register_model, registered_models

SAMPLE_RATE, FPS = 16000, 25


@dataclass(frozen=True)
class TinyDimensions:
    hidden: int = 16


class TinyAVDetector(DetectorModel):
    """Per-frame colour statistics and per-frame audio energy -> video, audio and fused heads.

    Any window length and crop size: frames (B, T, 3, H, W) are pooled to a 2x2 grid per frame, audio
    (B, T * 640) to a log energy and a zero-crossing rate per frame; mean and spread over time feed the heads.
    """

    name = "tiny_av"
    Dimensions = TinyDimensions
    configs = {"small": TinyDimensions()}

    def __init__(self, dims: TinyDimensions) -> None:
        super().__init__()
        self.dims = dims
        hidden = dims.hidden
        self.video = nn.Sequential(nn.Linear(24, hidden), nn.ReLU())
        self.audio = nn.Sequential(nn.Linear(4, hidden), nn.ReLU())
        self.video_head = nn.Linear(hidden, 1)
        self.audio_head = nn.Linear(hidden, 1)
        self.fusion_head = nn.Linear(2 * hidden, 1)
        self.no_audio = nn.Parameter(torch.zeros(hidden))

    @property
    def audio_head_ignores_video(self) -> bool:
        return True

    def forward(self, batch: Batch) -> Outputs:
        frames = batch["frames"]
        grid = nn.functional.adaptive_avg_pool2d(frames.flatten(0, 1), 2).reshape(*frames.shape[:2], 12)
        video = self.video(torch.cat([grid.mean(1), grid.std(1)], 1))
        per_frame = batch["audio"].reshape(len(frames), frames.shape[1], -1)
        energy = per_frame.pow(2).mean(-1).add(1e-8).log()
        crossings = (per_frame[..., 1:] * per_frame[..., :-1] < 0).float().mean(-1)
        statistics = [energy.mean(1), energy.std(1), crossings.mean(1), crossings.std(1)]
        audio = self.audio(torch.stack(statistics, 1))
        present = batch["audio_present"].to(torch.bool)[:, None]
        fused_audio = torch.where(present, audio, self.no_audio)
        return Outputs(
            logits=self.fusion_head(torch.cat([video, fused_audio], 1)).squeeze(1),
            video_logits=self.video_head(video).squeeze(1),
            audio_logits=self.audio_head(audio).squeeze(1),
        )

    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        present = batch["audio_present"].to(torch.bool)
        return {
            "fused": masked_bce_with_logits(outputs.logits, batch["label"]),
            "video": masked_bce_with_logits(outputs.video_logits, batch["video_label"]),
            "audio": masked_bce_with_logits(outputs.audio_logits, batch["audio_label"], keep=present),
        }


if "tiny_av" not in registered_models():
    register_model(TinyAVDetector)


def tiny_config(corpus: Path, prepared: Path, epochs: int = 3, **data: Any) -> Any:
    """An experiment config training tiny_av on a prepared synthetic corpus (8-frame windows, 32 px)."""
    return config_from_dict({
        "model": {"name": "tiny_av", "config": "small"},
        "data": {
            "dataset": "synthetic", "root": str(corpus), "protocol": "random", "clip_frames": 8,
            "batch_size": 2, "window_policy": "random", "eval_window_policy": "all",
            "options": {"prepared": str(prepared), "image_size": 32,
                        "protocol_params": {"train": 0.5, "val": 0.5, "test": 0.0}},
            **data,
        },
        "optim": {"optimizer": "adam", "lr": 1e-2, "epochs": epochs},
        "trainer": {"precision": "32", "accelerator": "cpu", "devices": 1, "seed": 0,
                    "checkpoint_every_n_steps": 1000, "log_every_n_steps": 1, "progress_bar": False},
    })


def talking_video(path: Path, seconds: float, *, size: int = 64, audio: bool = True, face: bool = True,
                  seed: int = 0) -> Path:
    """A small clip: a bright ellipse "face" on a dark background (none if face=False) and a tone."""
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(seconds * FPS))
    yy, xx = np.mgrid[:size, :size]
    inside = ((xx - size / 2) / (size * 0.2)) ** 2 + ((yy - size / 2) / (size * 0.28)) ** 2 <= 1
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for index in range(n_frames):
        frame = rng.integers(10, 40, (size, size, 3), dtype=np.uint8)
        if face:
            frame[inside] = (200, 160, 130)
        frames[index] = frame
    samples = None
    if audio:
        t = np.arange(n_frames * SAMPLE_RATE // FPS) / SAMPLE_RATE
        samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    write_video(path, frames, FPS, samples, SAMPLE_RATE)
    return path


if __name__ == "__main__":
    from avforensics.cli import main

    sys.exit(main())
