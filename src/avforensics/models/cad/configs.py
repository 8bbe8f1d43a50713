"""CAD's named configurations: the paper's (GPU, published weights) and a small one for 2 CPU cores.

paper: CLIP ViT-B/16 + Whisper-small (Sec. 4.1), 16 frames, audio padded to 30 s, LoRA r=8 alpha=16.
small: a random one-block CLIP-shaped tower with a convolutional stem on 112 px faces ("clip-nano-convstem":
       no CLIP weights exist offline). The specific branch trains it at the configured rate (a frozen random
       tower gives StA nothing to adapt: docs/models/cad.md), with StA on that block, one kernel per stream
       and one conv per kernel; the shared branch cross-attends that tower's per-frame features with frozen
       Whisper's ("shared_video: specific": a frozen random tower carries no lip motion). Real Whisper-base
       weights (installed offline) with LoRA on every layer, as in the paper; 4-frame windows of unpadded
       audio (0.16 s); narrower fusion layers; unimodal heads trained jointly. The cache then holds
       Whisper's frozen features and the input of its first layer, which do not depend on the frames.
"""

from __future__ import annotations

from typing import Any

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {
        "clip": "clip-vit-base-patch16",
        "clip_weights": "openai/clip-vit-base-patch16",
        "shared_video": "frozen",
        "whisper": "whisper-small",
        "whisper_weights": "openai/whisper-small",
        "num_frames": 16,
        "pad_audio_to_30s": True,
        "shared_dim": 512,
        "shared_heads": 8,
        "embedding_dim": 512,
        "predictor_hidden": 128,
        "head_hidden": 256,
        "head_dropout": 0.5,
        "unimodal_heads": "probe",
        "fused_readout": "classifier",
        "lora_rank": 8,
        "lora_alpha": 16,
        "cache_mb": 2048.0,
    },
    "small": {
        "clip": "clip-nano-convstem",
        "clip_weights": None,
        "train_video_backbone": True,
        "video_backbone_lr_scale": 1.0,
        "shared_video": "specific",
        "whisper": "whisper-base",
        "whisper_weights": "whisper-base",
        "num_frames": 4,
        "pad_audio_to_30s": False,
        "adapter": {"layers": [0], "spatial_kernels": [3], "temporal_kernels": [3], "conv_depth": 1},
        "shared_dim": 64,
        "shared_heads": 4,
        "embedding_dim": 64,
        "predictor_hidden": 16,
        "head_hidden": 64,
        "head_dropout": 0.1,
        "unimodal_heads": "joint",
        "fused_readout": "classifier",
        "lora_rank": 8,
        "lora_alpha": 16,
        "cache_mb": 512.0,
    },
}
