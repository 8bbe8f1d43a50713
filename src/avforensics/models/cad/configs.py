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

from dataclasses import dataclass
from typing import Any, Literal

Modalities = Literal["audio_visual", "video"]
Distillation = Literal["simsiam", "kl", "none"]
SharedVideo = Literal["frozen", "specific"]
UnimodalHeads = Literal["probe", "joint"]


@dataclass(frozen=True)
class CADDimensions:
    """Every setting of a CAD detector: a named configuration, and what a checkpoint stores."""

    clip: str
    clip_weights: str | None
    whisper: str
    whisper_weights: str | None
    num_frames: int = 16
    fps: float = 25.0
    pad_audio_to_30s: bool = True
    modalities: Modalities = "audio_visual"
    cross_attention: bool = True
    alignment_loss: bool = True
    distillation: Distillation = "simsiam"
    freeze_shared: bool = True
    shared_video: SharedVideo = "frozen"
    train_video_backbone: bool = False
    video_backbone_lr_scale: float = 1.0
    shared_dim: int = 512
    shared_heads: int = 8
    embedding_dim: int = 512
    predictor_hidden: int = 128
    head_hidden: int = 256
    head_dropout: float = 0.5
    unimodal_heads: UnimodalHeads = "probe"
    fused_readout: str = "classifier"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] | list[str] = ("q_proj", "v_proj")
    lora_layers: list[int] | None = None
    adapter: dict[str, Any] | None = None
    backbone_seed: int = 0
    cache_mb: float = 1024.0
    cache_dir: str | None = None
    # Recompute the adapted towers' layer activations in the backward pass: less memory (a larger batch on
    # one GPU), about a third more compute, the same gradients.
    activation_checkpointing: bool = False


CONFIGS: dict[str, CADDimensions] = {
    "paper": CADDimensions(
        clip="clip-vit-base-patch16",
        clip_weights="openai/clip-vit-base-patch16",
        shared_video="frozen",
        whisper="whisper-small",
        whisper_weights="openai/whisper-small",
        num_frames=16,
        pad_audio_to_30s=True,
        shared_dim=512,
        shared_heads=8,
        embedding_dim=512,
        predictor_hidden=128,
        head_hidden=256,
        head_dropout=0.5,
        unimodal_heads="probe",
        fused_readout="classifier",
        lora_rank=8,
        lora_alpha=16,
        cache_mb=2048.0,
    ),
    "small": CADDimensions(
        clip="clip-nano-convstem",
        clip_weights=None,
        train_video_backbone=True,
        video_backbone_lr_scale=1.0,
        shared_video="specific",
        whisper="whisper-base",
        whisper_weights="whisper-base",
        num_frames=4,
        pad_audio_to_30s=False,
        adapter={"layers": [0], "spatial_kernels": [3], "temporal_kernels": [3], "conv_depth": 1},
        shared_dim=64,
        shared_heads=4,
        embedding_dim=64,
        predictor_hidden=16,
        head_hidden=64,
        head_dropout=0.1,
        unimodal_heads="joint",
        fused_readout="classifier",
        lora_rank=8,
        lora_alpha=16,
        cache_mb=512.0,
    ),
}
