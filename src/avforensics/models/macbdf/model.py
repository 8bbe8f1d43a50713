"""MACB-DF (Xiong et al., ICMR 2025): the detector assembled from its parts, registered as "macbdf".

forward:  frames -> E_v -> V_0 map; audio -> log-mel -> E_a -> A_0 map (Sec. 3.1)
          pooled V_0 / A_0 -> contrastive embeddings z_v, z_a (Sec. 3.2.1) -> fusion weights w_v, w_a (3.2.2)
          `depth` x [Eq. 17 fusion, MSTLKA / MFTLKA, Eq. 18 guidance] (3.2.3-4) -> RFMF (3.3) -> heads (3.4)
losses:   fused / video / audio sample BCE (Eq. 19), video / audio frame BCE (Eq. 20), and L_C (Eq. 8) as
          its two halves contrast_cross = (L_av + L_va) / 4 and contrast_intra = (L_vv + L_aa) / 4.
OM-Pareto (Sec. 3.5) is the engine's (`loss.combiner: om_pareto`) on the groups `gradient_groups` declares.

Clips without audio (`audio_present` False): w_a = 0 and w_v = 1 in Eq. 17, their audio tokens are masked
out of RFMF, they take no part in the audio losses, the cross-modal contrast, L_aa or the audio state
updates, and their audio and audio-frame logits are NaN (there is no audio to judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.backbones.loading import load_clip_vision, load_whisper_encoder
from avforensics.features.logmel import HOP_LENGTH, SAMPLE_RATE
from avforensics.models.base import Batch, DetectorModel, GradientGroup, Outputs
from avforensics.models.common import (
    MLPHead,
    check_fused_readout,
    fake_if_either_logit,
    masked_bce_with_logits,
)
from avforensics.models.macbdf.cluster_weights import ClusterFusionWeights
from avforensics.models.macbdf.encoders import AudioEncoder, VideoEncoder
from avforensics.models.macbdf.fusion import (
    GuidedFusionLayer,
    RepresentationFusion,
    audio_sequence,
    video_sequence,
)
from avforensics.models.macbdf.heads import ProgressiveMLPHead, modality_frame_targets
from avforensics.models.macbdf.macl import (
    AdaptiveTemperature,
    NegativeQueue,
    TemperatureStep,
    cross_modal_loss,
    intra_modal_loss,
)
from avforensics.models.macbdf.pretrained import init_audio_from_whisper, init_video_from_clip
from avforensics.models.registry import register_model

FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640: a 25 fps frame of 16 kHz audio (DESIGN.md)
MEL_FRAMES_PER_FRAME = SAMPLES_PER_FRAME // HOP_LENGTH  # 4

@dataclass(frozen=True)
class MACBDFDimensions:
    """Every setting of a MACB-DF detector: a named configuration, and what a checkpoint stores."""

    frames: int
    image_size: int
    video_patch: int
    video_dim: int
    video_depth: int
    video_heads: int
    n_mels: int
    audio_patch: Sequence[int]
    audio_dim: int
    audio_depth: int
    audio_heads: int
    channels: int
    embed_dim: int
    depth: int
    video_scales: Sequence[Sequence[int]]
    audio_scales: Sequence[Sequence[int]]
    rfmf_layers: int
    rfmf_heads: int
    head_reductions: int
    frame_head_hidden: int
    dropout: float
    cross_modal_contrast: bool
    intra_modal_contrast: bool
    queue_size: int
    nearest_negatives: int
    margin: float
    temperature: float | None
    tau0: float
    tau_min: float
    tau_max: float
    adaptive_weights: bool
    max_clusters: int
    new_cluster_distance: float
    distance_beta: float
    weight_eps: float
    weight_heads: int
    video_weights: str | None = None
    audio_weights: str | None = None
    video_conv_stem: bool = False
    fused_readout: str = "classifier"


_PAPER = MACBDFDimensions(
    frames=16,
    image_size=224,
    video_patch=16,
    video_dim=768,
    video_depth=12,
    video_heads=12,
    n_mels=80,
    audio_patch=[16, 4],
    audio_dim=512,
    audio_depth=6,
    audio_heads=8,
    channels=256,
    embed_dim=128,
    depth=6,
    video_scales=[[5, 2], [9, 3], [15, 3]],
    audio_scales=[[5, 2], [9, 3], [15, 3]],
    rfmf_layers=2,
    rfmf_heads=8,
    head_reductions=3,
    frame_head_hidden=128,
    dropout=0.1,
    cross_modal_contrast=True,
    intra_modal_contrast=True,
    queue_size=4096,
    nearest_negatives=32,
    margin=0.2,
    temperature=None,
    tau0=0.07,
    tau_min=0.01,
    tau_max=0.5,
    adaptive_weights=True,
    max_clusters=8,
    new_cluster_distance=0.5,
    distance_beta=0.5,
    weight_eps=0.05,
    weight_heads=4,
    video_weights=None,
    audio_weights=None,
    video_conv_stem=False,
    fused_readout="classifier",
)
_SMALL = replace(
    _PAPER,
    frames=4,
    image_size=112,
    video_patch=16,
    video_dim=64,
    video_depth=2,
    video_heads=4,
    video_conv_stem=True,
    audio_dim=64,
    audio_depth=2,
    audio_heads=4,
    channels=32,
    embed_dim=32,
    depth=2,
    video_scales=[[5, 2], [7, 3]],
    audio_scales=[[5, 2], [7, 3]],
    rfmf_layers=1,
    rfmf_heads=4,
    head_reductions=2,
    frame_head_hidden=32,
    queue_size=256,
    nearest_negatives=16,
    weight_heads=2,
    fused_readout="noisy_or",
)

UNIMODAL_LOSSES = {
    "video": ("video", "video_frame", "contrast_intra"),
    "audio": ("audio", "audio_frame", "contrast_intra"),
}
MULTIMODAL_LOSSES = {
    "video": ("fused", "contrast_cross", "audio", "audio_frame"),
    "audio": ("fused", "contrast_cross", "video", "video_frame"),
}


def _projection(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


@register_model
class MACBDF(DetectorModel):
    """Multiscale adaptive conflict-balancing detector: fused, video, audio and per-frame fake logits.

    Ablation switches (Tables 2, Fig. 5): `cross_modal_contrast` / `intra_modal_contrast` (L_C terms),
    `adaptive_weights` (False: w_v = w_a = 0.5), `depth` (0-8 LKA levels), `temperature` (a float fixes
    tau; None = adaptive, Eqs. 3-6). OM-Pareto is a config switch of the engine (`loss.combiner`).
    """

    name = "macbdf"
    Dimensions = MACBDFDimensions
    configs = {"paper": _PAPER, "small": _SMALL}

    def __init__(self, dims: MACBDFDimensions) -> None:
        super().__init__()
        self.dims = dims
        self.noisy_or_readout = check_fused_readout(dims.fused_readout)
        if dims.depth < 0:
            raise ValueError(f"depth (number of multi-scale fusion levels) must be >= 0, got {dims.depth}")
        if dims.nearest_negatives < 1:
            raise ValueError(f"nearest_negatives (K) must be >= 1, got {dims.nearest_negatives}")
        if dims.temperature is not None and dims.temperature <= 0:
            raise ValueError(f"a fixed temperature must be > 0, got {dims.temperature}")
        self.frames = dims.frames
        self.video_encoder = VideoEncoder(
            dims.frames, dims.image_size, dims.video_patch, dims.video_dim, dims.video_depth,
            dims.video_heads, dims.channels, dims.dropout,
            conv_stem=dims.video_conv_stem,
        )
        self.audio_encoder = AudioEncoder(
            dims.n_mels,
            dims.frames * MEL_FRAMES_PER_FRAME,
            dims.audio_patch,
            dims.audio_dim,
            dims.audio_depth,
            dims.audio_heads,
            dims.channels,
            dims.dropout,
        )
        self._initialise_encoders(dims.video_weights, dims.audio_weights)
        self.video_projection = _projection(dims.channels, dims.embed_dim)
        self.audio_projection = _projection(dims.channels, dims.embed_dim)
        self.fusion_weights = (
            ClusterFusionWeights(
                dims.embed_dim,
                dims.channels,
                dims.weight_heads,
                dims.max_clusters,
                dims.new_cluster_distance,
                dims.distance_beta,
                dims.weight_eps,
            )
            if dims.adaptive_weights
            else None
        )
        video_levels = [tuple(scale) for scale in dims.video_scales]
        audio_levels = [tuple(scale) for scale in dims.audio_scales]
        self.levels = nn.ModuleList(
            GuidedFusionLayer(dims.channels, video_levels, audio_levels)
            for _ in range(dims.depth)  # type: ignore[arg-type]
        )
        self.rfmf = RepresentationFusion(
            dims.channels, dims.depth + 1, dims.rfmf_heads, dims.rfmf_layers, dims.dropout
        )
        self.fused_head = ProgressiveMLPHead(dims.channels, dims.head_reductions, dims.dropout)
        self.video_head = ProgressiveMLPHead(dims.channels, dims.head_reductions, dims.dropout)
        self.audio_head = ProgressiveMLPHead(dims.channels, dims.head_reductions, dims.dropout)
        self.video_frame_head = MLPHead(dims.channels, dims.frame_head_hidden)
        self.audio_frame_head = MLPHead(dims.channels, dims.frame_head_hidden)
        self.cross_modal_contrast = dims.cross_modal_contrast
        self.intra_modal_contrast = dims.intra_modal_contrast
        self.nearest_negatives, self.margin = dims.nearest_negatives, dims.margin
        contrast = dims.cross_modal_contrast or dims.intra_modal_contrast
        self.queue = NegativeQueue(dims.queue_size, dims.embed_dim) if contrast else None
        self.fixed_temperature = dims.temperature
        self.temperature = (
            AdaptiveTemperature(dims.tau0, dims.tau_min, dims.tau_max)
            if contrast and dims.temperature is None
            else None
        )

    def _initialise_encoders(self, video_weights: str | None, audio_weights: str | None) -> None:
        """Optional CLIP / Whisper starting points (pretrained.py); skipped on the meta device (counting)."""
        if torch.empty(()).device.type == "meta":
            return
        if video_weights is not None:
            init_video_from_clip(self.video_encoder, load_clip_vision(video_weights), video_weights)
        if audio_weights is not None:
            init_audio_from_whisper(self.audio_encoder, load_whisper_encoder(audio_weights), audio_weights)

    @property
    def audio_head_ignores_video(self) -> bool:
        return len(self.levels) == 0  # each cross-modal level mixes video into the audio tokens

    # ---------------------------------------------------------------- forward
    def forward(self, batch: Batch) -> Outputs:
        present = batch["audio_present"].to(torch.bool)
        mel = batch["mel"] if "mel" in batch else self.audio_encoder.log_mel(batch["audio"])
        video = self.video_encoder(batch["frames"])
        audio = self.audio_encoder(mel)
        video_seq, audio_seq = video_sequence(video), audio_sequence(audio, self.frames)
        z_video = F.normalize(self.video_projection(video_seq.mean(dim=1)), dim=-1)
        z_audio = F.normalize(self.audio_projection(audio_seq.mean(dim=1)), dim=-1)
        if self.fusion_weights is not None:
            w_video, w_audio = self.fusion_weights(z_video, z_audio, video_seq, audio_seq, present)
        else:
            w_audio = present.to(video.dtype) * 0.5
            w_video = 1.0 - w_audio
        video_tokens, audio_tokens = [video.mean(dim=(2, 3, 4))], [audio.mean(dim=(2, 3))]
        for level in self.levels:
            video, audio = level(video, audio, w_video, w_audio)
            video_tokens.append(video.mean(dim=(2, 3, 4)))
            audio_tokens.append(audio.mean(dim=(2, 3)))
        fused = self.rfmf(audio_tokens, video_tokens, present)
        audio_logits = self.audio_head(audio_tokens[-1])
        video_logits = self.video_head(video_tokens[-1])
        logits = self.fused_head(fused)
        if self.noisy_or_readout:
            logits = fake_if_either_logit(logits, video_logits, audio_logits, present)
        audio_logits = torch.where(present, audio_logits, torch.full_like(audio_logits, torch.nan))
        video_frames = self.video_frame_head(video_sequence(video)).squeeze(-1)
        audio_frames = self.audio_frame_head(audio_sequence(audio, self.frames)).squeeze(-1)
        audio_frames = torch.where(present[:, None], audio_frames, torch.nan)
        # A frame is fake if either track is fake there; without audio, the video track alone decides.
        frame_logits = torch.where(present[:, None], torch.maximum(video_frames, audio_frames), video_frames)
        return Outputs(
            logits=logits,
            video_logits=video_logits,
            audio_logits=audio_logits,
            frame_logits=frame_logits,
            embeddings={"video": z_video, "audio": z_audio, "fused": fused},
            extras={
                "w_video": w_video,
                "w_audio": w_audio,
                "video_frame_logits": video_frames,
                "audio_frame_logits": audio_frames,
            },
        )

    # ---------------------------------------------------------------- losses
    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        present = batch["audio_present"].to(torch.bool)
        audio_label = torch.where(present, batch["audio_label"], -1)
        frame_labels = batch["frame_labels"]
        losses = {
            "fused": masked_bce_with_logits(outputs.logits, batch["label"]),
            "video": masked_bce_with_logits(outputs.video_logits, batch["video_label"]),
            "audio": masked_bce_with_logits(outputs.audio_logits, audio_label),
            "video_frame": masked_bce_with_logits(
                outputs.extras["video_frame_logits"],
                modality_frame_targets(batch["video_label"], frame_labels),
            ),
            "audio_frame": masked_bce_with_logits(
                outputs.extras["audio_frame_logits"], modality_frame_targets(audio_label, frame_labels)
            ),
        }
        if self.queue is None:
            if self.training and torch.is_grad_enabled():
                self._update_clusters(outputs, present)
            return losses
        step = self._temperature(outputs.embeddings["audio"][present], outputs.embeddings["video"][present])
        tau = step.tau if step is not None else float(self.fixed_temperature or 0.0)
        losses.update(self._contrast_losses(outputs, batch, present, audio_label, tau))
        if self.training and torch.is_grad_enabled():
            self._update_state(outputs, batch, losses, step, present, audio_label)
        return losses

    def _contrast_losses(
        self, outputs: Outputs, batch: Batch, present: Tensor, audio_label: Tensor, tau: Tensor | float
    ) -> dict[str, Tensor]:
        """The enabled halves of L_C (Eq. 8), negatives from the batch and the queue."""
        assert self.queue is not None
        queue, k, m = self.queue, self.nearest_negatives, self.margin
        z_video, z_audio = outputs.embeddings["video"], outputs.embeddings["audio"]
        # Buffers enter the graph as copies: the state update after the loss must not touch saved tensors.
        queue_video, queue_audio = queue.video.clone(), queue.audio.clone()
        losses = {}
        if self.cross_modal_contrast:
            real_pair = present & ((batch["label"] == 0) | ((batch["video_label"] == 0) & (audio_label == 0)))
            every_video = torch.ones_like(present)
            queue_audio_valid = queue.filled & queue.has_audio
            loss_av = cross_modal_loss(
                z_audio, z_video, real_pair, every_video, queue_video, queue.filled.clone(), k, tau, m
            )  # Eq. 2
            loss_va = cross_modal_loss(
                z_video, z_audio, real_pair, present, queue_audio, queue_audio_valid, k, tau, m
            )  # Eq. 7
            losses["contrast_cross"] = (loss_av + loss_va) / 4  # Eq. 8, cross-modal half
        if self.intra_modal_contrast:
            loss_vv = intra_modal_loss(
                z_video, batch["video_label"], queue_video, queue.video_label.clone(), k, tau, m
            )
            loss_aa = intra_modal_loss(
                z_audio, audio_label, queue_audio, queue.audio_label.clone(), k, tau, m
            )
            losses["contrast_intra"] = (loss_vv + loss_aa) / 4  # Eq. 8, intra-modal half
        return losses

    def _temperature(self, z_audio: Tensor, z_video: Tensor) -> TemperatureStep | None:
        """The adaptive tau_t (Eqs. 3-6), or None when the temperature is fixed."""
        return None if self.temperature is None else self.temperature(z_audio, z_video)

    def _update_state(
        self,
        outputs: Outputs,
        batch: Batch,
        losses: dict[str, Tensor],
        step: TemperatureStep | None,
        present: Tensor,
        audio_label: Tensor,
    ) -> None:
        """After a training step's losses: temperature history, queue and clusters (never in eval mode)."""
        if step is not None and self.temperature is not None:
            gradient = torch.zeros_like(step.tau)
            terms = [losses[name] for name in ("contrast_cross", "contrast_intra") if name in losses]
            contrast = torch.stack(terms).sum()
            if step.tau.requires_grad and contrast.requires_grad:
                # dL_C/dtau_t: grad_tau L_{t-1} of the next step's Eq. 5; the graph is kept for the engine.
                gradient = torch.autograd.grad(contrast, step.tau, retain_graph=True, allow_unused=True)[0]
                gradient = torch.zeros_like(step.tau) if gradient is None else gradient
            self.temperature.update(step, gradient)
        assert self.queue is not None
        self.queue.enqueue(
            outputs.embeddings["video"],
            outputs.embeddings["audio"],
            batch["video_label"],
            audio_label,
            present,
        )
        self._update_clusters(outputs, present)

    def _update_clusters(self, outputs: Outputs, present: Tensor) -> None:
        if self.fusion_weights is not None:
            self.fusion_weights.update(outputs.embeddings["video"], outputs.embeddings["audio"], present)

    # ---------------------------------------------------------------- contract
    def gradient_groups(self) -> list[GradientGroup]:
        """The audio and video encoders, where the fused/cross-modal terms and the unimodal terms meet."""
        encoders = {"video": self.video_encoder, "audio": self.audio_encoder}
        return [
            GradientGroup(
                name=f"{modality}_encoder",
                parameters=[p for p in encoder.parameters() if p.requires_grad],
                unimodal_losses=UNIMODAL_LOSSES[modality],
                multimodal_losses=MULTIMODAL_LOSSES[modality],
            )
            for modality, encoder in encoders.items()
        ]
