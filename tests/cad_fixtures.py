"""Tiny CAD models and batches for tests: random 2-layer towers, 4 frames of 64 px, 0.16 s of audio."""

from __future__ import annotations

from typing import Any

import torch

from avforensics.models.cad import CADDetector
from avforensics.models.cad.configs import CADDimensions

FRAMES = 4
SIZE = 64
SAMPLES = FRAMES * 640  # 25 fps video, 16 kHz audio

TINY_CLIP: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "image_size": SIZE, "patch_size": 16, "projection_dim": 32, "hidden_act": "quick_gelu",
}
TINY_WHISPER: dict[str, Any] = {
    "d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
    "num_mel_bins": 80, "max_source_positions": 1500,
}
TINY_MODEL: dict[str, Any] = {
    "clip": TINY_CLIP, "clip_weights": None, "whisper": TINY_WHISPER, "whisper_weights": None,
    "num_frames": FRAMES, "pad_audio_to_30s": False, "shared_dim": 16, "shared_heads": 2,
    "embedding_dim": 16, "predictor_hidden": 8, "head_hidden": 8, "head_dropout": 0.0,
    "adapter": {"bottleneck_ratio": 0.5, "attention_heads": 2}, "lora_layers": None, "cache_mb": 16.0,
}


def tiny_cad(**overrides: Any) -> CADDetector:
    return CADDetector(CADDimensions(**{**TINY_MODEL, **overrides}))


def tiny_batch(batch_size: int = 3, seed: int = 0, audio_present: list[bool] | None = None) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    present = torch.tensor(audio_present if audio_present is not None else [True] * batch_size)
    labels = torch.arange(batch_size) % 2
    return {
        "frames": torch.randn(batch_size, FRAMES, 3, SIZE, SIZE, generator=generator),
        "audio": torch.randn(batch_size, SAMPLES, generator=generator) * 0.1,
        "audio_present": present,
        "label": labels,
        "video_label": labels,
        "audio_label": torch.where(present, torch.zeros_like(labels), torch.full_like(labels, -1)),
        "frame_labels": labels[:, None].expand(-1, FRAMES).clone(),
        "video_id": [f"video{seed}-{row}" for row in range(batch_size)],
        "window": torch.zeros(batch_size, dtype=torch.long),
    }
