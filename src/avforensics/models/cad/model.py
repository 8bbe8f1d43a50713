"""CAD detector (Du et al. 2025): modality-shared alignment + modality-specific distillation, fused.

    frames ─┬─ frozen CLIP ──── per-frame CLS ─┐
            │                                  ├─ cross-attention both ways ─ x_v2a, x_a2v ─ L_KL (Eq. 7)
    audio ──┼─ frozen Whisper ─ clip tokens ───┘            └─ shared embedding ─────────┐
            │                                                                            ├─ classifier
            ├─ CLIP + StA adapters ── x_v^u ──┬─ SimSiam L_KD (Eq. 8) ── z_v, z_a        │  (fake if either
            └─ Whisper + LoRA ─────── x_a^u ──┘                                          │   modality is)
                                      x_v^u, x_a^u ──────────────────────────────────────┘

The frozen encoders' outputs are cached per clip (cache.py). Audio-less clips (audio_present False) are
scored with digital silence in place of audio; L_KL, L_KD and the audio loss skip them and their audio
logit is NaN ("cannot say"). docs/models/cad.md maps every equation to this code.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.sizes import whisper_encoder_config
from avforensics.backbones.tuning import freeze
from avforensics.backbones.whisper import HookedWhisperEncoder
from avforensics.models.base import Batch, DetectorModel, GradientGroup, Outputs
from avforensics.models.cad.audio_input import clip_tokens, silence_where_absent, whisper_log_mel
from avforensics.models.cad.cache import FeatureCache, Features, FrozenWeightsId, clip_keys
from avforensics.models.cad.configs import CONFIGS, CADDimensions
from avforensics.models.cad.losses import alignment_loss, kl_distillation, simsiam_distillation
from avforensics.models.cad.shared_branch import CrossModalAlignment
from avforensics.models.cad.specific_branch import (
    AudioSpecificEncoder,
    SimSiamProjections,
    VideoSpecificEncoder,
    clip_prefix,
    whisper_prefix,
)
from avforensics.models.common import (
    MLPHead,
    build_backbone,
    check_fused_readout,
    fake_if_either_logit,
    masked_bce_with_logits,
)
from avforensics.models.registry import register_model


@register_model
class CADDetector(DetectorModel):
    """CAD; every ablation of Tables 4-5 is a constructor switch (configs.py, the shipped cad/ configs)."""

    name = "cad"
    Dimensions = CADDimensions
    configs = CONFIGS

    def __init__(self, dims: CADDimensions) -> None:
        super().__init__()
        self.dims = dims
        _check_choice("modalities", dims.modalities, ("audio_visual", "video"))
        _check_choice("distillation", dims.distillation, ("simsiam", "kl", "none"))
        _check_choice("unimodal_heads", dims.unimodal_heads, ("probe", "joint"))
        _check_choice("shared_video", dims.shared_video, ("frozen", "specific"))
        self.num_frames = dims.num_frames
        self.pad_audio_to_30s = dims.pad_audio_to_30s
        self.audio_visual = dims.modalities == "audio_visual"
        self.use_alignment_loss = dims.alignment_loss and self.audio_visual
        self.distillation = dims.distillation if self.audio_visual else "none"
        self.freeze_shared = dims.freeze_shared
        # "specific": the shared branch cross-attends the specific video encoder's per-frame features instead
        # of a frozen CLIP's (the small configuration, whose CLIP is random: docs/models/cad.md).
        self.shared_reads_clip = self.audio_visual and dims.shared_video == "frozen"
        self.train_video_backbone = dims.train_video_backbone
        if dims.video_backbone_lr_scale <= 0:
            raise ValueError(f"video_backbone_lr_scale must be positive, got {dims.video_backbone_lr_scale}")
        self.video_backbone_lr_scale = dims.video_backbone_lr_scale
        self.probe_heads = dims.unimodal_heads == "probe"
        self.noisy_or_readout = check_fused_readout(dims.fused_readout)

        # `clip`: the frozen tower the shared branch reads (paper) and the specific branch adapts, when its
        # own tower does not train. `video_clip`: the specific branch's own tower, when it trains or when the
        # shared one does ("w/o frozen model"). Each exists only where something runs it.
        tower: HookedCLIPVision = build_backbone("clip", dims.clip, dims.clip_weights, dims.backbone_seed)
        self.shared_clip_trains = self.shared_reads_clip and not dims.freeze_shared
        needs_frozen_clip = self.shared_reads_clip or not dims.train_video_backbone
        needs_own_clip = dims.train_video_backbone or self.shared_clip_trains
        self.clip: HookedCLIPVision | None = freeze(tower) if needs_frozen_clip else None
        self.video_clip: HookedCLIPVision | None = None
        if needs_own_clip:
            self.video_clip = copy.deepcopy(tower) if needs_frozen_clip else tower
            self.video_clip.requires_grad_(dims.train_video_backbone)
        self.video_encoder = VideoSpecificEncoder(
            tower, dims.num_frames, dims.adapter, checkpoint=dims.activation_checkpointing
        )
        self.projections = SimSiamProjections(
            tower.hidden_size, whisper_encoder_config(dims.whisper).d_model, dims.embedding_dim,
            dims.predictor_hidden,
        )
        self.video_head = MLPHead(dims.embedding_dim, dims.head_hidden)

        self.whisper: HookedWhisperEncoder | None = None
        self.audio_encoder: AudioSpecificEncoder | None = None
        self.alignment: CrossModalAlignment | None = None
        self.audio_head: MLPHead | None = None
        self.fused_head: nn.Sequential | None = None
        if self.audio_visual:
            self.whisper = freeze(
                build_backbone("whisper", dims.whisper, dims.whisper_weights, dims.backbone_seed + 1)
            )
            self.audio_encoder = AudioSpecificEncoder(
                copy.deepcopy(self.whisper), dims.lora_rank, dims.lora_alpha, tuple(dims.lora_targets),
                dims.lora_layers, checkpoint=dims.activation_checkpointing,
            )
            if not dims.freeze_shared:  # "w/o frozen model" (Table 4): the shared encoders train too
                if self.clip is not None and self.shared_clip_trains:
                    self.clip.requires_grad_(True)
                self.whisper.requires_grad_(True)
            self.alignment = CrossModalAlignment(
                tower.hidden_size, self.whisper.hidden_size, dims.shared_dim, dims.shared_heads,
                cross_attention=dims.cross_attention, fps=dims.fps,
            )
            self.audio_head = MLPHead(dims.embedding_dim, dims.head_hidden)
            integrated = self.alignment.embedding_dim + 2 * dims.embedding_dim
            self.fused_head = nn.Sequential(
                nn.Dropout(dims.head_dropout), MLPHead(integrated, dims.head_hidden)
            )

        self.feature_cache = (
            FeatureCache(int(dims.cache_mb * 2**20), dims.cache_dir)
            if dims.cache_mb or dims.cache_dir
            else None
        )
        self._frozen_ids = {
            name: FrozenWeightsId(module) for name, module in self._frozen_backbones().items()
        }

    @property
    def video_tower(self) -> HookedCLIPVision:
        """The CLIP tower the specific video encoder runs: its own copy if it has one, else the frozen one."""
        tower = self.video_clip if self.video_clip is not None else self.clip
        assert tower is not None  # the constructor builds at least one of them
        return tower

    def _frozen_backbones(self) -> dict[str, nn.Module]:
        """Backbones whose base weights never train, by checkpoint name (LoRA tensors are not base)."""
        backbones: dict[str, nn.Module] = {}
        if self.clip is not None and not self.shared_clip_trains:
            backbones["clip"] = self.clip
        if self.whisper is not None and self.freeze_shared:
            backbones["whisper"] = self.whisper
        if self.video_clip is not None and not self.train_video_backbone:
            backbones["video_clip"] = self.video_clip
        if self.audio_encoder is not None:
            backbones["audio_whisper"] = self.audio_encoder.whisper
        return backbones

    @property
    def audio_head_ignores_video(self) -> bool:
        return self.audio_visual  # x_a: the audio-specific encoder over Whisper's layers, no video input

    # ---------------------------------------------------------------- forward

    def forward(self, batch: Batch) -> Outputs:
        frames = batch["frames"]
        if frames.dim() != 5 or frames.shape[1] != self.num_frames:
            raise ValueError(
                f"cad expects frames (B, {self.num_frames}, 3, H, W), got {tuple(frames.shape)}"
            )
        present = _audio_present(batch, frames)
        audio = mel = None
        if self.audio_visual:
            assert self.audio_encoder is not None
            audio = silence_where_absent(batch["audio"].to(frames.dtype), present)
            mel_bins = self.audio_encoder.whisper.config.num_mel_bins
            mel = whisper_log_mel(audio, mel_bins, self.pad_audio_to_30s)
        frozen = self._frozen_features(batch, frames, audio, mel)

        video_clip = self.video_tower
        first_video_layer = self.video_encoder.first_layer
        if self.video_clip is not None:  # a CLIP of its own: trainable, or frozen while the shared one trains
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_video_backbone):
                frozen["video_prefix"] = clip_prefix(self.video_clip, frames, first_video_layer)
        grid = video_clip.patch_grid(*frames.shape[-2:])
        per_frame = self.video_encoder(video_clip, frozen["video_prefix"], grid)
        x_v = self.projections.embed_video(per_frame.mean(dim=1))
        video_logits = self.video_head(x_v.detach() if self.probe_heads else x_v).squeeze(-1)
        if not self.audio_visual:
            return Outputs(logits=video_logits, video_logits=video_logits, embeddings={"video": x_v})
        assert self.audio_encoder is not None and self.alignment is not None
        assert self.audio_head is not None and self.fused_head is not None
        assert audio is not None and mel is not None

        tokens = clip_tokens(audio.shape[-1])
        x_a = self.projections.embed_audio(self.audio_encoder(frozen["audio_prefix"], tokens))
        z_v, z_a = self.projections.predict(x_v, x_a)
        if not self.freeze_shared:  # "w/o frozen model": the shared encoders run with gradients
            assert self.whisper is not None
            if self.shared_clip_trains:
                assert self.clip is not None
                frozen["video"] = self.clip(frames).pooled
            frozen["audio"] = self.whisper(mel).last_hidden_state[:, :tokens]
        aligned = self.alignment(frozen["video"] if self.shared_reads_clip else per_frame, frozen["audio"])
        integrated = torch.cat([aligned.embedding, x_v, x_a], dim=-1)
        logits = self.fused_head(integrated).squeeze(-1)
        audio_logits = self.audio_head(x_a.detach() if self.probe_heads else x_a).squeeze(-1)
        if self.noisy_or_readout:
            logits = fake_if_either_logit(logits, video_logits, audio_logits, present)
        audio_logits = torch.where(present, audio_logits, torch.full_like(audio_logits, float("nan")))
        _, step_kl = alignment_loss(aligned.x_v2a, aligned.x_a2v, present)
        return Outputs(
            logits=logits,
            video_logits=video_logits,
            audio_logits=audio_logits,
            embeddings={
                "integrated": integrated, "shared": aligned.embedding, "video": x_v, "audio": x_a,
                "z_video": z_v, "z_audio": z_a, "x_v2a": aligned.x_v2a, "x_a2v": aligned.x_a2v,
            },
            extras={"alignment_kl": step_kl, "audio_present": present},
        )

    def _frozen_features(
        self, batch: Batch, frames: Tensor, audio: Tensor | None, mel: Tensor | None
    ) -> Features:
        """What frozen layers compute, per clip and cached: the shared branch's features (frozen CLIP
        per-frame CLS (B, T, D_v) "video", Whisper clip tokens (B, N_a, D_a) "audio") and the inputs of the
        specific encoders' first adapted layers ("video_prefix" (B, T, tokens, D_v), "audio_prefix")."""
        shared = self.audio_visual and self.freeze_shared
        shared_clip = shared and self.shared_reads_clip
        video_prefix = self.video_clip is None
        reads_frames = shared_clip or video_prefix
        first_video_layer = self.video_encoder.first_layer
        first_audio_layer = self.audio_encoder.first_layer if self.audio_encoder is not None else 0

        def compute(rows: Tensor | None) -> Features:
            out: Features = {}
            selected = frames if rows is None else frames[rows]
            if reads_frames:
                assert self.clip is not None
                if shared_clip:
                    clip_out = self.clip(selected, output_hidden_states=True)
                    out["video"] = clip_out.pooled
                    if video_prefix:
                        out["video_prefix"] = clip_out.hidden_states[first_video_layer]
                else:
                    out["video_prefix"] = clip_prefix(self.clip, selected, first_video_layer)
            if mel is not None:
                assert self.whisper is not None and self.audio_encoder is not None
                selected_mel = mel if rows is None else mel[rows]
                if shared:
                    whisper_out = self.whisper(selected_mel, output_hidden_states=True)
                    out["audio"] = whisper_out.last_hidden_state[:, : clip_tokens(audio.shape[-1])]
                    out["audio_prefix"] = whisper_out.hidden_states[first_audio_layer]
                else:
                    own = self.audio_encoder.whisper
                    out["audio_prefix"] = whisper_prefix(own, selected_mel, first_audio_layer)
            return out

        # Only features of frozen weights are cached: not those of the "w/o frozen model" ablation.
        # Tensors without data (the meta device: shape checks, counting) have no content to key.
        cacheable = (shared or (not self.audio_visual and video_prefix)) and not frames.is_meta
        with torch.no_grad():
            if self.feature_cache is None or not cacheable:
                return compute(None)
            # A key covers what the cached features depend on: the frames only if a frozen CLIP reads them.
            ids = [self._frozen_ids["clip"]()] if reads_frames else []
            inputs = [frames] if reads_frames else []
            if shared:
                assert audio is not None
                ids.append(self._frozen_ids["whisper"]())
                inputs.append(audio)
            context = "|".join(
                [*ids, f"pad30={self.pad_audio_to_30s}", f"layers={first_video_layer},{first_audio_layer}"]
            )
            keys = clip_keys(batch.get("video_id"), batch.get("window"), inputs, context)  # type: ignore[arg-type]
            return self.feature_cache.rows(keys, compute, frames.device)

    # ---------------------------------------------------------------- losses

    def losses(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        """fused (label), video (video_label), audio (audio_label, clips with audio), kl, kd (Eq. 7-8)."""
        assert outputs.video_logits is not None
        terms = {"video": masked_bce_with_logits(outputs.video_logits, batch["video_label"])}
        if not self.audio_visual:
            return terms
        assert outputs.audio_logits is not None
        present = outputs.extras["audio_present"]
        terms["fused"] = masked_bce_with_logits(outputs.logits, batch["label"])
        terms["audio"] = masked_bce_with_logits(outputs.audio_logits, batch["audio_label"], keep=present)
        embeddings = outputs.embeddings
        if self.use_alignment_loss:
            terms["kl"], _ = alignment_loss(embeddings["x_v2a"], embeddings["x_a2v"], present)
        x_v, x_a = embeddings["video"], embeddings["audio"]
        if self.distillation == "simsiam":
            z_v, z_a = embeddings["z_video"], embeddings["z_audio"]
            terms["kd"] = simsiam_distillation(x_v, x_a, z_v, z_a, present)
        elif self.distillation == "kl":
            terms["kd"] = kl_distillation(x_v, x_a, present)
        return terms

    def gradient_groups(self) -> list[GradientGroup]:
        """Each specific encoder is shared by its unimodal loss and the multimodal ones (fused, kd)."""
        if self.probe_heads or not self.audio_visual:
            return []  # probe heads send no unimodal gradient into the encoders: nothing can conflict
        assert self.audio_encoder is not None
        multimodal = ("fused", "kd") if self.distillation != "none" else ("fused",)
        video = [*self.video_encoder.parameters(), *self.projections.video_projection.parameters()]
        if self.video_clip is not None:
            video += list(self.video_clip.parameters())
        audio = [*self.audio_encoder.parameters(), *self.projections.audio_projection.parameters()]
        return [
            GradientGroup("video_encoder", [p for p in video if p.requires_grad], ("video",), multimodal),
            GradientGroup("audio_encoder", [p for p in audio if p.requires_grad], ("audio",), multimodal),
        ]

    def lr_scales(self) -> dict[str, float]:
        """A trained tower copy at `video_backbone_lr_scale` x lr: from scratch, a CLIP-shaped transformer
        does not settle at the rate that suits the heads and LoRA (docs/models/cad.md)."""
        if self.video_clip is None or not self.train_video_backbone or self.video_backbone_lr_scale == 1.0:
            return {}
        return {"video_clip.": self.video_backbone_lr_scale}

    def frozen_backbone_ids(self) -> dict[str, str]:
        return {name: weights_id() for name, weights_id in self._frozen_ids.items()}


def _audio_present(batch: Batch, frames: Tensor) -> Tensor:
    if "audio_present" not in batch:
        return torch.ones(frames.shape[0], dtype=torch.bool, device=frames.device)
    return batch["audio_present"].to(device=frames.device, dtype=torch.bool).reshape(frames.shape[0])


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"cad: {name} must be one of {list(allowed)}, got {value!r}")
