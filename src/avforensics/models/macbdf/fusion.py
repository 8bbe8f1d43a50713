"""Multi-level fusion (MACB-DF Sec. 3.2.4, Eqs. 17-18) and the transformer fusion RFMF (Sec. 3.3).

Video maps are (B, C, T, h, w), audio maps (B, C, F', T'); the fusion of Eq. 17 happens on per-time
features (B, T, C): video averaged over space, audio averaged over frequency and resampled to the T video
frames. Eq. 18's "⊗" is read as a Hadamard product with the fused feature broadcast over the modality's
other axes, in residual form K_i = K'_i * (1 + P_K(x_fused_i)) with P_K zero-initialised (a bare product
would multiply feature magnitudes layer after layer; see docs/models/macbdf.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.models.macbdf.encoders import TransformerLayer
from avforensics.models.macbdf.lka import mftlka_block, mstlka_block


def video_sequence(video: Tensor) -> Tensor:
    """(B, C, T, h, w) -> (B, T, C): the mean over space per frame."""
    return video.mean(dim=(3, 4)).transpose(1, 2)


def audio_sequence(audio: Tensor, frames: int) -> Tensor:
    """(B, C, F', T') -> (B, T, C): the mean over frequency, averaged onto the T video frames."""
    return F.adaptive_avg_pool1d(audio.mean(dim=2), frames).transpose(1, 2)


def fuse(w_video: Tensor, w_audio: Tensor, video_seq: Tensor, audio_seq: Tensor) -> Tensor:
    """Eq. 17: x_fused = w_v V + w_a A, per clip weights (B,) on per-time features (B, T, C)."""
    return w_video[:, None, None] * video_seq + w_audio[:, None, None] * audio_seq


class GuidedFusionLayer(nn.Module):
    """One depth level: MSTLKA/MFTLKA on the previous maps, then guidance by the fused feature (Eq. 18)."""

    def __init__(
        self, channels: int, video_scales: Sequence[tuple[int, int]], audio_scales: Sequence[tuple[int, int]]
    ) -> None:
        super().__init__()
        self.video_block = mstlka_block(channels, video_scales)
        self.audio_block = mftlka_block(channels, audio_scales)
        self.video_guide = nn.Linear(channels, channels)
        self.audio_guide = nn.Linear(channels, channels)
        for guide in (self.video_guide, self.audio_guide):
            nn.init.zeros_(guide.weight)
            nn.init.zeros_(guide.bias)

    def forward(
        self, video: Tensor, audio: Tensor, w_video: Tensor, w_audio: Tensor
    ) -> tuple[Tensor, Tensor]:
        frames = video.shape[2]
        fused = fuse(w_video, w_audio, video_sequence(video), audio_sequence(audio, frames))  # Eq. 17
        video_gain = self.video_guide(fused).transpose(1, 2)[..., None, None]  # (B, C, T, 1, 1)
        audio_gain = F.interpolate(
            self.audio_guide(fused).transpose(1, 2), size=audio.shape[-1], mode="linear", align_corners=False
        )[:, :, None, :]  # (B, C, 1, T')
        video = self.video_block(video) * (1.0 + video_gain)  # Eq. 18, K = V
        audio = self.audio_block(audio) * (1.0 + audio_gain)  # Eq. 18, K = A
        return video, audio


class RepresentationFusion(nn.Module):
    """RFMF: self-attention over the stacked per-level tokens M = [ha_0, hv_0, ..., ha_n, hv_n].

    Each token gets a learned embedding of its (level, modality) slot; audio tokens of clips without audio
    are masked out of the attention and of the final mean.
    """

    def __init__(self, channels: int, levels: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.slot_embedding = nn.Parameter(torch.zeros(1, 2 * levels, channels))
        self.layers = nn.ModuleList(TransformerLayer(channels, heads, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(channels)

    def forward(
        self, audio_tokens: Sequence[Tensor], video_tokens: Sequence[Tensor], audio_present: Tensor
    ) -> Tensor:
        """Per level (B, C) tokens of each modality -> (B, C) fused representation."""
        pairs = [token for pair in zip(audio_tokens, video_tokens, strict=True) for token in pair]
        x = torch.stack(pairs, dim=1) + self.slot_embedding
        is_audio = torch.arange(x.shape[1], device=x.device) % 2 == 0
        padding = is_audio[None, :] & ~audio_present[:, None]
        for layer in self.layers:
            x = layer(x, padding)
        keep = (~padding).to(x.dtype)[..., None]
        return self.norm((x * keep).sum(dim=1) / keep.sum(dim=1))
