"""LoRA through peft on our Whisper encoder, freezing and parameter counts."""

from __future__ import annotations

import pytest
import torch
from backbones_fixtures import whisper_config
from torch import nn

from avforensics.backbones.tuning import add_lora, count_parameters, freeze, lora_state_dict
from avforensics.backbones.whisper import HookedWhisperEncoder

DIM, LAYERS = 128, 2


@pytest.fixture
def encoder() -> HookedWhisperEncoder:
    torch.manual_seed(0)
    return HookedWhisperEncoder(whisper_config()).eval()


def test_lora_adds_exactly_r_times_in_plus_out_per_linear(encoder: HookedWhisperEncoder) -> None:
    _, total_before = count_parameters(encoder)
    adapted = add_lora(encoder, rank=8, alpha=16)
    expected = LAYERS * 2 * 8 * (DIM + DIM)  # q_proj and v_proj in every layer
    assert sorted(adapted) == sorted(
        f"layers.{i}.self_attn.{p}" for i in range(LAYERS) for p in ("q_proj", "v_proj")
    )
    assert count_parameters(encoder) == (expected, total_before + expected)
    assert sum(t.numel() for t in lora_state_dict(encoder).values()) == expected
    assert encoder.layers[0].self_attn.q_proj.scaling["default"] == 2.0  # alpha / r


def test_lora_subset_of_layers_and_targets(encoder: HookedWhisperEncoder) -> None:
    adapted = add_lora(encoder, targets=("k_proj", "out_proj"), rank=4, layers=[1])
    assert sorted(adapted) == ["layers.1.self_attn.k_proj", "layers.1.self_attn.out_proj"]
    assert count_parameters(encoder)[0] == 2 * 4 * (DIM + DIM)
    with pytest.raises(ValueError, match="matches LoRA targets"):
        add_lora(HookedWhisperEncoder(whisper_config()), targets=("no_such_proj",))


def test_lora_starts_as_identity_trains_and_leaves_base_weights_unchanged(
    encoder: HookedWhisperEncoder,
) -> None:
    mel = torch.randn(2, 80, 64)
    with torch.no_grad():
        plain = encoder(mel).last_hidden_state
    base = {name: tensor.clone() for name, tensor in encoder.state_dict().items()}
    add_lora(encoder)
    with torch.no_grad():
        assert torch.equal(encoder(mel).last_hidden_state, plain)  # B = 0 at start
    lora = [p for p in encoder.parameters() if p.requires_grad]
    target = torch.randn_like(plain)
    optimiser = torch.optim.SGD(lora, lr=0.05)
    for _ in range(2):  # the first step moves B away from zero, the second then moves A too
        optimiser.zero_grad()
        (encoder(mel).last_hidden_state * target).sum().backward()
        optimiser.step()
    state = encoder.state_dict()
    for name, tensor in base.items():
        stored = name.replace("q_proj.", "q_proj.base_layer.").replace("v_proj.", "v_proj.base_layer.")
        assert torch.equal(state[stored], tensor), name
    with torch.no_grad():
        assert (encoder(mel).last_hidden_state - plain).abs().max() > 1e-4


def test_freeze_and_counts_count_shared_parameters_once() -> None:
    shared = nn.Linear(4, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 2))
    assert count_parameters(model) == (15 + 8, 15 + 8)
    freeze(model[0])
    assert count_parameters(model) == (8, 23)
    assert freeze(model) is model and count_parameters(model) == (0, 23)
