"""The CPU-size CLIP tower's convolutional stem: same token grid, saved and rebuilt, frozen means frozen."""

from __future__ import annotations

import pytest
import torch

from avforensics.backbones.conv_stem import ConvStem
from avforensics.backbones.sizes import build_clip_vision, clip_size_name
from avforensics.backbones.tuning import freeze


def test_stem_gives_the_patch_grid_of_the_convolution_it_replaces() -> None:
    torch.manual_seed(0)
    stem = ConvStem(3, 128, 16)
    assert stem(torch.randn(2, 3, 112, 112)).shape == (2, 128, 7, 7)
    assert ConvStem(3, 64, 32)(torch.randn(1, 3, 224, 224)).shape == (1, 64, 7, 7)
    with pytest.raises(ValueError, match="power-of-two patch size"):
        ConvStem(3, 64, 14)


def test_convstem_tower_has_clip_micro_tokens_and_rebuilds_from_its_config() -> None:
    torch.manual_seed(0)
    tower = build_clip_vision("clip-micro-convstem")
    assert isinstance(tower.embeddings.patch_embedding, ConvStem)
    assert clip_size_name(tower.config) == "clip-micro-convstem"
    frames = torch.randn(2, 3, 3, 112, 112)
    tower.eval()
    output = tower(frames)
    assert output.last_hidden_state.shape == (2, 3, 50, 128)  # CLS + 7 x 7, as clip-micro at 224 px
    rebuilt = build_clip_vision(tower.config.to_dict())
    rebuilt.load_state_dict(tower.state_dict())
    rebuilt.eval()
    assert torch.equal(rebuilt(frames).pooled, output.pooled)


def test_frozen_stem_keeps_its_batchnorm_statistics_in_train_mode() -> None:
    torch.manual_seed(0)
    tower = freeze(build_clip_vision("clip-micro-convstem"))
    before = {name: value.clone() for name, value in tower.state_dict().items()}
    tower.train()
    tower(torch.randn(4, 3, 112, 112) * 3 + 1)
    assert all(torch.equal(before[name], value) for name, value in tower.state_dict().items())
    trainable = build_clip_vision("clip-micro-convstem").train()
    statistics = trainable.embeddings.patch_embedding.layers[1].running_mean.clone()
    trainable(torch.randn(4, 3, 112, 112) * 3 + 1)
    assert not torch.equal(statistics, trainable.embeddings.patch_embedding.layers[1].running_mean)
