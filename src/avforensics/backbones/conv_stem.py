"""Convolutional patch embedding for CLIP-shaped towers trained from scratch.

A ViT's patch embedding is one linear map per patch; trained from random weights on a few hundred steps it
learns next to nothing about local texture (measured on the synthetic corpus, docs/backbones.md). A stack
of stride-2 3x3 convolutions with BatchNorm before the transformer ("early convolutions", Xiao et al.
2021) gives the tower the locality prior that pretrained CLIP weights would otherwise bring. It produces
the patch grid of the convolution it replaces, so positions, prompts and adapters see the same tokens.
"""

from __future__ import annotations

import math

from torch import Tensor, nn


class ConvStem(nn.Module):
    """(N, C, H, W) -> (N, width, H / patch, W / patch): log2(patch) - 1 conv-BN-ReLU stages then a conv.

    Stage widths double from `base_width` and stop at `width`. A frozen stem (no parameter requiring a
    gradient) stays in eval mode, so its BatchNorm statistics are frozen with its weights.
    """

    def __init__(self, in_channels: int, width: int, patch: int, base_width: int = 16) -> None:
        super().__init__()
        stages = math.log2(patch)
        if patch < 2 or stages != int(stages):
            raise ValueError(f"a convolutional stem needs a power-of-two patch size >= 2, got {patch}")
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(int(stages) - 1):
            out = min(width, base_width * 2**stage)
            convolution = nn.Conv2d(channels, out, 3, 2, 1, bias=False)
            layers += [convolution, nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, width, 3, 2, 1))
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self) -> Tensor:
        """The first convolution's weight (transformers' CLIP embeddings read the input dtype from it)."""
        return self.layers[0].weight

    def train(self, mode: bool = True) -> ConvStem:
        return super().train(mode and any(parameter.requires_grad for parameter in self.parameters()))

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)
