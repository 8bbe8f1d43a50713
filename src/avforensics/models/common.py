"""Pieces every detector shares: losses over partly-unknown labels, MLP heads, backbones built from a config.

Labels follow DESIGN.md: 1 fake, 0 real, -1 unknown (e.g. the audio label of a dataset that only labels
videos). A loss over such labels averages over the known rows only, so unknown rows neither pull the head
towards "real" nor dilute the mean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.loading import load_clip_vision, load_whisper_encoder
from avforensics.backbones.sizes import (
    build_clip_vision,
    build_whisper_encoder,
    clip_size_name,
    clip_vision_config,
    whisper_encoder_config,
    whisper_size_name,
)
from avforensics.backbones.whisper import HookedWhisperEncoder

UNKNOWN_LABEL = -1
BackboneKind = Literal["clip", "whisper"]


def masked_bce_with_logits(logits: Tensor, labels: Tensor, keep: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy over the rows whose label is known (0/1) and, if given, `keep` is True.

    Rows labelled -1 are ignored. With no usable row the result is a zero that still depends on `logits`,
    so a backward pass (and DDP, which expects every trainable parameter in the graph) works unchanged.
    Non-finite logits of ignored rows do not leak into the result.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    valid_values = (labels == 0) | (labels == 1) | (labels == UNKNOWN_LABEL)
    if not bool(valid_values.all()):
        bad = labels[~valid_values].unique().tolist()
        raise ValueError(f"labels must be 1 (fake), 0 (real) or -1 (unknown); got {bad}")
    known = labels != UNKNOWN_LABEL
    if keep is not None:
        known = known & keep.to(torch.bool)
    safe_logits = torch.where(known, logits, torch.zeros_like(logits))
    targets = known.to(logits.dtype) * labels.clamp(min=0).to(logits.dtype)
    per_row = F.binary_cross_entropy_with_logits(safe_logits, targets, reduction="none")
    return (per_row * known).sum() / known.sum().clamp(min=1)


def noisy_or_logit(*logits: Tensor) -> Tensor:
    """Logit of P(fake) = 1 - prod_i (1 - sigmoid(z_i)): fake if any piece of evidence says so.

    The labelling rule of the audio-visual papers (a video is fake if either modality is) as a readout;
    a -inf logit (a modality that is absent) contributes nothing. Computed in log space: log(1 - p_i) is
    -softplus(z_i). Clamped where every term says real with p < 1e-7, so the logit stays finite."""
    log_all_real = -torch.stack([F.softplus(z) for z in logits]).sum(0)
    log_all_real = log_all_real.clamp(max=-1e-7)
    return torch.log(-torch.expm1(log_all_real)) - log_all_real


FUSED_READOUTS = ("classifier", "noisy_or")


def check_fused_readout(readout: str) -> bool:
    """Validate a `fused_readout` switch; True for "noisy_or" (`fake_if_either_logit`), False for the
    papers' classifier alone."""
    if readout not in FUSED_READOUTS:
        raise ValueError(f"fused_readout must be one of {list(FUSED_READOUTS)}, got {readout!r}")
    return readout == "noisy_or"


def fake_if_either_logit(fused: Tensor, video: Tensor, audio: Tensor, audio_present: Tensor) -> Tensor:
    """The fused classifier's logit combined by noisy-or with the unimodal heads' (audio where present).

    A video is fake if either modality is (the papers' labelling rule); the unimodal heads learn their
    modality's trace sooner than a classifier on the joint embedding learns that rule from the labels."""
    absent = torch.full_like(audio, float("-inf"))
    return noisy_or_logit(fused, video, torch.where(audio_present.to(torch.bool), audio, absent))


class MLPHead(nn.Module):
    """Two linear layers with a ReLU between them: the classification head all three papers use."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int = 1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden_features), nn.ReLU(), nn.Linear(hidden_features, out_features)
        )

    def forward(self, features: Tensor) -> Tensor:
        """(..., in_features) -> (..., out_features)."""
        return self.layers(features)


def _building_on_meta_device() -> bool:
    """True inside `with torch.device("meta")`, where models are built only to count their parameters."""
    return torch.empty(()).device.type == "meta"


def build_backbone(
    kind: BackboneKind,
    architecture: str | Mapping[str, Any],
    weights: str | None,
    seed: int,
) -> HookedCLIPVision | HookedWhisperEncoder:
    """A CLIP vision tower or Whisper encoder: pretrained from `weights`, or random from `seed`.

    `architecture` is a size name of `backbones.sizes` (or a dict of config values) and is checked against
    the loaded weights, so a config can never silently run a different backbone than it names.
    `weights=None` builds the architecture with random weights drawn from a private generator seeded by
    `seed` (the global RNG is left untouched): frozen random towers are then reproducible from the config
    alone, which checkpoints rely on. On the meta device (parameter counting) no weight file is read.
    """
    if kind == "clip":
        config, size_name = clip_vision_config(architecture), clip_size_name
        build, load = build_clip_vision, load_clip_vision
    elif kind == "whisper":
        config, size_name = whisper_encoder_config(architecture), whisper_size_name
        build, load = build_whisper_encoder, load_whisper_encoder
    else:
        raise ValueError(f"backbone kind must be 'clip' or 'whisper', got {kind!r}")
    if weights is None or _building_on_meta_device():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build(config)
    model = load(weights)
    loaded = model.config.to_dict()
    if isinstance(architecture, Mapping):
        fits = all(loaded.get(key) == value for key, value in architecture.items())
    else:
        fits = size_name(model.config) == size_name(config)
    if not fits:
        raise ValueError(
            f"{weights}: these {kind} weights are architecture {size_name(model.config)!r}, "
            f"the config names {architecture!r}"
        )
    return model


def backbone_fingerprint(backbone: HookedCLIPVision | HookedWhisperEncoder) -> str:
    """Identifier of a backbone's weights for checkpoints: architecture, origin and a hash of the weights.

    Loaded weights are named by their files' sha256; random ones by a sha256 over the parameter values
    (in state-dict order), which detects a different torch RNG stream or init code on rebuild.
    """
    weights_id = backbone.weights_id
    name = weights_id.name if weights_id else "custom"
    if weights_id is not None and weights_id.sha256:
        return f"{name}:{weights_id.format}:{weights_id.sha256}"
    digest = hashlib.sha256()
    for key, tensor in backbone.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{name}:random:{digest.hexdigest()}"
