"""A tiny MACB-DF configuration and hand-labelled batches for the macbdf tests (fast on one CPU core)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from avforensics.models.macbdf import MACBDF
from avforensics.models.macbdf.model import MACBDFDimensions

TINY: dict[str, Any] = {
    **dataclasses.asdict(MACBDF.configs["small"]),
    "frames": 4,
    "image_size": 32,
    "video_patch": 8,
    "video_dim": 16,
    "video_depth": 1,
    "video_heads": 2,
    "audio_patch": [16, 4],
    "audio_dim": 16,
    "audio_depth": 1,
    "audio_heads": 2,
    "channels": 16,
    "embed_dim": 8,
    "depth": 2,
    "video_scales": [[5, 2], [3, 1]],
    "audio_scales": [[5, 2], [3, 1]],
    "rfmf_layers": 1,
    "rfmf_heads": 2,
    "head_reductions": 1,
    "frame_head_hidden": 8,
    "dropout": 0.0,
    "queue_size": 8,
    "nearest_negatives": 3,
    "weight_heads": 2,
}


def tiny_model(**overrides: Any) -> MACBDF:
    torch.manual_seed(0)
    return MACBDF(MACBDFDimensions(**{**TINY, **overrides}))


def tiny_batch(
    seed: int = 0, audio_present: tuple[bool, ...] = (True, True, True, True, True, False)
) -> dict:
    """Six clips: real, fake-both, real, fake-audio (second half of the frames), fake-video, unknown."""
    generator = torch.Generator().manual_seed(seed)
    size = len(audio_present)
    frames = TINY["frames"]
    return {
        "frames": torch.randn(size, frames, 3, 32, 32, generator=generator),
        "audio": 0.1 * torch.randn(size, frames * 640, generator=generator),
        "audio_present": torch.tensor(audio_present),
        "label": torch.tensor([0, 1, 0, 1, 1, -1])[:size],
        "video_label": torch.tensor([0, 1, 0, 0, 1, -1])[:size],
        "audio_label": torch.tensor([0, 1, 0, 1, 0, -1])[:size],
        "frame_labels": torch.tensor(
            [[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [-1, -1, -1, -1]]
        )[:size],
        "video_id": [f"v{i}" for i in range(size)],
    }
