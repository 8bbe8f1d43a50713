"""A toy detector and in-memory clips with a learnable signal, so engine tests need no media or weights.

Importing this module registers model "toy_av" and dataset "toy_av". Run as a script, it is the
`avforensics` command with those registered (the DDP test starts it under torchrun).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.experiment.config import DataConfig
from avforensics.experiment.data import register_dataset
from avforensics.models.base import Batch, DetectorModel, GradientGroup, Outputs
from avforensics.models.registry import register_model, registered_models

ENGINE_CONFIG = Path(__file__).resolve().parent / "engine_test.yaml"


@dataclass(frozen=True)
class ToyDimensions:
    size: int = 8
    samples: int = 64
    hidden: int = 16
    dropout: float = 0.2
    backbone_seed: int = 0


class ToyAVDetector(DetectorModel):
    """Frozen random "backbone" + trainable video/audio heads and a fusion head (with dropout).

    The frozen part is seeded by `backbone_seed`, so checkpoints may leave it out, as they do real backbones.
    """

    name = "toy_av"
    Dimensions = ToyDimensions
    configs = {"small": ToyDimensions()}

    def __init__(self, dims: ToyDimensions) -> None:
        super().__init__()
        self.dims = dims
        size, samples, hidden, dropout, backbone_seed = (
            dims.size, dims.samples, dims.hidden, dims.dropout, dims.backbone_seed
        )
        generator = torch.Generator().manual_seed(backbone_seed)
        self.backbone = nn.Linear(3 * size * size, hidden)
        with torch.no_grad():
            self.backbone.weight.copy_(torch.randn(self.backbone.weight.shape, generator=generator) * 0.05)
            self.backbone.bias.zero_()
        self.backbone.requires_grad_(False)
        self.video_encoder = nn.Linear(hidden, hidden)
        self.audio_encoder = nn.Linear(samples, hidden)
        self.video_head = nn.Linear(hidden, 1)
        self.audio_head = nn.Linear(hidden, 1)
        self.fusion_head = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    def forward(self, batch: Batch) -> Outputs:
        frames = batch["frames"]
        video = self.backbone(frames.flatten(2)).mean(1)
        video = self.dropout(torch.relu(self.video_encoder(video)))
        audio = self.dropout(torch.relu(self.audio_encoder(batch["audio"])))
        if self.training:
            self.steps_seen += 1
        return Outputs(
            logits=self.fusion_head(torch.cat([video, audio], 1)).squeeze(1),
            video_logits=self.video_head(video).squeeze(1),
            audio_logits=self.audio_head(audio).squeeze(1),
        )

    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        def bce(logits: Tensor | None, labels: Tensor) -> Tensor:
            assert logits is not None
            return F.binary_cross_entropy_with_logits(logits, labels.float())

        return {
            "fused": bce(outputs.logits, batch["label"]),
            "video": bce(outputs.video_logits, batch["video_label"]),
            "audio": bce(outputs.audio_logits, batch["audio_label"]),
        }

    def gradient_groups(self) -> list[GradientGroup]:
        shared = [*self.video_encoder.parameters(), *self.audio_encoder.parameters()]
        return [GradientGroup("encoders", shared, ("video", "audio"), ("fused",))]

    def frozen_backbone_ids(self) -> dict[str, str]:
        digest = hashlib.sha256(self.backbone.weight.detach().numpy().tobytes()).hexdigest()[:16]
        return {"toy_backbone": digest}


class ToyClips:
    """Videos of `windows` windows; fake video tracks are brighter, fake audio tracks carry a tone.

    The random policy returns one window per video per epoch, chosen from (seed, epoch, index) only.
    """

    def __init__(self, videos: int, windows: int, seed: int, policy: str, frames: int, size: int,
                 samples: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.video_labels = torch.randint(0, 2, (videos,), generator=generator)
        self.audio_labels = torch.randint(0, 2, (videos,), generator=generator)
        self.frames = torch.randn(videos, windows, frames, 3, size, size, generator=generator)
        self.frames += 0.5 * self.video_labels.view(-1, 1, 1, 1, 1, 1)
        tone = torch.sin(torch.arange(samples) * 0.7)
        self.audio = torch.randn(videos, windows, samples, generator=generator)
        self.audio += 1.5 * self.audio_labels.view(-1, 1, 1) * tone
        self.videos, self.windows, self.seed, self.policy = videos, windows, seed, policy
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.videos if self.policy == "random" else self.videos * self.windows

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.policy == "random":
            video = index
            pick = torch.Generator().manual_seed(self.seed * 7919 + self.epoch * 104729 + index)
            window = int(torch.randint(0, self.windows, (), generator=pick))
        else:
            video, window = divmod(index, self.windows)
        video_label, audio_label = int(self.video_labels[video]), int(self.audio_labels[video])
        return {
            "video_id": f"v{video:03d}",
            "window": window,
            "frames": self.frames[video, window],
            "audio": self.audio[video, window],
            "audio_present": True,
            "label": max(video_label, audio_label),
            "video_label": video_label,
            "audio_label": audio_label,
            "category": f"{'F' if video_label else 'R'}V{'F' if audio_label else 'R'}A",
            "method": "toy",
        }


@register_dataset("toy_av")
def toy_dataset(config: DataConfig, split: str, window_policy: str) -> ToyClips:
    options = config.options
    seeds = {"train": 1, "val": 2, "test": 3}
    return ToyClips(
        videos=int(options.get(f"{split}_videos", 32)),
        windows=int(options.get("windows", 3)),
        seed=seeds[split] + int(options.get("seed", 0)) * 10,
        policy=window_policy,
        frames=config.clip_frames,
        size=int(options.get("size", 8)),
        samples=int(options.get("samples", 64)),
    )


if "toy_av" not in registered_models():
    register_model(ToyAVDetector)

# Run as a script with this variable set to N, the process group is SIGKILLed right after the first save of
# checkpoints/last.ckpt at step N or later: a deterministic kill at an exact point of training.
KILL_AFTER_LAST_CHECKPOINT = "AVFORENSICS_TEST_KILL_AFTER_LAST_CHECKPOINT_STEP"


def kill_after_last_checkpoint(step: int) -> None:
    """Make every Trainer kill its process group once it has written last.ckpt at `step` or later."""
    import pytorch_lightning as pl

    save = pl.Trainer.save_checkpoint

    def save_then_die(trainer: pl.Trainer, filepath: Any, *args: Any, **kwargs: Any) -> None:
        save(trainer, filepath, *args, **kwargs)
        if Path(filepath).name == "last.ckpt" and trainer.global_step >= step:
            os.killpg(os.getpgid(0), signal.SIGKILL)

    pl.Trainer.save_checkpoint = save_then_die  # type: ignore[method-assign]


if __name__ == "__main__":
    from avforensics.cli import main

    if KILL_AFTER_LAST_CHECKPOINT in os.environ:
        kill_after_last_checkpoint(int(os.environ[KILL_AFTER_LAST_CHECKPOINT]))
    sys.exit(main())
