"""Spatiotemporal adapter (StA) that lets a frozen CLIP image tower see a clip, after Yan et al. 2024 [62].

CAD's modality-specific video encoder "draws inspiration from [62]"; [62] inserts one StA after every
transformer block of a frozen CLIP ViT. One StA, on the tokens (B*T, 1 + rows*cols, D) of a block output:

    h = GELU(down(x))                                   bottleneck D -> D_a (D_a = D / 2 in [62])
    patches of h folded into clips (B, D_a, T, rows, cols); the CLS token skips the 3D part
    spatial stream  s = h + mean_k S_k(h),  S_k: depthwise 3D conv stack, kernel (1, k, k), k in 3, 5, 7
    temporal stream t = h + mean_k T_k(h),  T_k: depthwise 3D conv stack, kernel (k, 1, 1), k in 3, 5, 7
    cross-attention between the streams over all T*rows*cols positions:
        s2t = Attn(query=t, key=value=s),  t2s = Attn(query=s, key=value=t)
    h' = GELU((s2t + t2s) / 2), unfolded, CLS put back
    x + GELU(up(h'))                                    up is zero-initialised: training starts at CLIP

A conv stack is three depthwise Conv3d + BatchNorm3d, with ReLU between them. A learnable temporal
position embedding (zero-initialised, one row per frame) is added to every token of frame t before the
first block. What [62] describes in prose (two streams of 3D convolutions with different kernel sizes,
spatial and temporal processed separately, lightweight, plug-and-play on a frozen image model) is what
this module builds; the exact kernels, depth, bottleneck width and the cross-attention follow the
authors' public release, which the paper does not spell out (docs/models/cad.md lists the points).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avforensics.backbones.hooks import HookContext, LayerHook, LayerModules


class AxisDepthwiseConv3d(nn.Conv3d):
    """A depthwise Conv3d whose kernel spans time only (k, 1, 1) or space only (1, k, k), run as a Conv2d.

    The same weights and the same result as `nn.Conv3d` (state dicts are interchangeable), faster on CPU
    and GPU (benchmarks/bench_depthwise_conv.py), and right in bf16 where CPU's depthwise Conv3d is not:
    its weight gradient for a temporal kernel longer than the clip is wrong in bf16 (torch 2.x).
    """

    def __init__(self, channels: int, kernel: tuple[int, int, int]):
        time, rows, cols = kernel
        if time != 1 and (rows, cols) != (1, 1):
            raise ValueError(f"kernel {kernel} spans time and space; an axis kernel spans one of them")
        super().__init__(channels, channels, kernel, padding=tuple(k // 2 for k in kernel), groups=channels)

    def forward(self, clips: Tensor) -> Tensor:
        """(B, C, T, rows, cols) -> same shape."""
        batch, channels, frames, rows, cols = clips.shape
        if self.kernel_size[0] == 1:  # spatial: every frame a (C, rows, cols) image
            images = clips.transpose(1, 2).reshape(batch * frames, channels, rows, cols)
            out = F.conv2d(images, self.weight[:, :, 0], self.bias, padding=self.padding[1:],
                           groups=self.groups)
            return out.reshape(batch, frames, channels, rows, cols).transpose(1, 2)
        series = clips.reshape(batch, channels, frames, rows * cols)  # temporal: (T, positions) images
        out = F.conv2d(series, self.weight[..., 0], self.bias, padding=(self.padding[0], 0),
                       groups=self.groups)
        return out.reshape(batch, channels, frames, rows, cols)


class DepthwiseConvStack(nn.Module):
    """Three depthwise Conv3d + BatchNorm3d with ReLU between: one kernel shape of one stream."""

    def __init__(self, channels: int, kernel: tuple[int, int, int], depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [AxisDepthwiseConv3d(channels, kernel), nn.BatchNorm3d(channels)]
            if index < depth - 1:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, clips: Tensor) -> Tensor:
        """(B, C, T, rows, cols) -> same shape."""
        return self.layers(clips)


class ConvStream(nn.Module):
    """One stream: the mean of several kernel sizes along one axis group, plus the input (residual)."""

    def __init__(self, channels: int, kernels: Sequence[tuple[int, int, int]], depth: int):
        super().__init__()
        self.branches = nn.ModuleList(DepthwiseConvStack(channels, kernel, depth) for kernel in kernels)

    def forward(self, clips: Tensor) -> Tensor:
        return clips + torch.stack([branch(clips) for branch in self.branches]).mean(dim=0)


class StreamCrossAttention(nn.Module):
    """Each stream queries the other over every (frame, row, col) position of a clip."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.spatial_to_temporal = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.temporal_to_spatial = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, spatial: Tensor, temporal: Tensor) -> Tensor:
        """Two (B, C, T, rows, cols) streams -> the mean of both attention outputs, same shape."""
        batch, channels, frames, rows, cols = spatial.shape
        s = spatial.flatten(2).transpose(1, 2)  # (B, T*rows*cols, C)
        t = temporal.flatten(2).transpose(1, 2)
        s2t, _ = self.spatial_to_temporal(t, s, s, need_weights=False)
        t2s, _ = self.temporal_to_spatial(s, t, t, need_weights=False)
        mixed = (s2t + t2s) / 2
        return mixed.transpose(1, 2).reshape(batch, channels, frames, rows, cols)


class SpatioTemporalAdapter(nn.Module):
    """One StA; a `LayerModules` module: `forward(hidden, ctx) -> hidden` on one block's output."""

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        spatial_kernels: Sequence[int] = (3, 5, 7),
        temporal_kernels: Sequence[int] = (3, 5, 7),
        conv_depth: int = 3,
        attention_heads: int = 2,
    ):
        super().__init__()
        if any(k % 2 == 0 for k in (*spatial_kernels, *temporal_kernels)):
            raise ValueError("StA kernel sizes must be odd so the convolutions keep the clip's shape")
        self.down = nn.Linear(dim, bottleneck)
        self.spatial = ConvStream(bottleneck, [(1, k, k) for k in spatial_kernels], conv_depth)
        self.temporal = ConvStream(bottleneck, [(k, 1, 1) for k in temporal_kernels], conv_depth)
        self.cross_attention = StreamCrossAttention(bottleneck, attention_heads)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.act = nn.GELU()

    def forward(self, hidden: Tensor, ctx: HookContext) -> Tensor:
        """(B*T, prefix + rows*cols, D) -> same shape; identity while `up` is zero."""
        reduced = self.act(self.down(hidden))
        prefix, patches = ctx.split_prefix(reduced)
        clips = ctx.content_as_clips(patches).permute(0, 4, 1, 2, 3)  # (B, C, T, rows, cols)
        mixed = self.act(self.cross_attention(self.spatial(clips), self.temporal(clips)))
        patches = ctx.clips_as_content(mixed.permute(0, 2, 3, 4, 1))
        return hidden + self.act(self.up(torch.cat([prefix, patches], dim=1)))


class TemporalPositionEmbedding(nn.Module, LayerHook):
    """Learnable per-frame embedding added to every token of frame t before the first block (zero init)."""

    def __init__(self, num_frames: int, dim: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(num_frames, dim))

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        if index != 0:
            return hidden
        if ctx.num_frames != self.embedding.shape[0]:
            raise ValueError(
                f"the temporal embedding was built for {self.embedding.shape[0]} frames, "
                f"the clip has {ctx.num_frames}"
            )
        per_frame = hidden.unflatten(0, (ctx.batch_size, ctx.num_frames))
        return (per_frame + self.embedding.to(hidden.dtype)[None, :, None]).flatten(0, 1)


class SpatioTemporalAdapterSet(nn.Module):
    """Everything StA adds to one CLIP tower: the temporal embedding and one adapter per adapted block.

    `layers` (default: all) are the adapted blocks. The hooks act on the blocks from `first_layer` on, with
    indices relative to it: the frozen blocks before it never change, so their output can be cached and
    the adapted suffix run alone. The temporal embedding enters before the first adapted block (block 0
    when every block is adapted, as in [62]).
    """

    def __init__(
        self,
        num_layers: int,
        num_frames: int,
        dim: int,
        bottleneck_ratio: float = 0.5,
        layers: Sequence[int] | None = None,
        spatial_kernels: Sequence[int] = (3, 5, 7),
        temporal_kernels: Sequence[int] = (3, 5, 7),
        conv_depth: int = 3,
        attention_heads: int = 2,
    ):
        super().__init__()
        layers = list(range(num_layers)) if layers is None else sorted(layers)
        if not layers:
            raise ValueError("StA needs at least one adapted layer")
        bad = [layer for layer in layers if not 0 <= layer < num_layers]
        if bad:
            raise ValueError(f"adapter layers {bad} outside the {num_layers} layers of the CLIP tower")
        # The attention needs a width divisible by its heads: round D * ratio to a multiple of them.
        bottleneck = max(1, round(dim * bottleneck_ratio / attention_heads)) * attention_heads
        self.first_layer = min(layers)
        self.temporal_embedding = TemporalPositionEmbedding(num_frames, dim)
        adapters = [
            SpatioTemporalAdapter(
                dim, bottleneck, spatial_kernels, temporal_kernels, conv_depth, attention_heads
            )
            for _ in layers
        ]
        relative = [layer - self.first_layer for layer in layers]
        self.adapters = LayerModules(adapters, point="after_layer", layers=relative)

    def hooks(self) -> list[LayerHook]:
        """Hooks for the blocks from `first_layer` on (index 0 = `first_layer`)."""
        return [self.temporal_embedding, self.adapters]
