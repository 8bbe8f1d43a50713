"""MACB-DF encoders (Sec. 3.1): self-attention + FFN over space-time (video) and time-frequency (audio).

Both keep a feature MAP rather than a pooled vector, because the multi-scale blocks of Sec. 3.2.3 convolve
it: the video encoder returns (B, C, T, h, w), the audio encoder (B, C, F', T') over the log-mel patches.
Video attention is divided space-time (temporal, then spatial, per layer): joint attention over
T x h x w tokens is quadratic in a 16 x 14 x 14 grid, and the divided form is the usual way to attend over
space-time with the same parameter shapes as an image transformer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from avforensics.backbones.conv_stem import ConvStem
from avforensics.features.logmel import log_mel_spectrogram


class SelfAttention(nn.Module):
    """Pre-LN multi-head self-attention with a residual connection over (N, L, D) token sequences."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        h = self.norm(x)
        return x + self.attention(h, h, h, key_padding_mask=padding, need_weights=False)[0]


class FeedForward(nn.Module):
    """Pre-LN two-layer GELU MLP with a residual connection."""

    def __init__(self, dim: int, ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mlp(self.norm(x))


class TransformerLayer(nn.Module):
    """Self-attention then FFN over one token axis (audio patches, RFMF tokens)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = SelfAttention(dim, heads, dropout)
        self.ffn = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        return self.ffn(self.attention(x, padding))


class SpaceTimeLayer(nn.Module):
    """Divided space-time attention: across frames at each patch position, within each frame, then FFN."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.temporal = SelfAttention(dim, heads, dropout)
        self.spatial = SelfAttention(dim, heads, dropout)
        self.ffn = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, N, D) -> (B, T, N, D)."""
        b, t, n, d = x.shape
        x = self.temporal(x.transpose(1, 2).reshape(b * n, t, d)).reshape(b, n, t, d).transpose(1, 2)
        x = self.ffn(self.spatial(x.reshape(b * t, n, d)))
        return x.reshape(b, t, n, d)


class VideoEncoder(nn.Module):
    """E_v: per-frame patch embedding, learned space and time positions, divided space-time layers.

    (B, T, 3, H, W) CLIP-normalised frames -> (B, out_dim, T, H/p, W/p) feature map. `conv_stem` embeds
    patches with a `ConvStem` instead of one linear map (the CPU size trains from scratch:
    docs/backbones.md).
    """

    def __init__(
        self,
        frames: int,
        image_size: int,
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        out_dim: int,
        dropout: float = 0.0,
        conv_stem: bool = False,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"video image_size {image_size} is not a multiple of the patch size {patch}")
        self.frames, self.image_size = frames, image_size
        self.grid = image_size // patch
        self.patch_embed = ConvStem(3, dim, patch) if conv_stem else nn.Conv2d(3, dim, patch, stride=patch)
        self.spatial_position = nn.Parameter(torch.randn(1, 1, self.grid**2, dim) * 0.02)
        self.temporal_position = nn.Parameter(torch.zeros(1, frames, 1, dim))
        self.layers = nn.ModuleList(SpaceTimeLayer(dim, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, out_dim)

    def forward(self, frames: Tensor) -> Tensor:
        expected = (self.frames, 3, self.image_size, self.image_size)
        if frames.dim() != 5 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must be (B, {', '.join(map(str, expected))}), got {tuple(frames.shape)}"
            )
        b, t = frames.shape[:2]
        tokens = self.patch_embed(frames.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*T, N, D)
        x = tokens.reshape(b, t, -1, tokens.shape[-1]) + self.spatial_position + self.temporal_position
        for layer in self.layers:
            x = layer(x)
        x = self.project(self.norm(x))  # (B, T, N, C)
        return x.reshape(b, t, self.grid, self.grid, -1).permute(0, 4, 1, 2, 3)


class AudioEncoder(nn.Module):
    """E_a: log-mel (Eq. 1) -> time-frequency patches -> self-attention layers -> (B, out_dim, F', T') map."""

    def __init__(
        self,
        n_mels: int,
        mel_frames: int,
        patch: Sequence[int],
        dim: int,
        depth: int,
        heads: int,
        out_dim: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        patch_f, patch_t = patch
        if n_mels % patch_f or mel_frames % patch_t:
            raise ValueError(
                f"audio patch {tuple(patch)} must divide the log-mel shape "
                f"({n_mels} mels, {mel_frames} frames)"
            )
        self.n_mels, self.mel_frames = n_mels, mel_frames
        self.grid = (n_mels // patch_f, mel_frames // patch_t)
        self.patch_embed = nn.Conv2d(1, dim, (patch_f, patch_t), stride=(patch_f, patch_t))
        self.position = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, out_dim)

    def log_mel(self, audio: Tensor) -> Tensor:
        """(B, N) 16 kHz samples -> (B, n_mels, N / 160) Whisper log-mel (Eq. 1 and its logarithm)."""
        return log_mel_spectrogram(audio, n_mels=self.n_mels).to(audio.dtype)

    def forward(self, mel: Tensor) -> Tensor:
        expected = (self.n_mels, self.mel_frames)
        if mel.dim() != 3 or tuple(mel.shape[1:]) != expected:
            raise ValueError(f"log-mel must be (B, {expected[0]}, {expected[1]}), got {tuple(mel.shape)}")
        tokens = self.patch_embed(mel.unsqueeze(1)).flatten(2).transpose(1, 2) + self.position
        for layer in self.layers:
            tokens = layer(tokens)
        x = self.project(self.norm(tokens))  # (B, F'*T', C)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *self.grid)
