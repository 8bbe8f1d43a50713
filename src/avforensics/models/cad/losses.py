"""CAD's two auxiliary losses: cross-modal alignment (Eq. 7) and cross-modal distillation (Eq. 8).

Both are computed per clip and averaged over the clips that have an audio track: aligning or distilling
towards the digital silence of an audio-less clip would teach the model nothing about real audio.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def softmax_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(softmax(p) || softmax(q)) over the last axis, one value per leading index (Eq. 7).

    Computed from log-softmax values, so it is finite even where a probability underflows to zero.
    """
    log_p = F.log_softmax(p_logits, dim=-1)
    log_q = F.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def masked_mean(values: Tensor, keep: Tensor) -> Tensor:
    """Mean of per-clip values over the clips where `keep` is True; 0 (still in the graph) if none is."""
    keep = keep.to(values.dtype)
    return (values * keep).sum() / keep.sum().clamp(min=1.0)


def alignment_loss(x_v2a: Tensor, x_a2v: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """L_KL of Eq. 7 between the two cross-attention outputs, both (B, T, D).

    P = softmax(x_v2a) and Q = softmax(x_a2v) are taken over the feature axis of each time step (the
    audio-query side is pooled to the video's T steps beforehand); the KL is averaged over the T steps of
    a clip, then over the clips with audio. Returns (loss, per-step KL (B, T)); the latter is a timeline
    signal (large where lips and speech disagree).
    """
    if x_v2a.shape != x_a2v.shape:
        raise ValueError(f"x_v2a {tuple(x_v2a.shape)} and x_a2v {tuple(x_a2v.shape)} must have one shape")
    per_step = softmax_kl(x_v2a, x_a2v)
    return masked_mean(per_step.mean(dim=-1), keep), per_step


def negative_cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """-Norm(target) . Norm(prediction) per row, with the target detached (SimSiam's stop-gradient)."""
    return -(F.normalize(prediction, dim=-1) * F.normalize(target.detach(), dim=-1)).sum(dim=-1)


def simsiam_distillation(x_v: Tensor, x_a: Tensor, z_v: Tensor, z_a: Tensor, keep: Tensor) -> Tensor:
    """L_KD of Eq. 8: Dist_1 = -Norm(x_v).Norm(z_a), Dist_2 = -Norm(x_a).Norm(z_v), L = (Dist_1 + Dist_2) / 2.

    x_v, x_a are the unimodal embeddings and z_v, z_a the SimSiam predictor outputs; as in SimSiam the
    embedding side of each term is a stop-gradient target, so audio learns to predict video (Dist_1) and
    video to predict audio (Dist_2) without both collapsing onto one vector.
    """
    per_clip = (negative_cosine(z_a, x_v) + negative_cosine(z_v, x_a)) / 2
    return masked_mean(per_clip, keep)


def kl_distillation(x_v: Tensor, x_a: Tensor, keep: Tensor) -> Tensor:
    """The "SimSiam replaced by KL" ablation (Table 5): Eq. 7's KL between the unimodal embeddings."""
    return masked_mean(softmax_kl(x_v, x_a), keep)

