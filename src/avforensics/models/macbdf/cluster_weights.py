"""Cluster-aware fusion weights (MACB-DF Sec. 3.2.2, Eqs. 9-10).

Each modality keeps an online clustering of its contrastive embeddings. The number of clusters adapts to
the data (DP-means: a sample farther than `new_cluster_distance` (cosine distance) from every centre opens
a cluster, clusters no sample has reached for long are retired), centres and the within-cluster covariance
are exponential averages, d_max is an exponential average of the per-batch maximum Mahalanobis distance.
A clip's weight for modality m is gamma ReLU(f_m(MHA_m)) + (1 - gamma) / (D_m + eps) (Eq. 10); the pair
(w_v, w_a) is then normalised to sum to one, so Eq. 17 is a convex combination and "without adaptive
weights" is exactly 0.5 / 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.models.macbdf.distributed import gather_rows

# Neutral composite distance when a modality has no cluster yet (an untrained model): equal weights.
NEUTRAL_DISTANCE = 1.0
# Shrinkage of the covariance towards its mean variance before inversion (well-conditioned Sigma^-1).
COVARIANCE_SHRINKAGE = 0.1


def composite_distance(
    x: Tensor, centre: Tensor, precision: Tensor, max_mahalanobis: Tensor | float, beta: float
) -> Tensor:
    """Eq. 9: beta * d / d_max + (1 - beta) * (1 - cos(x, c)), with d the Mahalanobis distance under Sigma^-1.

    x, centre (B, E): each row with the centre of its cluster; precision (E, E).
    """
    diff = x - centre
    mahalanobis = torch.sqrt((diff @ precision * diff).sum(dim=-1).clamp_min(0.0) + 1e-12)
    cosine_distance = 1.0 - F.cosine_similarity(x, centre, dim=-1)
    return beta * mahalanobis / max_mahalanobis + (1.0 - beta) * cosine_distance


class ClusterState(nn.Module):
    """Online adaptive clustering of one modality's embeddings; all state is buffers (checkpointed).

    `mass` is a decayed count of the samples each cluster received (0 = inactive slot).
    """

    def __init__(
        self,
        dim: int,
        max_clusters: int,
        new_cluster_distance: float,
        momentum: float = 0.1,
        mass_decay: float = 0.99,
        min_mass: float = 0.5,
    ) -> None:
        super().__init__()
        if max_clusters < 1:
            raise ValueError(f"max_clusters must be >= 1, got {max_clusters}")
        if not 0 < new_cluster_distance <= 2:
            raise ValueError(
                f"new_cluster_distance is a cosine distance in (0, 2], got {new_cluster_distance}"
            )
        self.new_cluster_distance = new_cluster_distance
        self.momentum, self.mass_decay, self.min_mass = momentum, mass_decay, min_mass
        self.register_buffer("centres", torch.zeros(max_clusters, dim))
        self.register_buffer("mass", torch.zeros(max_clusters))
        self.register_buffer("covariance", torch.eye(dim))
        self.register_buffer("max_mahalanobis", torch.tensor(0.0))

    @property
    def active(self) -> Tensor:
        return self.mass > 0

    @property
    def count(self) -> int:
        """The current (adaptive) number of clusters K."""
        return int(self.active.sum())

    def precision(self) -> Tensor:
        """Sigma^-1 of the shrunk covariance (a fresh tensor, safe to use in the autograd graph)."""
        dim = self.covariance.shape[0]
        scale = self.covariance.diagonal().mean().clamp_min(1e-6)
        shrunk = (1 - COVARIANCE_SHRINKAGE) * self.covariance + COVARIANCE_SHRINKAGE * scale * torch.eye(
            dim, device=self.covariance.device, dtype=self.covariance.dtype
        )
        wide = torch.promote_types(shrunk.dtype, torch.float32)  # no bf16 kernel for inv
        return torch.linalg.inv(shrunk.to(wide)).to(shrunk.dtype)

    def assign(self, x: Tensor) -> Tensor:
        """Index of the nearest active centre (cosine distance) of each row; requires count >= 1."""
        distance = 1.0 - F.normalize(x, dim=-1) @ F.normalize(self.centres, dim=-1).T
        return distance.masked_fill(~self.active[None, :], math.inf).argmin(dim=1)

    def distance(self, x: Tensor, beta: float) -> Tensor:
        """Eq. 9 for each row of x (B, E); NEUTRAL_DISTANCE everywhere while no cluster exists."""
        if self.count == 0 or float(self.max_mahalanobis) <= 0:
            return torch.full(x.shape[:1], NEUTRAL_DISTANCE, dtype=x.dtype, device=x.device)
        centre = self.centres[self.assign(x.detach())].clone()
        return composite_distance(x, centre, self.precision(), self.max_mahalanobis.clone(), beta)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """One DP-means step on this step's rows of all processes (x (B, E), detached)."""
        x = gather_rows(x.detach()).to(self.centres.dtype)
        if x.shape[0] == 0:
            return
        self._open_cluster(x)
        assignment = self.assign(x)
        one_hot = F.one_hot(assignment, self.centres.shape[0]).to(x.dtype)  # (B, K)
        counts = one_hot.sum(dim=0)
        means = (one_hot.T @ x) / counts.clamp_min(1.0)[:, None]
        reached = counts > 0
        self.centres[reached] += self.momentum * (means[reached] - self.centres[reached])
        self.mass.mul_(self.mass_decay).add_(counts)
        self.mass[self.mass < self.min_mass] = 0.0  # retire clusters no sample has reached for long
        residual = x - self.centres[assignment]
        batch_covariance = residual.T @ residual / x.shape[0]
        self.covariance += self.momentum * (batch_covariance - self.covariance)
        diff = x - self.centres[assignment]
        batch_max = torch.sqrt((diff @ self.precision() * diff).sum(dim=-1).clamp_min(0.0)).max()
        if float(self.max_mahalanobis) <= 0:
            self.max_mahalanobis.copy_(batch_max)
        else:
            self.max_mahalanobis += self.momentum * (batch_max - self.max_mahalanobis)

    def _open_cluster(self, x: Tensor) -> None:
        """Open one cluster at the sample farthest from all centres, if it is farther than the threshold."""
        free = torch.nonzero(~self.active).flatten()
        if free.numel() == 0:
            return
        if self.count == 0:
            candidate, far_enough = x.mean(dim=0), True
        else:
            nearest = (1.0 - F.normalize(x, dim=-1) @ F.normalize(self.centres[self.active], dim=-1).T).amin(
                1
            )
            farthest = int(nearest.argmax())
            candidate, far_enough = x[farthest], bool(nearest[farthest] > self.new_cluster_distance)
        if far_enough:
            self.centres[free[0]] = candidate
            self.mass[free[0]] = self.min_mass


class ClusterFusionWeights(nn.Module):
    """w_v, w_a per clip (Eq. 10, normalised to sum to 1) from the clusters and a multi-head attention score.

    MHA_m: the modality's mean per-time feature queries the per-time features of both modalities; f_m maps
    the attended feature to a scalar. gamma is learnt (a sigmoid, started at 0.5).
    """

    def __init__(
        self,
        embed_dim: int,
        feature_dim: int,
        heads: int,
        max_clusters: int,
        new_cluster_distance: float,
        beta: float,
        eps: float,
    ) -> None:
        super().__init__()
        if not 0 <= beta <= 1:
            raise ValueError(f"composite distance beta must be in [0, 1], got {beta}")
        self.beta, self.eps = beta, eps
        self.clusters = nn.ModuleDict(
            {m: ClusterState(embed_dim, max_clusters, new_cluster_distance) for m in ("video", "audio")}
        )
        self.attention = nn.ModuleDict(
            {m: nn.MultiheadAttention(feature_dim, heads, batch_first=True) for m in ("video", "audio")}
        )
        self.score = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(feature_dim, feature_dim // 2), nn.GELU(), nn.Linear(feature_dim // 2, 1)
                )
                for m in ("video", "audio")
            }
        )
        self.gamma_logit = nn.Parameter(torch.tensor(0.0))

    def importance(
        self, modality: str, embedding: Tensor, own: Tensor, context: Tensor, padding: Tensor
    ) -> Tensor:
        """Un-normalised w_m (B,) of Eq. 10."""
        attended = self.attention[modality](
            own.mean(dim=1, keepdim=True), context, context, key_padding_mask=padding, need_weights=False
        )[0].squeeze(1)
        gamma = torch.sigmoid(self.gamma_logit)
        distance = self.clusters[modality].distance(embedding, self.beta)
        return gamma * F.relu(self.score[modality](attended).squeeze(-1)) + (1 - gamma) / (
            distance + self.eps
        )

    def forward(
        self, z_video: Tensor, z_audio: Tensor, video_seq: Tensor, audio_seq: Tensor, audio_present: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(w_v, w_a), each (B,), w_v + w_a = 1; clips without audio get (1, 0)."""
        context = torch.cat([video_seq, audio_seq], dim=1)
        time = video_seq.shape[1]
        padding = torch.cat(
            [
                torch.zeros_like(audio_present[:, None]).expand(-1, time),
                ~audio_present[:, None].expand(-1, time),
            ],
            dim=1,
        )
        w_video = self.importance("video", z_video, video_seq, context, padding)
        w_audio = self.importance("audio", z_audio, audio_seq, context, padding) * audio_present
        total = w_video + w_audio
        return w_video / total, w_audio / total

    @torch.no_grad()
    def update(self, z_video: Tensor, z_audio: Tensor, audio_present: Tensor) -> None:
        self.clusters["video"].update(z_video)
        self.clusters["audio"].update(z_audio[audio_present])
