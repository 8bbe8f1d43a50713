"""Modality-shared branch (Sec. 3.3): cross-attention between frozen CLIP and Whisper features.

Inputs are the frozen encoders' high-level features: per-frame CLIP embeddings (B, T, D_v) and the
Whisper tokens covering the clip (B, N_a, D_a; 2 per video frame at 25 fps). Both are projected to one
width D and given the same sinusoidal code of their time in seconds (frame t at t / fps, token j at
j * 0.02 s): attention is otherwise blind to order, and lip-speech alignment is about WHEN.

    x_v2a = LN(v + Attn(query=v, key=value=a))          video asks audio        (B, T, D)
    x_a2v = LN(a + Attn(query=a, key=value=v))          audio asks video        (B, N_a, D) -> pooled to T
    shared embedding = [mean_t x_v2a, mean_t x_a2v]     (B, 2D)

L_KL (Eq. 7) then compares softmax(x_v2a) with softmax(x_a2v) step by step (losses.alignment_loss).
Without cross-attention (Table 4 ablation) x_v2a and x_a2v are the projected features themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def time_encoding(seconds: Tensor, dim: int, max_period: float = 100.0) -> Tensor:
    """Sinusoidal code (N, dim) of timestamps in seconds; periods from 2 frames (0.04 s) to `max_period`."""
    if dim % 2:
        raise ValueError(f"the time encoding needs an even width, got {dim}")
    min_period = 0.04
    exponents = torch.arange(dim // 2, dtype=torch.float32) / (dim // 2)
    periods = min_period * (max_period / min_period) ** exponents
    angles = 2 * math.pi * seconds.float()[:, None] / periods.to(seconds.device)[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@dataclass
class AlignmentOutput:
    x_v2a: Tensor  # (B, T, D)
    x_a2v: Tensor  # (B, T, D): the audio-query side pooled to the video's T steps
    embedding: Tensor  # (B, 2D)


class CrossAttentionBlock(nn.Module):
    """Pre-residual cross-attention with a LayerNorm: query + Attn(query, context), normalised."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        attended, _ = self.attention(query, context, context, need_weights=False)
        return self.norm(query + attended)


class CrossModalAlignment(nn.Module):
    """Projects frozen features to width D, cross-attends both ways: x_v2a, x_a2v and the embedding."""

    def __init__(
        self,
        video_dim: int,
        audio_dim: int,
        dim: int,
        heads: int,
        cross_attention: bool = True,
        dropout: float = 0.0,
        fps: float = 25.0,
        audio_token_seconds: float = 0.02,
    ):
        super().__init__()
        self.video_projection = nn.Linear(video_dim, dim)
        self.audio_projection = nn.Linear(audio_dim, dim)
        self.video_to_audio = CrossAttentionBlock(dim, heads, dropout) if cross_attention else None
        self.audio_to_video = CrossAttentionBlock(dim, heads, dropout) if cross_attention else None
        self.fps = fps
        self.audio_token_seconds = audio_token_seconds
        self.dim = dim

    @property
    def embedding_dim(self) -> int:
        return 2 * self.dim

    def forward(self, video: Tensor, audio: Tensor) -> AlignmentOutput:
        """video (B, T, D_v) per-frame features, audio (B, N_a, D_a) tokens of the same clip."""
        frames, tokens = video.shape[1], audio.shape[1]
        if tokens < frames:
            raise ValueError(f"{tokens} audio tokens cannot be pooled to {frames} video steps")
        frame_times = torch.arange(frames, device=video.device) / self.fps
        token_times = torch.arange(tokens, device=audio.device) * self.audio_token_seconds
        v = self.video_projection(video) + time_encoding(frame_times, self.dim).to(video.dtype)
        a = self.audio_projection(audio) + time_encoding(token_times, self.dim).to(audio.dtype)
        if self.video_to_audio is not None and self.audio_to_video is not None:
            x_v2a = self.video_to_audio(v, a)
            x_a2v_tokens = self.audio_to_video(a, v)
        else:
            x_v2a, x_a2v_tokens = v, a
        x_a2v = F.adaptive_avg_pool1d(x_a2v_tokens.transpose(1, 2), frames).transpose(1, 2)
        embedding = torch.cat([x_v2a.mean(dim=1), x_a2v.mean(dim=1)], dim=-1)
        return AlignmentOutput(x_v2a, x_a2v, embedding)
