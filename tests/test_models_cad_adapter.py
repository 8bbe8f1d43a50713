"""The spatiotemporal adapter (StA) on the hooked CLIP, and LoRA on CAD's audio encoder."""

from __future__ import annotations

import copy

import pytest
import torch
from cad_fixtures import TINY_CLIP, TINY_WHISPER

from avforensics.backbones.sizes import build_clip_vision, build_whisper_encoder
from avforensics.backbones.tuning import count_parameters
from avforensics.models.cad.specific_branch import (
    AudioSpecificEncoder,
    VideoSpecificEncoder,
    clip_prefix,
    whisper_prefix,
)
from avforensics.models.cad.st_adapter import AxisDepthwiseConv3d, SpatioTemporalAdapterSet


def _clip():
    torch.manual_seed(0)
    return build_clip_vision(TINY_CLIP).eval()


def _frames(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 5, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _perturb_up_projections(adapters: SpatioTemporalAdapterSet) -> None:
    with torch.no_grad():
        for adapter in adapters.adapters.adapters:
            adapter.up.weight.normal_(0, 0.5)
        adapters.temporal_embedding.embedding.normal_(0, 0.5)


def test_adapters_start_as_the_identity():
    clip = _clip()
    adapters = SpatioTemporalAdapterSet(clip.num_layers, 5, clip.hidden_size).eval()
    frames = _frames()
    plain = clip(frames).last_hidden_state
    adapted = clip(frames, hooks=adapters.hooks()).last_hidden_state
    assert torch.allclose(plain, adapted, atol=1e-6)


def test_adapters_mix_information_across_frames():
    """Without adapters a frame ignores the other frames; with StA, editing frame 0 moves frame 3."""
    clip = _clip()
    adapters = SpatioTemporalAdapterSet(clip.num_layers, 5, clip.hidden_size).eval()
    _perturb_up_projections(adapters)
    frames = _frames()
    edited = frames.clone()
    edited[:, 0] += 1.0
    plain_change = (clip(edited).pooled[:, 3] - clip(frames).pooled[:, 3]).abs().max().item()
    hooks = adapters.hooks()
    adapted_change = (clip(edited, hooks=hooks).pooled[:, 3] - clip(frames, hooks=hooks).pooled[:, 3]).abs()
    assert plain_change == 0.0
    assert adapted_change.max().item() > 1e-3
    # ...but never across the clips of a batch
    only_first = frames.clone()
    only_first[0, 0] += 1.0
    untouched = (clip(only_first, hooks=hooks).pooled[1] - clip(frames, hooks=hooks).pooled[1]).abs().max()
    assert untouched.item() == 0.0


def test_adapter_bottleneck_layers_and_parameter_count():
    adapters = SpatioTemporalAdapterSet(num_layers=4, num_frames=8, dim=768, layers=[1, 3])
    assert len(adapters.adapters.adapters) == 2
    adapter = adapters.adapters.adapters[0]
    assert adapter.down.out_features == 384  # D / 2, as in [62]
    dim, width = 768, 384
    linear = 2 * dim * width + dim + width
    # depthwise conv: width * k-volume weights + width bias; BN: 2 * width; 3 convs per kernel shape
    convs = sum(3 * (width * volume + width + 2 * width) for volume in (9, 25, 49, 3, 5, 7))
    attention = 2 * (4 * width * width + 4 * width)
    assert sum(p.numel() for p in adapter.parameters()) == linear + convs + attention
    with pytest.raises(ValueError, match="outside the 4 layers"):
        SpatioTemporalAdapterSet(num_layers=4, num_frames=8, dim=768, layers=[4])


def test_temporal_embedding_refuses_another_clip_length():
    clip = _clip()
    encoder = VideoSpecificEncoder(clip, num_frames=4)
    with pytest.raises(ValueError, match="built for 4 frames"):
        encoder(clip, clip_prefix(clip, _frames(), 0), (4, 4))


def test_adapted_suffix_from_a_cached_prefix_equals_the_full_pass():
    """Adapters on the last block only: the frozen first block's output (what the cache holds) plus the
    adapted suffix give, at initialisation, exactly the frozen tower's per-frame features."""
    clip = _clip()
    frames = _frames()
    encoder = VideoSpecificEncoder(clip, num_frames=5, adapter={"layers": [1]}).eval()
    full = clip(frames, output_hidden_states=True)
    prefix = clip_prefix(clip, frames, 1)
    assert torch.allclose(prefix, full.hidden_states[1], atol=1e-6)
    assert torch.allclose(encoder(clip, prefix, (4, 4)), full.pooled, atol=1e-5)
    _perturb_up_projections(encoder.adapters)
    assert (encoder(clip, prefix, (4, 4)) - full.pooled).abs().max().item() > 1e-3


def test_lora_adds_exactly_rank_times_in_plus_out_per_adapted_projection():
    torch.manual_seed(0)
    whisper = build_whisper_encoder(TINY_WHISPER)
    base_total = count_parameters(whisper)[1]
    encoder = AudioSpecificEncoder(whisper, rank=8, alpha=16)
    trainable, total = count_parameters(encoder)
    expected = 2 * 2 * 8 * (32 + 32)  # 2 layers x (q_proj, v_proj) x r * (in + out)
    assert trainable == expected
    assert total == base_total + expected
    names = [f"layers.{i}.self_attn.{p}" for i in (0, 1) for p in ("q_proj", "v_proj")]
    assert sorted(encoder.adapted) == names


def test_lora_training_leaves_the_base_weights_unchanged():
    torch.manual_seed(0)
    encoder = AudioSpecificEncoder(build_whisper_encoder(TINY_WHISPER), rank=8, alpha=16)
    base_before = {n: p.detach().clone() for n, p in encoder.named_parameters() if not p.requires_grad}
    prefix = whisper_prefix(encoder.whisper, torch.randn(2, 80, 16), 0)
    before = encoder(prefix, tokens=8).detach()
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        encoder(prefix, tokens=8).square().mean().backward()
        optimizer.step()
    after = encoder(prefix, tokens=8).detach()
    assert (after - before).abs().max().item() > 1e-4  # the adapters learned something
    for name, parameter in encoder.named_parameters():
        if not parameter.requires_grad:
            assert torch.equal(parameter, base_before[name]), name


def test_lora_on_the_last_layer_from_a_prefix_starts_equal_to_the_frozen_encoder():
    torch.manual_seed(0)
    whisper = build_whisper_encoder(TINY_WHISPER).eval()
    frozen = copy.deepcopy(whisper)
    encoder = AudioSpecificEncoder(whisper, rank=8, alpha=16, layers=[1])
    assert sorted(encoder.adapted) == ["layers.1.self_attn.q_proj", "layers.1.self_attn.v_proj"]
    mel = torch.randn(2, 80, 16)
    full = frozen(mel, output_hidden_states=True)
    prefix = whisper_prefix(encoder.whisper, mel, 1)
    assert torch.allclose(prefix, full.hidden_states[1], atol=1e-6)
    expected = full.last_hidden_state[:, :8].mean(dim=1)
    assert torch.allclose(encoder(prefix, tokens=8), expected, atol=1e-5)


@pytest.mark.parametrize("kernel", [(3, 1, 1), (7, 1, 1), (1, 3, 3), (1, 7, 7)])
def test_axis_depthwise_conv_equals_conv3d_and_is_right_in_bf16(kernel):
    """Same output and gradients as nn.Conv3d with the same weights (fp32), on a channels-last view as StA
    feeds it; in bf16 its weight gradient stays within bf16 rounding of fp32 (CPU's Conv3d's does not for
    a temporal kernel longer than the clip)."""
    conv = AxisDepthwiseConv3d(8, kernel)
    reference = torch.nn.Conv3d(8, 8, kernel, padding=conv.padding, groups=8)
    reference.load_state_dict(conv.state_dict())
    clips = torch.randn(2, 4, 5, 6, 8, generator=torch.Generator().manual_seed(0)).permute(0, 4, 1, 2, 3)
    results = []
    for module, dtype in ((conv, torch.float32), (reference, torch.float32), (conv, torch.bfloat16)):
        module.zero_grad()
        inputs = clips.to(dtype).detach().requires_grad_()
        out = module.to(dtype)(inputs)
        out.float().square().sum().backward()
        results.append((out.float(), inputs.grad.float(), module.weight.grad.float()))
        module.float()
    for ours, theirs in zip(results[0], results[1], strict=True):
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    for bf16, fp32 in zip(results[2], results[0], strict=True):
        assert torch.allclose(bf16, fp32, atol=0.05 * fp32.abs().max().item(), rtol=0.02)


def test_axis_depthwise_conv_refuses_a_kernel_over_time_and_space():
    with pytest.raises(ValueError, match="spans time and space"):
        AxisDepthwiseConv3d(4, (3, 3, 3))
