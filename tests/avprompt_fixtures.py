"""Tiny avprompt models and batches: random micro backbones so tests need no weights and run in seconds."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from avforensics.models.avprompt import AVPromptDetector
from avforensics.models.registry import build_model

FRAMES = 4
SAMPLES = FRAMES * 640
IMAGE = 32
TINY_CLIP = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": IMAGE,
    "patch_size": 16,
    "projection_dim": 16,
    "hidden_act": "quick_gelu",
}
TINY_WHISPER = {
    "d_model": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    # Whisper's own init (std 0.02) lets the sinusoid positions drown a random stem's content; trained
    # weights do not, so the random test encoder gets a larger init.
    "init_std": 0.2,
}


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """The paper config's switches on micro random backbones and 4-frame windows."""
    config = dataclasses.asdict(AVPromptDetector.configs["paper"])
    config.update(
        clip=TINY_CLIP,
        clip_weights=None,
        whisper=TINY_WHISPER,
        whisper_weights=None,
        num_frames=FRAMES,
        audio_prompt_dim=8,
        fused_dim=16,
        head_hidden=16,
    )
    config.update(overrides)
    return config


def tiny_model(**overrides: Any) -> AVPromptDetector:
    model = build_model("avprompt", tiny_config(**overrides))
    assert isinstance(model, AVPromptDetector)
    return model


def tiny_batch(batch_size: int = 4, seed: int = 0) -> dict[str, Tensor]:
    """Random frames and audio; labels alternate real/fake; the last row has no audio track."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(batch_size) % 2
    present = torch.ones(batch_size, dtype=torch.bool)
    present[-1] = False
    audio = torch.randn(batch_size, SAMPLES, generator=generator) * 0.1
    audio[~present] = 0.0
    audio_labels = labels.clone()
    audio_labels[~present] = -1
    return {
        "frames": torch.randn(batch_size, FRAMES, 3, IMAGE, IMAGE, generator=generator),
        "audio": audio,
        "audio_present": present,
        "label": labels,
        "video_label": labels.clone(),
        "audio_label": audio_labels,
        "frame_labels": labels[:, None].expand(batch_size, FRAMES).clone(),
    }
