"""Frame-level alignment (Eq. 12-13) and the audio-visual cosine distance used by the CMFM loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FrameAlignment(nn.Module):
    """conv_v (k_v = s_v = 1) and conv_a (k_a = s_a = N_t / 2T) map both streams to T frames of width D_f."""

    def __init__(self, visual_dim: int, audio_dim: int, fused_dim: int, audio_tokens_per_frame: int):
        super().__init__()
        if audio_tokens_per_frame < 1:
            raise ValueError(f"need at least one audio token per frame, got {audio_tokens_per_frame}")
        self.visual = nn.Conv1d(visual_dim, fused_dim, kernel_size=1, stride=1)
        self.audio = nn.Conv1d(
            audio_dim, fused_dim, kernel_size=audio_tokens_per_frame, stride=audio_tokens_per_frame
        )

    def forward(self, visual: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, D_v) frames and (B, N_t / 2, D_a) tokens -> f'_v, f'_a, both (B, T, D_f)."""
        aligned_visual = self.visual(visual.transpose(1, 2)).transpose(1, 2)
        aligned_audio = self.audio(audio.transpose(1, 2)).transpose(1, 2)
        if aligned_audio.shape[1] != aligned_visual.shape[1]:
            raise ValueError(
                f"{audio.shape[1]} audio tokens align to {aligned_audio.shape[1]} frames, "
                f"not the {visual.shape[1]} video frames"
            )
        return aligned_visual, aligned_audio


def cosine_distance(first: Tensor, second: Tensor) -> Tensor:
    """D(a, b) = 1 - cos(a, b) along the last axis, in [0, 2] (the diagonal of the pairwise matrix)."""
    return 1.0 - (F.normalize(first, dim=-1) * F.normalize(second, dim=-1)).sum(-1)


def pairwise_cosine_distance(first: Tensor, second: Tensor) -> Tensor:
    """(M, D) and (N, D) -> (M, N) matrix of D(first_i, second_j)."""
    return 1.0 - F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T
