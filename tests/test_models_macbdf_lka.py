"""MACB-DF multi-scale LKA blocks: shapes, the Eq. 15 decomposition, shift equivariance away from borders."""

from __future__ import annotations

import pytest
import torch

from avforensics.models.macbdf.lka import ChannelLayerNorm, lka_kernels, mftlka_block, mstlka_block

SCALES = [(5, 2), (7, 3)]
# Receptive radius of one block with these scales: max over groups of (d - 1) + d * (ceil(K/d) - 1) / 2
# = max(1 + 2, 2 + 3) = 5 for the LKA branch, plus 1 for the GSAU branch's 3-wide depthwise gate.
RADIUS = 6


def _randomise(block: torch.nn.Module) -> None:
    """Layer scales of 1 and random biases, so the test sees every path at full strength."""
    torch.manual_seed(1)
    with torch.no_grad():
        block.lambda1.fill_(1.0)
        block.lambda2.fill_(1.0)
        for module in block.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Conv3d) and module.bias is not None:
                module.bias.normal_()


def test_lka_kernel_decomposition_and_even_kernel_error() -> None:
    assert lka_kernels(21, 3) == (5, 7)
    assert lka_kernels(5, 2) == (3, 3)
    with pytest.raises(ValueError, match="ceil\\(K/d\\) = 4 is even"):
        lka_kernels(7, 2)


def test_channel_layer_norm_matches_layer_norm_over_channels() -> None:
    x = torch.randn(2, 6, 3, 4)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ChannelLayerNorm(6)(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
def test_blocks_keep_shape_and_commute_with_shifts(dims: int) -> None:
    block = (mstlka_block if dims == 3 else mftlka_block)(9, SCALES)  # 9 channels: uneven groups 5 + 4
    assert block.msla.group_sizes == [5, 4]
    _randomise(block)
    size, shift = 20, 2
    x = torch.randn(1, 9, *([size] * dims))
    shifted = torch.roll(x, shifts=[shift] * dims, dims=list(range(2, 2 + dims)))
    with torch.no_grad():
        y, y_shifted = block(x), block(shifted)
    assert y.shape == x.shape
    inner = slice(RADIUS + shift, size - RADIUS)
    source = slice(RADIUS, size - RADIUS - shift)
    torch.testing.assert_close(
        y_shifted[(..., *[inner] * dims)], y[(..., *[source] * dims)], atol=1e-5, rtol=1e-5
    )
    # ... and the comparison is not vacuous: the block changes its input.
    assert (y - x).abs().max() > 0.1


def test_block_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="3-D LKA block"):
        mstlka_block(4, SCALES)(torch.zeros(1, 4, 5, 5))
