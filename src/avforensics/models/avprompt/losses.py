"""Frame-level cross-modal feature matching loss, L_CMFM (Eq. 14-15), and its segment-level ablation.

Every visual frame of the mini-batch is paired with every audio frame. With D the cosine distance:
    l = +alpha * D   same segment, same frame, real segment (y_m = 0)   -> pulled together
    l = -beta  * D   same segment, fake segment (y_m = 1), any frames   -> pushed apart
    l = -gamma * D   different segments, any frames                     -> pushed apart (natural mismatch)
    l = 0            otherwise (same real segment, different frames; unknown label)
L_CMFM = mean of the positive terms + mean of the negative terms. Eq. 14 as printed wraps the first sum in
a stray max(); the means are counted over the pairs of each case (see docs/models/avprompt.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from avforensics.models.avprompt.alignment import pairwise_cosine_distance


@dataclass(frozen=True)
class CMFMWeights:
    """alpha, beta, gamma of Eq. 15 (the paper uses 2, 2, 1)."""

    alpha: float = 2.0
    beta: float = 2.0
    gamma: float = 1.0


def cmfm_pair_weights(labels: Tensor, usable: Tensor, frames: int, weights: CMFMWeights) -> Tensor:
    """The signed factor of every (visual frame, audio frame) pair: (B*T, B*T), rows visual, columns audio.

    `labels` (B,) overall segment labels (1 fake, 0 real, -1 unknown); `usable` (B,) rows that take part
    at all (rows without an audio track do not: their "audio" is silence, neither matched nor mismatched).
    """
    segment = torch.arange(labels.shape[0], device=labels.device).repeat_interleave(frames)
    frame = torch.arange(frames, device=labels.device).repeat(labels.shape[0])
    row_label = labels.repeat_interleave(frames)
    same_segment = segment[:, None] == segment[None, :]
    same_frame = frame[:, None] == frame[None, :]
    real = (row_label == 0)[:, None]
    fake = (row_label == 1)[:, None]
    factors = torch.zeros(same_segment.shape, dtype=torch.float32, device=labels.device)
    factors = torch.where(same_segment & same_frame & real, weights.alpha, factors)
    factors = torch.where(same_segment & fake, -weights.beta, factors)
    factors = torch.where(~same_segment, -weights.gamma, factors)
    pair_usable = usable.repeat_interleave(frames)
    return factors * (pair_usable[:, None] & pair_usable[None, :])


def cmfm_loss(
    visual: Tensor, audio: Tensor, labels: Tensor, usable: Tensor, weights: CMFMWeights, level: str = "frame"
) -> Tensor:
    """L_CMFM over aligned features f'_v, f'_a (B, T, D_f).

    level="frame" is the paper's loss; level="segment" (the Table 5 ablation) first averages each segment's
    frames, so each segment contributes one audio-visual pair instead of T x T.
    """
    if level == "segment":
        visual, audio = visual.mean(1, keepdim=True), audio.mean(1, keepdim=True)
    elif level != "frame":
        raise ValueError(f"CMFM level must be 'frame' or 'segment', got {level!r}")
    batch, frames, dim = visual.shape
    distances = pairwise_cosine_distance(visual.reshape(-1, dim), audio.reshape(-1, dim))
    factors = cmfm_pair_weights(labels, usable.to(torch.bool), frames, weights).to(distances.dtype)
    terms = factors * distances
    positive, negative = factors > 0, factors < 0
    pull = (terms * positive).sum() / positive.sum().clamp(min=1)
    push = (terms * negative).sum() / negative.sum().clamp(min=1)
    return pull + push
