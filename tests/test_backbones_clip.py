"""HookedCLIPVision against transformers' CLIPVisionModel, and the token / adapter hooks on it."""

from __future__ import annotations

import pytest
import torch
from backbones_fixtures import clip_config
from torch import Tensor, nn
from transformers import CLIPVisionModel

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.hooks import HookContext, LayerHook, LayerModules, TokenPrompts
from avforensics.backbones.tuning import count_parameters, freeze

TOL = 1e-5
PATCHES = 16  # 32 px / 8 px patches, squared


@pytest.fixture(scope="module")
def pair() -> tuple[CLIPVisionModel, HookedCLIPVision]:
    torch.manual_seed(0)
    reference = CLIPVisionModel(clip_config()).eval()
    ours = HookedCLIPVision(clip_config()).eval()
    result = ours.load_state_dict(reference.state_dict())  # same names, nothing missing or extra
    assert not result.missing_keys and not result.unexpected_keys
    return reference, ours


class Recorder(LayerHook):
    """Records the tokens at positions [start, stop) seen before every layer."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop, self.seen = start, stop, []

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        self.seen.append(hidden[:, self.start : self.stop].detach().clone())
        return hidden


@pytest.mark.parametrize("size", [(32, 32), (48, 48), (32, 64)])
def test_plain_forward_matches_transformers(pair, size: tuple[int, int]) -> None:
    reference, ours = pair
    images = torch.randn(3, 3, *size)
    with torch.no_grad():
        expected = reference(images, interpolate_pos_encoding=size != (32, 32), output_hidden_states=True)
        got = ours(images, output_hidden_states=True)
    assert (got.last_hidden_state - expected.last_hidden_state).abs().max() <= TOL
    assert (got.pooled - expected.pooler_output).abs().max() <= TOL
    assert len(got.hidden_states) == len(expected.hidden_states) == 3
    for mine, theirs in zip(got.hidden_states, expected.hidden_states, strict=True):
        assert (mine - theirs).abs().max() <= TOL
    assert got.num_prefix_tokens == 1
    assert got.last_hidden_state.shape[1] == 1 + (size[0] // 8) * (size[1] // 8)


def test_clip_batches_keep_their_leading_dims(pair) -> None:
    _, ours = pair
    clips = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        as_clips = ours(clips, output_hidden_states=True)
        as_images = ours(clips.flatten(0, 1))
    assert as_clips.last_hidden_state.shape == (2, 3, 1 + PATCHES, 128)
    assert as_clips.pooled.shape == (2, 3, 128)
    assert as_clips.hidden_states[1].shape == (2, 3, 1 + PATCHES, 128)
    assert torch.equal(as_clips.last_hidden_state.flatten(0, 1), as_images.last_hidden_state)


def test_bad_inputs_raise_clear_errors(pair) -> None:
    _, ours = pair
    with pytest.raises(ValueError, match="not a multiple of the patch size 8"):
        ours(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"expected \(N,3,H,W\)"):
        ours(torch.randn(3, 32, 32))


def test_keep_prompts_grow_by_n_per_layer_and_sit_after_cls(pair) -> None:
    _, ours = pair
    prompts = TokenPrompts(num_layers=2, num_tokens=3, dim=128, mode="keep")
    recorder = Recorder(1, 4)
    with torch.no_grad():
        out = ours(torch.randn(2, 3, 32, 32), hooks=[prompts, recorder], output_hidden_states=True)
    lengths = [state.shape[1] for state in out.hidden_states]
    assert lengths == [17, 20, 23]
    assert out.num_prefix_tokens == 1 + 2 * 3
    for index, seen in enumerate(recorder.seen):  # newest prompts right after CLS, before every layer
        assert torch.equal(seen, prompts.prompts[index].detach().expand(2, -1, -1))


def test_replace_prompts_overwrite_the_same_positions(pair) -> None:
    _, ours = pair
    prompts = TokenPrompts(num_layers=2, num_tokens=3, dim=128, mode="replace")
    recorder = Recorder(1, 4)
    with torch.no_grad():
        out = ours(torch.randn(2, 3, 32, 32), hooks=[prompts, recorder], output_hidden_states=True)
    assert [state.shape[1] for state in out.hidden_states] == [17, 20, 20]
    assert out.num_prefix_tokens == 4
    for index, seen in enumerate(recorder.seen):
        assert torch.equal(seen, prompts.prompts[index].detach().expand(2, -1, -1))


def test_prompt_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="'keep' or 'replace'"):
        TokenPrompts(2, 1, 8, mode="append")


class PassThrough(LayerHook):
    def after_attention(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return hidden


def test_layer_halves_equal_the_whole_layer(pair) -> None:
    _, ours = pair
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = ours(images).last_hidden_state
        halved = ours(images, hooks=[PassThrough()]).last_hidden_state
    assert PassThrough().points() == frozenset({"after_attention"})
    assert (plain - halved).abs().max() <= 1e-6


class TemporalMix(nn.Module):
    """A toy spatiotemporal adapter: adds `scale` x the clip's mean over frames to every patch token."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, hidden: Tensor, ctx: HookContext) -> Tensor:
        prefix, content = ctx.split_prefix(hidden)
        clips = ctx.content_as_clips(content)
        self.shapes.append(tuple(clips.shape))
        mixed = clips + self.scale * clips.mean(dim=1, keepdim=True)
        return torch.cat([prefix, ctx.clips_as_content(mixed)], dim=1)


def test_adapter_sees_clips_and_mixes_frames(pair) -> None:
    _, ours = pair
    clips = torch.randn(2, 4, 3, 32, 32)
    changed = clips.clone()
    changed[:, 1] += 1.0  # only frame 1 differs
    adapters = LayerModules([TemporalMix(0.5), TemporalMix(0.5)], point="after_attention")
    with torch.no_grad():
        plain_a, plain_b = ours(clips).last_hidden_state, ours(changed).last_hidden_state
        mixed_a, mixed_b = (ours(x, hooks=[adapters]).last_hidden_state for x in (clips, changed))
    assert adapters.adapters[0].shapes[0] == (2, 4, 4, 4, 128)
    assert torch.equal(plain_a[:, 0], plain_b[:, 0])  # frames are independent without the adapter
    assert (mixed_a[:, 0] - mixed_b[:, 0]).abs().max() > 1e-3  # frame 0 now sees frame 1
    zero = LayerModules([TemporalMix(0.0)], point="after_layer", layers=[1])
    with torch.no_grad():
        assert (ours(clips, hooks=[zero]).last_hidden_state - plain_a).abs().max() <= TOL


def test_frozen_backbone_stays_bit_identical_after_a_step(pair) -> None:
    _, ours = pair
    before = {name: tensor.clone() for name, tensor in ours.state_dict().items()}
    freeze(ours)
    prompts = TokenPrompts(num_layers=2, num_tokens=1, dim=128)
    start = prompts.prompts.detach().clone()
    optimiser = torch.optim.Adam(prompts.parameters(), lr=1e-2)
    out = ours(torch.randn(2, 3, 32, 32), hooks=[prompts])
    out.last_hidden_state[:, 1].pow(2).mean().backward()
    optimiser.step()
    assert all(torch.equal(before[name], tensor) for name, tensor in ours.state_dict().items())
    assert all(parameter.grad is None for parameter in ours.parameters())
    assert not torch.equal(prompts.prompts.detach(), start)
    assert count_parameters(ours)[0] == 0
    assert count_parameters(prompts) == (2 * 128, 2 * 128)
