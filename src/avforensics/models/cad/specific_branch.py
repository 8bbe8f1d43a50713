"""Modality-specific branch (Sec. 3.4): StA-adapted CLIP, LoRA-adapted Whisper, SimSiam projections.

Video: CLIP with the spatiotemporal adapters of st_adapter.py; the clip embedding is the mean over frames
of the post-layernorm CLS token (StA reads its classifier from the same average). Audio: Whisper with LoRA
on the attention projections; the clip embedding is the mean of the tokens covering the clip. Each is
projected to the unimodal embedding x^u (Eq. 8); a SimSiam predictor turns x^u into z^u, which tries to
predict the OTHER modality's embedding.

Both encoders run only their ADAPTED suffix of layers here: the input of their first adapted layer (the
"prefix", computed by frozen layers) comes from the caller, who may take it from the feature cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.hooks import HookContext, LayerHook, run_layers
from avforensics.backbones.tuning import add_lora
from avforensics.backbones.whisper import HookedWhisperEncoder
from avforensics.models.cad.st_adapter import SpatioTemporalAdapterSet
from avforensics.models.common import MLPHead


def _whole_layers_only(*_: object) -> Tensor:
    raise RuntimeError("CAD runs its adapted layers whole: none of its hooks acts after attention")


def run_suffix(
    layers: Sequence[nn.Module], hidden: Tensor, ctx: HookContext, hooks: Sequence[LayerHook],
    checkpoint: bool = False,
) -> Tensor:
    """The hooked layer loop over a slice of a backbone's layers, from a given hidden state."""
    halves = (_whole_layers_only, _whole_layers_only)
    return run_layers(layers, hidden, ctx, hooks, halves, checkpoint=checkpoint)[0]


def clip_prefix(clip: HookedCLIPVision, frames: Tensor, first_layer: int) -> Tensor:
    """Input of CLIP layer `first_layer` for (B, T, 3, H, W) frames, as (B, T, tokens, D)."""
    batch, frames_per_clip = frames.shape[:2]
    images = frames.flatten(0, 1)
    ctx = HookContext(batch, frames_per_clip, first_layer, 1, grid=clip.patch_grid(*images.shape[-2:]))
    hidden = run_suffix(clip.encoder.layers[:first_layer], clip.embed(images), ctx, [])
    return hidden.unflatten(0, (batch, frames_per_clip))


def whisper_prefix(whisper: HookedWhisperEncoder, mel: Tensor, first_layer: int) -> Tensor:
    """Input of Whisper layer `first_layer` for (B, mels, F) log-mel, as (B, tokens, D)."""
    ctx = HookContext(mel.shape[0], 1, first_layer, num_prefix_tokens=0)
    return run_suffix(whisper.layers[:first_layer], whisper.embed(mel), ctx, [])


class VideoSpecificEncoder(nn.Module):
    """StA adapters (and their temporal embedding) for a CLIP tower the caller passes in.

    The tower is passed per call rather than owned: by default it is the same frozen CLIP the shared branch
    reads, and a module may have one owner only (a second one would put the frozen tower in checkpoints).
    """

    def __init__(
        self, clip: HookedCLIPVision, num_frames: int, adapter: dict | None = None, checkpoint: bool = False
    ):
        super().__init__()
        self.checkpoint = checkpoint  # activation checkpointing of the tower's layers (the StA run outside)
        self.adapters = SpatioTemporalAdapterSet(
            clip.num_layers, num_frames, clip.hidden_size, **(adapter or {})
        )

    @property
    def first_layer(self) -> int:
        return self.adapters.first_layer

    def forward(self, clip: HookedCLIPVision, prefix: Tensor, grid: tuple[int, int]) -> Tensor:
        """Input of the first adapted layer (B, T, 1 + rows*cols, D) -> (B, T, D) per-frame CLS features;
        their mean over frames is the clip embedding."""
        batch, frames = prefix.shape[:2]
        suffix = clip.encoder.layers[self.first_layer :]
        ctx = HookContext(batch, frames, len(suffix), num_prefix_tokens=1, grid=grid)
        hidden = run_suffix(suffix, prefix.flatten(0, 1), ctx, self.adapters.hooks(), self.checkpoint)
        return clip.post_layernorm(hidden[:, 0]).unflatten(0, (batch, frames))


class AudioSpecificEncoder(nn.Module):
    """A Whisper encoder of its own, frozen, with LoRA adapters on the self-attention projections."""

    def __init__(
        self,
        whisper: HookedWhisperEncoder,
        rank: int,
        alpha: int,
        targets: Sequence[str] = ("q_proj", "v_proj"),
        layers: Sequence[int] | None = None,
        checkpoint: bool = False,
    ):
        super().__init__()
        self.checkpoint = checkpoint  # activation checkpointing of the LoRA-adapted layers
        self.whisper = whisper
        self.adapted = add_lora(whisper, targets=targets, rank=rank, alpha=alpha, layers=layers)
        self.first_layer = min(layers) if layers else 0

    def forward(self, prefix: Tensor, tokens: int) -> Tensor:
        """Input of the first LoRA layer (B, N, D) -> (B, D): mean of the `tokens` tokens of the clip."""
        suffix = self.whisper.layers[self.first_layer :]
        ctx = HookContext(prefix.shape[0], 1, len(suffix), num_prefix_tokens=0)
        hidden = self.whisper.layer_norm(run_suffix(suffix, prefix, ctx, [], self.checkpoint))
        return hidden[:, :tokens].mean(dim=1)


class SimSiamProjections(nn.Module):
    """x^u = projection of each modality's encoder feature; z^u = predictor(x^u) (Eq. 8)."""

    def __init__(self, video_dim: int, audio_dim: int, dim: int, predictor_hidden: int):
        super().__init__()
        self.video_projection = nn.Linear(video_dim, dim)
        self.audio_projection = nn.Linear(audio_dim, dim)
        self.video_predictor = MLPHead(dim, predictor_hidden, dim)
        self.audio_predictor = MLPHead(dim, predictor_hidden, dim)

    def embed_video(self, feature: Tensor) -> Tensor:
        return self.video_projection(feature)

    def embed_audio(self, feature: Tensor) -> Tensor:
        return self.audio_projection(feature)

    def predict(self, x_v: Tensor, x_a: Tensor) -> tuple[Tensor, Tensor]:
        """(z_v, z_a) from the unimodal embeddings."""
        return self.video_predictor(x_v), self.audio_predictor(x_a)
