"""Multi-modal Adaptive Contrast Learning (MACB-DF Sec. 3.2.1): margin InfoNCE losses, queue, temperature.

Losses (embeddings are L2-normalised, so similarity = dot product):
- cross-modal L_av / L_va (Eqs. 2, 7): an anchor of one modality, its own clip's other modality as the
  positive, and the K nearest (most similar) other-modality embeddings of OTHER clips, from the batch and
  the queue, as negatives with margin m: logit_neg = (s - m) / tau. Only clips whose audio and video are
  both real are anchors: a fake clip's two tracks are exactly what should not be pulled together.
- intra-modal L_vv / L_aa ("authenticity contrast"): within a modality, every other clip of the batch with
  the same modality label is a positive; the K nearest clips with the opposite label (batch + queue) are
  the negatives. This is what makes real and fake form clusters for Sec. 3.2.2.
Adaptive temperature: Eqs. 3-6 (`AdaptiveTemperature`). Readings are argued in docs/models/macbdf.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.models.macbdf.distributed import gather_rows, mean_over_processes

UNKNOWN = -1
# Similarity standing in for "no negative here": far below any cosine similarity, so exp() of its logit is
# exactly 0 in float32, while (unlike -inf) a row with no negative at all keeps finite gradients.
NO_NEGATIVE = -1.0e4


def margin_contrast(positive: Tensor, negatives: Tensor, tau: Tensor | float, margin: float) -> Tensor:
    """-log(e^{p/tau} / (e^{p/tau} + sum_k e^{(n_k - m)/tau})) per positive (Eq. 2's summand).

    positive (...,) similarities; negatives (..., K) similarities, NO_NEGATIVE where there is none. Written
    as softplus(logsumexp(negative logits) - positive logit), exact and stable; no negative at all gives 0.
    """
    negative_logits = (negatives - margin) / tau
    return F.softplus(torch.logsumexp(negative_logits, dim=-1) - positive / tau)


def nearest_negatives(similarity: Tensor, allowed: Tensor, k: int) -> Tensor:
    """The k largest similarities per row among the allowed columns, NO_NEGATIVE where fewer exist."""
    masked = similarity.masked_fill(~allowed, NO_NEGATIVE)
    return masked.topk(min(k, masked.shape[1]), dim=1).values


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the masked entries; an exact zero still attached to the graph when there are none."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def cross_modal_loss(
    anchors: Tensor,
    targets: Tensor,
    anchor_rows: Tensor,
    target_rows: Tensor,
    queue_targets: Tensor,
    queue_valid: Tensor,
    k: int,
    tau: Tensor | float,
    margin: float,
) -> Tensor:
    """L_av (anchors = audio, targets = video) or L_va (the reverse), Eqs. 2 and 7, averaged over anchors.

    anchor_rows (B,) bool: rows that are anchors (real pairs); target_rows (B,) bool: rows whose target may
    serve as a negative for another row's anchor; queue_valid (Q,) bool: usable queue entries.
    """
    batch = anchors.shape[0]
    # Similarities over tau in fp32 at least, whatever the compute dtype (bf16 autocast, a float32 queue).
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    anchors, targets = anchors.to(dtype), targets.to(dtype)
    positive = (anchors * targets).sum(dim=-1)
    similarity = anchors @ torch.cat([targets, queue_targets.to(dtype)]).T
    others = target_rows[None, :] & ~torch.eye(batch, dtype=torch.bool, device=anchors.device)
    allowed = torch.cat([others, queue_valid[None, :].expand(batch, -1)], dim=1)
    negatives = nearest_negatives(similarity, allowed, k)
    return masked_mean(margin_contrast(positive, negatives, tau, margin), anchor_rows)


def intra_modal_loss(
    embeddings: Tensor,
    labels: Tensor,
    queue_embeddings: Tensor,
    queue_labels: Tensor,
    k: int,
    tau: Tensor | float,
    margin: float,
) -> Tensor:
    """L_vv or L_aa: same-label batch clips as positives, the K nearest opposite-label clips as negatives.

    labels (B,) and queue_labels (Q,) are 0 real / 1 fake / -1 unknown (unknown rows take no part).
    Averaged over the (anchor, positive) pairs whose anchor has at least one negative.
    """
    batch = embeddings.shape[0]
    known = labels != UNKNOWN
    pool_labels = torch.cat([labels, queue_labels])
    similarity = embeddings @ torch.cat([embeddings, queue_embeddings]).T
    opposite = known[:, None] & (pool_labels[None, :] != UNKNOWN) & (pool_labels[None, :] != labels[:, None])
    negatives = nearest_negatives(similarity, opposite, k)
    positives = (
        known[:, None]
        & known[None, :]
        & (labels[:, None] == labels[None, :])
        & ~torch.eye(batch, dtype=torch.bool, device=embeddings.device)
        & opposite.any(dim=1, keepdim=True)
    )
    pair_losses = margin_contrast(
        similarity[:, :batch], negatives[:, None, :].expand(-1, batch, -1), tau, margin
    )
    return masked_mean(pair_losses, positives)


class NegativeQueue(nn.Module):
    """FIFO memory of past clips' embeddings and labels: the pool the K nearest negatives are drawn from.

    Buffers (saved in checkpoints, so a resumed run continues with the same negatives): per slot the video
    and audio embeddings, video/audio labels (-1 unknown or empty), whether the slot is filled and whether
    its clip had audio, and the write pointer. Updated from all processes' rows (see distributed.py).
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"queue size must be >= 0, got {size}")
        self.size = size
        self.register_buffer("video", torch.zeros(size, dim))
        self.register_buffer("audio", torch.zeros(size, dim))
        self.register_buffer("video_label", torch.full((size,), UNKNOWN, dtype=torch.long))
        self.register_buffer("audio_label", torch.full((size,), UNKNOWN, dtype=torch.long))
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("has_audio", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(
        self, video: Tensor, audio: Tensor, video_label: Tensor, audio_label: Tensor, has_audio: Tensor
    ) -> None:
        """Append one step's rows (of all processes), overwriting the oldest slots."""
        if self.size == 0:
            return
        rows = [gather_rows(t.detach()) for t in (video, audio, video_label, audio_label, has_audio)]
        video, audio, video_label, audio_label, has_audio = (t[-self.size :] for t in rows)
        slots = (self.pointer + torch.arange(video.shape[0], device=video.device)) % self.size
        self.video[slots] = video.to(self.video.dtype)
        self.audio[slots] = audio.to(self.audio.dtype)
        self.video_label[slots] = video_label.long()
        self.audio_label[slots] = torch.where(has_audio, audio_label.long(), UNKNOWN)
        self.filled[slots] = True
        self.has_audio[slots] = has_audio
        self.pointer.copy_((self.pointer + video.shape[0]) % self.size)


def _symlog(x: Tensor) -> Tensor:
    """sign(x) log(1 + |x|): brings a loss gradient of any scale into a range an MLP input can use."""
    return torch.sign(x) * torch.log1p(x.abs())


@dataclass
class TemperatureStep:
    """One step's temperature tau_t (attached to the graph) and the batch statistics it came from."""

    tau: Tensor
    basis: Tensor  # (3,) phi_1..phi_3 of Eq. 4 (zeros when the batch had too few pairs)


class AdaptiveTemperature(nn.Module):
    """tau_t of Eqs. 3-6 from the batch's cross-modal similarity matrix S and the previous steps.

    Eq. 3: w = softmax over all pairs of f_theta(pair features: s_ij, s_ij - mean(S), ||x_i - x_j||).
    Eq. 4: tau_new = tau_0 exp(beta . phi(S)), phi = (Var S, sum w |s - E S|^3, H(w) / log(#pairs)).
    Eq. 5: gamma_t = sigmoid(MLP([h_{t-1}, dtau_{t-1}, grad_tau L_{t-1}])).
    Eq. 6: tau_t = gamma_t tau_{t-1} + (1 - gamma_t) tau_new, kept in [tau_min, tau_max].
    h is an exponential average of (log tau, phi_1, phi_2, phi_3). S enters detached: the temperature
    reads the batch, it does not let the loss reshape the embeddings to move it.
    """

    HISTORY_DECAY = 0.9

    def __init__(self, tau0: float, tau_min: float, tau_max: float, hidden: int = 16) -> None:
        super().__init__()
        if not 0 < tau_min <= tau0 <= tau_max:
            raise ValueError(f"need 0 < tau_min <= tau0 <= tau_max, got {tau_min}, {tau0}, {tau_max}")
        self.tau0, self.tau_min, self.tau_max = tau0, tau_min, tau_max
        self.pair_scorer = nn.Sequential(nn.Linear(3, hidden), nn.Tanh(), nn.Linear(hidden, 1))  # f_theta
        self.beta = nn.Parameter(torch.zeros(3))
        self.gate = nn.Sequential(nn.Linear(6, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        # gamma starts at 0.9: the temperature moves slowly until the gate has learnt otherwise.
        nn.init.zeros_(self.gate[2].weight)
        nn.init.constant_(self.gate[2].bias, math.log(9.0))
        self.register_buffer("previous_tau", torch.tensor(tau0))
        self.register_buffer("previous_change", torch.tensor(0.0))
        self.register_buffer("previous_gradient", torch.tensor(0.0))
        self.register_buffer("history", torch.tensor([math.log(tau0), 0.0, 0.0, 0.0]))

    def basis(self, similarity: Tensor, pair_distance: Tensor) -> Tensor:
        """phi(S) of Eq. 4 with the attention weights of Eq. 3; similarity and distance are (n, m)."""
        s = similarity.reshape(-1)
        centred = s - s.mean()
        features = torch.stack([s, centred, pair_distance.reshape(-1)], dim=-1)
        weights = torch.softmax(self.pair_scorer(features).squeeze(-1), dim=0)
        variance = centred.square().mean()
        skewness = (weights * centred.abs().pow(3)).sum()
        entropy = -(weights * torch.log(weights.clamp_min(1e-12))).sum() / math.log(s.numel())
        return torch.stack([variance, skewness, entropy])

    def forward(self, audio: Tensor, video: Tensor) -> TemperatureStep:
        """tau_t from (n, E) audio and video embeddings of the clips that have both (detached inside)."""
        previous = self.previous_tau.clone()
        if audio.shape[0] < 2:  # no spread to measure: tau_new is the previous temperature
            return TemperatureStep(previous, torch.zeros(3, device=previous.device))
        audio, video = audio.detach(), video.detach()
        # cdist in fp32: CPU has no bf16 kernel for it (bf16 autocast or bf16 weights).
        wide = torch.promote_types(audio.dtype, torch.float32)
        distance = torch.cdist(audio.to(wide), video.to(wide)).to(audio.dtype)
        phi = self.basis(audio @ video.T, distance)
        log_ratio = (
            (self.beta * phi)
            .sum()
            .clamp(math.log(self.tau_min / self.tau0), math.log(self.tau_max / self.tau0))
        )
        tau_new = self.tau0 * torch.exp(log_ratio)
        gate_input = torch.cat(
            [self.history, _symlog(self.previous_change)[None], _symlog(self.previous_gradient)[None]]
        ).clone()
        gamma = torch.sigmoid(self.gate(gate_input)).squeeze(-1)
        tau = (gamma * previous + (1.0 - gamma) * tau_new).clamp(self.tau_min, self.tau_max)
        return TemperatureStep(tau, phi.detach())

    @torch.no_grad()
    def update(self, step: TemperatureStep, gradient: Tensor) -> None:
        """Keep tau_t, its change and dL/dtau_t as the next step's t-1 inputs (means over processes)."""
        tau = mean_over_processes(step.tau.detach())
        self.previous_change.copy_(tau - self.previous_tau)
        self.previous_tau.copy_(tau)
        self.previous_gradient.copy_(mean_over_processes(gradient.detach()))
        observed = torch.cat([torch.log(tau)[None], mean_over_processes(step.basis)])
        self.history.mul_(self.HISTORY_DECAY).add_((1.0 - self.HISTORY_DECAY) * observed)
