"""HookedWhisperEncoder against transformers' WhisperEncoder, any input length, and the audio prompts."""

from __future__ import annotations

import pytest
import torch
from backbones_fixtures import whisper_config
from torch import nn
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from avforensics.backbones.hooks import FeaturePrompts
from avforensics.backbones.whisper import HookedWhisperEncoder

TOL = 1e-5


@pytest.fixture(scope="module")
def pair() -> tuple[WhisperEncoder, HookedWhisperEncoder]:
    torch.manual_seed(0)
    reference = WhisperEncoder(whisper_config()).eval()
    ours = HookedWhisperEncoder(whisper_config()).eval()
    result = ours.load_state_dict(reference.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    return reference, ours


def test_30_second_input_matches_transformers(pair) -> None:
    reference, ours = pair
    mel = torch.randn(2, 80, 3000)
    with torch.no_grad():
        expected = reference(mel).last_hidden_state
        got = ours(mel, output_hidden_states=True)
    assert got.last_hidden_state.shape == (2, 1500, 128)
    assert (got.last_hidden_state - expected).abs().max() <= TOL
    assert len(got.hidden_states) == 3 and got.pooled is None and got.num_prefix_tokens == 0


@pytest.mark.parametrize(("frames", "tokens"), [(64, 32), (63, 32), (200, 100)])
def test_short_inputs_equal_the_layers_run_by_hand(pair, frames: int, tokens: int) -> None:
    reference, ours = pair
    mel = torch.randn(2, 80, frames)
    with torch.no_grad():
        hidden = nn.functional.gelu(reference.conv1(mel))
        hidden = nn.functional.gelu(reference.conv2(hidden)).transpose(1, 2)
        hidden = hidden + reference.embed_positions.weight[:tokens]
        for layer in reference.layers:
            hidden = layer(hidden, None)
        expected = reference.layer_norm(hidden)
        got = ours(mel).last_hidden_state
    assert got.shape == (2, tokens, 128)
    assert (got - expected).abs().max() <= TOL


def test_bad_inputs_raise_clear_errors(pair) -> None:
    _, ours = pair
    with pytest.raises(ValueError, match="1501 tokens, more than the 1500 positions"):
        ours(torch.randn(1, 80, 3002))
    with pytest.raises(ValueError, match=r"expected log-mel input \(B, 80, frames\)"):
        ours(torch.randn(1, 128, 64))


def test_identity_prompt_projections_reduce_to_the_plain_encoder(pair) -> None:
    _, ours = pair
    mel = torch.randn(2, 80, 64)
    prompts = FeaturePrompts(num_layers=2, num_tokens=32, dim=128, prompt_dim=16, global_token=False)
    with torch.no_grad():
        plain = ours(mel).last_hidden_state
        prompted = ours(mel, hooks=[prompts]).last_hidden_state
        assert (prompted - plain).abs().max() <= TOL
        prompts.projections[0].weight.normal_(std=0.05)  # now the prompts matter
        assert (ours(mel, hooks=[prompts]).last_hidden_state - plain).abs().max() > 1e-3
    assert prompts.projections[1].in_features == 16 + 128


def test_global_token_is_prepended_once_and_prompts_are_trainable(pair) -> None:
    _, ours = pair
    mel = torch.randn(2, 80, 64)
    prompts = FeaturePrompts(num_layers=2, num_tokens=32, dim=128, prompt_dim=16)
    out = ours(mel, hooks=[prompts], output_hidden_states=True)
    assert [state.shape[1] for state in out.hidden_states] == [32, 33, 33]
    assert out.num_prefix_tokens == 1 and out.last_hidden_state.shape == (2, 33, 128)
    out.last_hidden_state[:, 1:].mean(dim=1).sum().backward()
    assert prompts.global_token.grad is not None and prompts.global_token.grad.abs().sum() > 0
    # FC_l starts as [0 | I]: its prompt half learns first (like LoRA's zero B), then the prompts follow.
    assert prompts.projections[0].weight.grad[:, :16].abs().sum() > 0


def test_prompts_refuse_another_window_length(pair) -> None:
    _, ours = pair
    prompts = FeaturePrompts(num_layers=2, num_tokens=32, dim=128, prompt_dim=16)
    with pytest.raises(ValueError, match="built for 32 tokens, the input has 50"):
        ours(torch.randn(1, 80, 100), hooks=[prompts])


def test_layerdrop_is_refused() -> None:
    config = whisper_config()
    config.encoder_layerdrop = 0.1
    with pytest.raises(ValueError, match="encoder_layerdrop=0"):
        HookedWhisperEncoder(config)
