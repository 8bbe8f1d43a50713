"""In-memory videos with forgery methods, split by the real protocol functions, for evaluation tests.

Importing this module registers dataset "toy_av_methods" (train/val/test parts from `data.protocol` run on
VideoRecords of the toy videos, so leave-one-method-out works as on a real corpus) and model
"toy_av_frames" (the engine's toy detector plus per-frame scores, so frame-level metrics are exercised).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor
from train_fixtures import ENGINE_CONFIG, ToyAVDetector

from avforensics.data.protocols import make_split
from avforensics.data.records import VideoRecord
from avforensics.experiment.config import DataConfig, ExperimentConfig, load_config
from avforensics.experiment.data import register_dataset
from avforensics.models.base import Batch, Outputs
from avforensics.models.registry import register_model, registered_models

# "bright" fakes the video track (brighter frames), "tone" the audio track (an added tone).
METHODS = ("real", "bright", "tone", "bright+tone")
CATEGORIES = {"real": "RVRA", "bright": "FVRA", "tone": "RVFA", "bright+tone": "FVFA"}


def toy_records(videos: int) -> list[VideoRecord]:
    """Videos cycling through METHODS, with per-modality labels that follow from the method."""
    records = []
    for index in range(videos):
        method = METHODS[index % len(METHODS)]
        video_fake, audio_fake = int("bright" in method), int("tone" in method)
        records.append(VideoRecord(
            id=f"m{index:03d}", path=f"toy/m{index:03d}.mp4", label=max(video_fake, audio_fake),
            video_label=video_fake, audio_label=audio_fake, dataset="toy_av_methods", method=method,
            category=CATEGORIES[method], identity=f"person{index % 5}",
        ))
    return records


class MethodClips:
    """Windows of the chosen records; content drawn from (video, window) so every part sees the same video."""

    def __init__(self, records: list[VideoRecord], policy: str, windows: int, frames: int, size: int,
                 samples: int, seed: int) -> None:
        self.records, self.policy, self.windows = records, policy, windows
        self.frames, self.size, self.samples, self.seed = frames, size, samples, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records) if self.policy == "random" else len(self.records) * self.windows

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.policy == "random":
            position = index
            pick = torch.Generator().manual_seed(self.seed * 7919 + self.epoch * 104729 + index)
            window = int(torch.randint(0, self.windows, (), generator=pick))
        else:
            position, window = divmod(index, self.windows)
        record = self.records[position]
        number = int(record.id[1:])
        generator = torch.Generator().manual_seed(number * 1000 + window)
        frames = torch.randn(self.frames, 3, self.size, self.size, generator=generator)
        frames += 0.5 * record.video_label
        audio = torch.randn(self.samples, generator=generator)
        audio += 1.5 * record.audio_label * torch.sin(torch.arange(self.samples) * 0.7)
        return {
            "video_id": record.id, "window": window, "frames": frames, "audio": audio, "audio_present": True,
            "label": record.label, "video_label": record.video_label, "audio_label": record.audio_label,
            "frame_labels": torch.full((self.frames,), record.video_label, dtype=torch.long),
            "category": record.category, "method": record.method,
        }


@register_dataset("toy_av_methods")
def method_dataset(config: DataConfig, split: str, window_policy: str) -> MethodClips:
    options = config.options
    seed = int(options.get("seed", 0))
    split_ids = getattr(make_split(config.protocol, toy_records(int(options.get("videos", 40))), seed,
                                   **(options.get("protocol_params") or {})), split)
    records = [record for record in toy_records(int(options.get("videos", 40))) if record.id in split_ids]
    return MethodClips(records, window_policy, windows=int(options.get("windows", 2)),
                       frames=config.clip_frames, size=int(options.get("size", 8)),
                       samples=int(options.get("samples", 64)), seed=seed)


class ToyFrameDetector(ToyAVDetector):
    """The toy detector with a per-frame head: the video head applied to each frame's features."""

    name = "toy_av_frames"

    def forward(self, batch: Batch) -> Outputs:
        outputs = super().forward(batch)
        per_frame = torch.relu(self.video_encoder(self.backbone(batch["frames"].flatten(2))))
        frame_logits: Tensor = self.video_head(per_frame).squeeze(-1)
        return dataclasses.replace(outputs, frame_logits=frame_logits)


def method_config(model: str = "toy_av", protocol: str = "random", epochs: int = 2,
                  params: dict[str, Any] | None = None) -> ExperimentConfig:
    """The engine's test config on the method corpus (40 videos, 2 windows each), a few steps long."""
    params = params if params is not None else {"train": 0.6, "val": 0.2, "test": 0.2, "stratify": True}
    return load_config(ENGINE_CONFIG, [
        f"model.name={model}", "data.dataset=toy_av_methods", f"data.protocol={protocol}",
        f"data.options={{videos: 40, windows: 2, size: 8, samples: 64, protocol_params: {params}}}",
        f"optim.epochs={epochs}", "optim.milestones=[]", "optim.schedule=constant",
        "trainer.checkpoint_every_n_steps=100",
    ])


if "toy_av_frames" not in registered_models():
    register_model(ToyFrameDetector)
