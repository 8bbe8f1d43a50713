"""Multi-scale large-kernel attention blocks (MACB-DF Sec. 3.2.3, Eqs. 11-16), 3-D for video, 2-D for audio.

One implementation serves both modalities: `dims=3` convolves (T, H, W) maps (MSTLKA with GSAU-video),
`dims=2` convolves (F, T) time-frequency maps (MFTLKA with the 2-D GSAU). Every operation is a convolution
with zero "same" padding or a per-position operation, so a block keeps the shape of its input and commutes
with shifts of the input wherever the receptive field does not reach the border.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

# Initial value of the learnable layer scales lambda_1, lambda_2 (Eqs. 12, 14): small, so a deep stack
# starts close to the identity and the residual branches grow as they learn (the paper gives no value).
LAYER_SCALE_INIT = 0.1
# Kernel of the depthwise gates G_i (Eq. 16) and of the GSAU depthwise convolution (not given in the paper).
GATE_KERNEL = 3


def _conv(dims: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    if dims == 2:
        return nn.Conv2d
    if dims == 3:
        return nn.Conv3d
    raise ValueError(f"LKA blocks are 2-D (audio) or 3-D (video), got dims={dims}")


def _depthwise(channels: int, kernel: int, dims: int, dilation: int = 1) -> nn.Module:
    """Depthwise convolution with zero 'same' padding (odd kernels only, so padding is symmetric)."""
    if kernel % 2 == 0:
        raise ValueError(f"depthwise kernels must be odd to keep shapes, got {kernel}")
    padding = dilation * (kernel - 1) // 2
    return _conv(dims)(channels, channels, kernel, padding=padding, dilation=dilation, groups=channels)


def _pointwise(in_channels: int, out_channels: int, dims: int) -> nn.Module:
    return _conv(dims)(in_channels, out_channels, 1)


def lka_kernels(kernel: int, dilation: int) -> tuple[int, int]:
    """(depthwise kernel 2d-1, dilated depthwise kernel ceil(K/d)) of Eq. 15's decomposition of a K kernel."""
    if kernel < 1 or dilation < 1:
        raise ValueError(f"LKA kernel and dilation must be >= 1, got K={kernel}, d={dilation}")
    dilated = math.ceil(kernel / dilation)
    if dilated % 2 == 0:
        raise ValueError(
            f"LKA scale (K={kernel}, d={dilation}): ceil(K/d) = {dilated} is even, which cannot keep the "
            "shape with symmetric padding; choose K, d with an odd ceil(K/d)"
        )
    return 2 * dilation - 1, dilated


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a channels-first map (the LN of Eqs. 11 and 13), per position."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class LargeKernelAttention(nn.Module):
    """STLKA (Eq. 15): pointwise(dilated depthwise(depthwise(X))), a K-sized receptive field cheaply."""

    def __init__(self, channels: int, kernel: int, dilation: int, dims: int) -> None:
        super().__init__()
        local, dilated = lka_kernels(kernel, dilation)
        self.depthwise = _depthwise(channels, local, dims)
        self.dilated = _depthwise(channels, dilated, dims, dilation=dilation)
        self.pointwise = _pointwise(channels, channels, dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.dilated(self.depthwise(x)))


class MultiScaleLKA(nn.Module):
    """MSTLKA / MFTLKA (Eq. 16): channel groups, each its own LKA scale, gated by a depthwise convolution."""

    def __init__(self, channels: int, scales: Sequence[tuple[int, int]], dims: int) -> None:
        super().__init__()
        if not scales:
            raise ValueError("MSTLKA needs at least one (kernel, dilation) scale")
        if channels < len(scales):
            raise ValueError(f"{channels} channels cannot be split into {len(scales)} scale groups")
        # Groups as even as possible; the first channels % n groups take one channel more.
        self.group_sizes = [
            channels // len(scales) + (i < channels % len(scales)) for i in range(len(scales))
        ]
        self.attention = nn.ModuleList(
            LargeKernelAttention(size, kernel, dilation, dims)
            for size, (kernel, dilation) in zip(self.group_sizes, scales, strict=True)
        )
        self.gates = nn.ModuleList(_depthwise(size, GATE_KERNEL, dims) for size in self.group_sizes)

    def forward(self, x: Tensor) -> Tensor:
        groups = torch.split(x, self.group_sizes, dim=1)
        return torch.cat(
            [
                gate(group) * attention(group)
                for group, gate, attention in zip(groups, self.gates, self.attention, strict=True)
            ],
            dim=1,
        )


class GatedSpatialAttentionUnit(nn.Module):
    """GSAU (-video): GSAU(a, b) = a * DW(b), a depthwise-convolution gate (3-D for video, 2-D for audio)."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        self.gate = _depthwise(channels, GATE_KERNEL, dims)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a * self.gate(b)


class MultiScaleLKABlock(nn.Module):
    """One block of Eqs. 11-14: a gated multi-scale LKA branch and a GSAU branch, each residual and scaled.

    Input and output are channels-first maps: (B, C, T, H, W) for dims=3, (B, C, F, T) for dims=2.
    """

    def __init__(self, channels: int, scales: Sequence[tuple[int, int]], dims: int) -> None:
        super().__init__()
        self.dims = dims
        self.norm1 = ChannelLayerNorm(channels)
        self.f1, self.f2, self.f3 = (_pointwise(channels, channels, dims) for _ in range(3))
        self.msla = MultiScaleLKA(channels, scales, dims)
        self.lambda1 = nn.Parameter(torch.tensor(LAYER_SCALE_INIT))
        self.norm2 = ChannelLayerNorm(channels)
        self.f4, self.f5, self.f6 = (_pointwise(channels, channels, dims) for _ in range(3))
        self.gsau = GatedSpatialAttentionUnit(channels, dims)
        self.lambda2 = nn.Parameter(torch.tensor(LAYER_SCALE_INIT))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.dims + 2:
            raise ValueError(
                f"a {self.dims}-D LKA block takes (B, C, ...{self.dims} axes), got {tuple(x.shape)}"
            )
        n = self.norm1(x)  # Eq. 11
        x = x + self.lambda1 * self.f3(self.msla(self.f1(n)) * self.f2(n))  # Eq. 12
        n = self.norm2(x)  # Eq. 13
        return x + self.lambda2 * self.f6(self.gsau(self.f4(n), self.f5(n)))  # Eq. 14


def mstlka_block(channels: int, scales: Sequence[tuple[int, int]]) -> MultiScaleLKABlock:
    """Video block: MSTLKA + GSAU-video over (T, H, W)."""
    return MultiScaleLKABlock(channels, scales, dims=3)


def mftlka_block(channels: int, scales: Sequence[tuple[int, int]]) -> MultiScaleLKABlock:
    """Audio block: MFTLKA + 2-D GSAU over (F, T)."""
    return MultiScaleLKABlock(channels, scales, dims=2)
