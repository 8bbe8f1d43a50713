"""Classification heads and their targets (MACB-DF Sec. 3.4, Eqs. 19-20)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avforensics.models.common import UNKNOWN_LABEL


class ProgressiveMLPHead(nn.Module):
    """Sample-level head: fully connected layers halving the width, each with BatchNorm, ReLU and Dropout.

    in_dim -> in_dim/2 -> ... (`reductions` times) -> 1 fake logit (the sigmoid of Sec. 3.4 is left to the
    loss and to `Outputs.probabilities`, which is numerically safer).
    """

    def __init__(self, in_dim: int, reductions: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(reductions):
            if width < 2:
                raise ValueError(f"cannot halve a width of {width}; use fewer head reductions")
            layers += [
                nn.Linear(width, width // 2),
                nn.BatchNorm1d(width // 2),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width //= 2
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """(B, in_dim) -> (B,) logits."""
        return self.layers(features).squeeze(-1)


def modality_frame_targets(modality_label: Tensor, frame_labels: Tensor) -> Tensor:
    """Per-frame targets (B, T) of one modality's frame head (Eq. 20).

    `frame_labels` say where the clip is fake, not which track; a modality labelled real is real in every
    frame, a modality labelled fake is fake where the clip's frames are, an unknown modality is unknown.
    """
    real = torch.zeros_like(frame_labels)
    unknown = torch.full_like(frame_labels, UNKNOWN_LABEL)
    label = modality_label[:, None].expand_as(frame_labels)
    return torch.where(label == 0, real, torch.where(label == 1, frame_labels, unknown))
