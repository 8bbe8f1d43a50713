"""The model contract every detector implements, so the engine, evaluation and inference need nothing else.

A detector is an `nn.Module` whose `forward` takes a Batch (dict of tensors, DESIGN.md) and returns
`Outputs`; `losses` names each loss term so configs can weight them and OM-Pareto can tell unimodal terms
from multimodal ones; `gradient_groups` declares the shared parameters on which those terms may conflict.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

Batch = Mapping[str, Tensor]


@dataclass
class Outputs:
    """Logits (pre-sigmoid) of one forward pass; None where a model cannot say.

    `logits` is the overall fake logit per clip (B,); `video_logits` / `audio_logits` the per-modality ones;
    `frame_logits` per-frame fake logits (B, T) where a model predicts them; `embeddings` named feature
    tensors (for analysis and distillation); `extras` anything else worth reporting per clip, e.g. per-frame
    audio-visual distances (B, T) used as a timeline signal.
    """

    logits: Tensor
    video_logits: Tensor | None = None
    audio_logits: Tensor | None = None
    frame_logits: Tensor | None = None
    embeddings: dict[str, Tensor] = field(default_factory=dict)
    extras: dict[str, Tensor] = field(default_factory=dict)

    def probabilities(self) -> dict[str, Tensor | None]:
        """Sigmoid of each head: keys p_fake, p_video_fake, p_audio_fake, p_frame_fake."""
        heads = {
            "p_fake": self.logits,
            "p_video_fake": self.video_logits,
            "p_audio_fake": self.audio_logits,
            "p_frame_fake": self.frame_logits,
        }
        return {name: None if logit is None else torch.sigmoid(logit) for name, logit in heads.items()}


@dataclass
class GradientGroup:
    """Shared parameters on which unimodal and multimodal losses may pull in different directions.

    OM-Pareto (MACB-DF Sec. 3.5) combines, per group, the gradient of the multimodal loss terms with the
    gradient of the unimodal loss terms; parameters outside every group get the plain weighted sum.
    """

    name: str
    parameters: list[nn.Parameter]
    unimodal_losses: tuple[str, ...]
    multimodal_losses: tuple[str, ...]


class DetectorModel(nn.Module, abc.ABC):
    """Base class of every detector. Subclasses set `name`, `Dimensions` and `configs` and implement
    forward/losses.

    `Dimensions` is a frozen dataclass of every setting of the detector (typed, like whisper's
    `ModelDimensions`); `__init__(dims)` takes one instance and keeps it as `self.dims`, and a checkpoint
    stores it, so the model is rebuilt from the checkpoint alone. `configs` maps a configuration name
    ("paper", "small", ...) to a `Dimensions` instance.
    """

    name: ClassVar[str]
    Dimensions: ClassVar[type]
    configs: ClassVar[dict[str, Any]] = {}
    dims: Any

    @abc.abstractmethod
    def forward(self, batch: Batch) -> Outputs:
        """Score a batch of clips."""

    @abc.abstractmethod
    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        """Named unweighted scalar loss terms; the engine weights and combines them."""

    def gradient_groups(self) -> list[GradientGroup]:
        """Parameter groups for OM-Pareto; none by default (then OM-Pareto equals the weighted sum)."""
        return []

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter counts, as the papers report them."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return trainable, total

    def lr_scales(self) -> dict[str, float]:
        """Learning-rate multipliers by parameter-name prefix (e.g. a from-scratch tower next to fine-tuned
        layers); parameters no prefix matches train at the configured lr."""
        return {}

    @property
    def audio_head_ignores_video(self) -> bool:
        """True when the audio head's logit depends on the audio alone (no cross-modal layer before it): then
        inference can score an audio-only file from that head. False by default: the safe answer."""
        return False

    def frozen_backbone_ids(self) -> dict[str, str]:
        """Identifiers (name and weight hash) of frozen pretrained parts, stored in checkpoints."""
        return {}
