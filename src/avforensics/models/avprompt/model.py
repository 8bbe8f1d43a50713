"""Multi-task audio-visual prompt learning (Miao et al., AAAI 2025) as a `DetectorModel`.

Two frozen foundation models read through learnable prompts (visual.py, audio.py), aligned per frame
(alignment.py), fused, and trained with three classification losses plus L_CMFM (losses.py), Eq. 16.
docs/models/avprompt.md maps every equation to the code and lists the readings chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from avforensics.features.logmel import HOP_LENGTH, SAMPLE_RATE
from avforensics.media.clips import samples_per_frame
from avforensics.models.avprompt.alignment import FrameAlignment, cosine_distance
from avforensics.models.avprompt.audio import AudioBranch
from avforensics.models.avprompt.losses import CMFMWeights, cmfm_loss
from avforensics.models.avprompt.visual import VisualBranch
from avforensics.models.base import Batch, DetectorModel, GradientGroup, Outputs
from avforensics.models.common import (
    MLPHead,
    backbone_fingerprint,
    build_backbone,
    check_fused_readout,
    fake_if_either_logit,
    masked_bce_with_logits,
)
from avforensics.models.registry import register_model

FPS = 25  # the paper resamples every video to 25 fps and its audio to 16 kHz
# 640 samples per frame = 4 mel hops of 160 = 2 Whisper tokens: k_a = s_a = N_t / 2T = 2 (Eq. 13).
TOKENS_PER_FRAME = samples_per_frame(FPS, SAMPLE_RATE) // (2 * HOP_LENGTH)
BRANCHES = ("visual", "audio")

@dataclass(frozen=True)
class AVPromptDimensions:
    """Every setting of an avprompt detector: a named configuration, and what a checkpoint stores."""

    clip: str | Mapping[str, Any]
    clip_weights: str | None
    whisper: str | Mapping[str, Any]
    whisper_weights: str | None
    train_clip: bool
    tower_lr_scale: float
    backbone_seed: int
    num_frames: int
    visual_prompts: int
    visual_prompt_mode: str
    visual_readout: str
    audio_prompt_dim: int
    audio_global_token: bool
    fused_dim: int
    head_hidden: int
    branches: Sequence[str]
    cmfm_level: str
    cmfm_alpha: float
    cmfm_beta: float
    cmfm_gamma: float
    fused_readout: str = "classifier"


_PAPER = AVPromptDimensions(
    clip="clip-vit-base-patch32",
    clip_weights="openai/clip-vit-base-patch32",
    whisper="whisper-base",
    whisper_weights="openai/whisper-base",  # OpenAI's fp32 release on the hub, as the paper used
    train_clip=False,
    tower_lr_scale=1.0,
    backbone_seed=0,
    num_frames=16,
    visual_prompts=1,
    visual_prompt_mode="keep",
    visual_readout="prompt",
    audio_prompt_dim=512,
    audio_global_token=True,
    fused_dim=256,
    head_hidden=384,
    branches=["visual", "audio"],
    cmfm_level="frame",
    cmfm_alpha=2.0,
    cmfm_beta=2.0,
    cmfm_gamma=1.0,
    fused_readout="classifier",
)
# CPU configuration: a random CLIP-shaped micro tower with a convolutional stem on 112 px faces (no CLIP
# weights exist offline), the real Whisper base, 4-frame windows, narrower prompts and heads. A random tower
# carries no prior for prompts to steer, so it is trained (measured against a frozen one in
# docs/models/avprompt.md, "The small configuration"), at 3 x the base lr: from scratch it learns slower
# than the prompts over Whisper, and above 3e-4 its transformer does not settle (docs/backbones.md); its
# frame feature is the class token, through which a from-scratch tower learns (a deviation, same doc).
_SMALL = replace(
    _PAPER,
    clip="clip-micro-convstem",
    clip_weights=None,
    whisper_weights="whisper-base",  # the offline install (`avforensics weights install whisper-base`)
    train_clip=True,
    tower_lr_scale=3.0,
    visual_readout="cls",
    num_frames=4,
    audio_prompt_dim=64,
    fused_dim=64,
    head_hidden=64,
)


@register_model
class AVPromptDetector(DetectorModel):
    """Fused, video and audio fake logits per window, plus per-frame audio-visual cosine distances.

    `branches` selects the Table 4 rows: both (the method), or one branch alone, whose head then gives
    the overall logit. Rows whose `audio_present` is False: the fusion sees a learned "no audio" feature
    (initialised to zero) in place of f'_a, the audio head's output is excluded from L_a, those rows take
    no part in L_CMFM, and their `av_distance` is NaN (there is no audio to be in sync with).
    """

    name = "avprompt"
    Dimensions = AVPromptDimensions
    configs = {"paper": _PAPER, "small": _SMALL}

    def __init__(self, dims: AVPromptDimensions) -> None:
        super().__init__()
        self.dims = dims
        self.noisy_or_readout = check_fused_readout(dims.fused_readout)
        self.branches = tuple(dims.branches)
        unknown = set(self.branches) - set(BRANCHES)
        if not self.branches or unknown or len(set(self.branches)) != len(self.branches):
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {list(dims.branches)}")
        if dims.cmfm_level not in ("frame", "segment"):
            raise ValueError(f"cmfm_level must be 'frame' or 'segment', got {dims.cmfm_level!r}")
        if dims.num_frames < 1:
            raise ValueError(f"num_frames must be positive, got {dims.num_frames}")
        if not dims.tower_lr_scale > 0:
            raise ValueError(f"tower_lr_scale must be positive, got {dims.tower_lr_scale}")
        self.num_frames = dims.num_frames
        self.tower_lr_scale = dims.tower_lr_scale
        self.audio_samples = dims.num_frames * samples_per_frame(FPS, SAMPLE_RATE)
        self.cmfm_level = dims.cmfm_level
        self.cmfm_weights = CMFMWeights(dims.cmfm_alpha, dims.cmfm_beta, dims.cmfm_gamma)
        self.visual: VisualBranch | None = None
        self.audio: AudioBranch | None = None
        if "visual" in self.branches:
            tower = build_backbone("clip", dims.clip, dims.clip_weights, dims.backbone_seed)
            self.visual = VisualBranch(
                tower, dims.visual_prompts, dims.visual_prompt_mode, train_backbone=dims.train_clip,
                readout=dims.visual_readout,
            )
            self.video_head = MLPHead(self.visual.dim, dims.head_hidden)
        if "audio" in self.branches:
            encoder = build_backbone("whisper", dims.whisper, dims.whisper_weights, dims.backbone_seed)
            tokens = dims.num_frames * TOKENS_PER_FRAME  # N_t / 2
            self.audio = AudioBranch(encoder, tokens, dims.audio_prompt_dim, dims.audio_global_token)
            self.audio_head = MLPHead(self.audio.dim, dims.head_hidden)
        if self.visual is not None and self.audio is not None:
            self.alignment = FrameAlignment(self.visual.dim, self.audio.dim, dims.fused_dim, TOKENS_PER_FRAME)
            self.no_audio = nn.Parameter(torch.zeros(dims.fused_dim))
            self.fusion_head = MLPHead(2 * dims.fused_dim, dims.head_hidden)

    @property
    def fused(self) -> bool:
        return self.visual is not None and self.audio is not None

    @property
    def audio_head_ignores_video(self) -> bool:
        return self.audio is not None  # the audio branch reads the log-mel alone (Eq. 11)

    def forward(self, batch: Batch) -> Outputs:
        embeddings: dict[str, Tensor] = {}
        extras: dict[str, Tensor] = {}
        video_logits = audio_logits = None
        if self.visual is not None:
            visual_frames = self.visual(self._frames(batch))  # Eq. 10
            embeddings["video"] = visual_frames.mean(1)  # Eq. 7
            video_logits = self.video_head(embeddings["video"]).squeeze(-1)
        if self.audio is not None:
            audio_tokens = self.audio(self._mel(batch))  # Eq. 11
            embeddings["audio"] = audio_tokens.mean(1)  # Eq. 9
            audio_logits = self.audio_head(embeddings["audio"]).squeeze(-1)
        if not self.fused:
            logits = video_logits if video_logits is not None else audio_logits
            assert logits is not None  # at least one branch exists (checked in __init__)
            return Outputs(logits, video_logits, audio_logits, embeddings=embeddings)
        aligned_visual, aligned_audio = self.alignment(visual_frames, audio_tokens)  # Eq. 12-13
        present = self._audio_present(batch)[:, None, None]
        fusion_audio = torch.where(present, aligned_audio, self.no_audio.to(aligned_audio.dtype))
        embeddings["fused"] = torch.cat([aligned_visual, fusion_audio], dim=-1).mean(1)  # f_f, pooled
        embeddings["video_frames"], embeddings["audio_frames"] = aligned_visual, aligned_audio
        distance = cosine_distance(aligned_visual, aligned_audio)
        extras["av_distance"] = torch.where(present[..., 0], distance, torch.full_like(distance, torch.nan))
        logits = self.fusion_head(embeddings["fused"]).squeeze(-1)
        if self.noisy_or_readout:
            assert video_logits is not None and audio_logits is not None
            logits = fake_if_either_logit(logits, video_logits, audio_logits, present[:, 0, 0])
        return Outputs(logits, video_logits, audio_logits, embeddings=embeddings, extras=extras)

    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        """Named terms of Eq. 16: video (L_v), audio (L_a), fused (L_f), cmfm (L_CMFM)."""
        terms: dict[str, Tensor] = {}
        if outputs.video_logits is not None:
            terms["video"] = masked_bce_with_logits(outputs.video_logits, batch["video_label"])
        if outputs.audio_logits is not None:
            present = self._audio_present(batch)
            terms["audio"] = masked_bce_with_logits(outputs.audio_logits, batch["audio_label"], keep=present)
        if self.fused:
            terms["fused"] = masked_bce_with_logits(outputs.logits, batch["label"])
            terms["cmfm"] = cmfm_loss(
                outputs.embeddings["video_frames"],
                outputs.embeddings["audio_frames"],
                batch["label"],
                self._audio_present(batch),
                self.cmfm_weights,
                self.cmfm_level,
            )
        return terms

    def gradient_groups(self) -> list[GradientGroup]:
        """Each branch's prompts (and a trained tower) serve its own head and the fusion: may conflict."""
        if not self.fused:
            return []
        multimodal = ("fused", "cmfm")
        groups = []
        for branch, unimodal in ((self.visual, "video"), (self.audio, "audio")):
            shared = [p for p in branch.parameters() if p.requires_grad]
            groups.append(GradientGroup(f"{unimodal}_branch", shared, (unimodal,), multimodal))
        return groups

    def lr_scales(self) -> dict[str, float]:
        """The visual branch and its head at `tower_lr_scale` x lr: a from-scratch tower learns slower than
        prompts on pretrained features (the paper's 1e-4 was set for those)."""
        if self.visual is None or self.tower_lr_scale == 1.0:
            return {}
        return {"visual.": self.tower_lr_scale, "video_head.": self.tower_lr_scale}

    def frozen_backbone_ids(self) -> dict[str, str]:
        ids = {}
        if self.visual is not None and not any(p.requires_grad for p in self.visual.backbone.parameters()):
            ids["clip"] = backbone_fingerprint(self.visual.backbone)
        if self.audio is not None:
            ids["whisper"] = backbone_fingerprint(self.audio.backbone)
        return ids

    def _frames(self, batch: Batch) -> Tensor:
        frames = batch["frames"]
        if frames.dim() != 5 or frames.shape[1] != self.num_frames:
            raise ValueError(
                f"avprompt was built for windows of {self.num_frames} frames; got frames of shape "
                f"{tuple(frames.shape)} (expected (B, {self.num_frames}, 3, H, W))"
            )
        return frames

    def _mel(self, batch: Batch) -> Tensor:
        """Log-mel of the window: from `audio` samples (computed here), or a precomputed `mel`."""
        assert self.audio is not None
        if "audio" in batch:
            audio = batch["audio"]
            if audio.dim() != 2 or audio.shape[1] != self.audio_samples:
                raise ValueError(
                    f"avprompt was built for {self.num_frames}-frame windows of {self.audio_samples} audio "
                    f"samples at {SAMPLE_RATE} Hz; got audio of shape {tuple(audio.shape)}"
                )
            return self.audio.log_mel(audio)
        if "mel" in batch:
            return batch["mel"]
        raise KeyError("avprompt needs 'audio' (B, N) samples or a 'mel' (B, mels, frames) in the batch")

    @staticmethod
    def _audio_present(batch: Batch) -> Tensor:
        return batch["audio_present"].to(torch.bool)
