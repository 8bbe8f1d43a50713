"""Named backbone architectures (the published ones and tiny ones for tests and CPU demos), random init.

Names follow the Hugging Face repositories (openai/clip-vit-base-patch32 -> "clip-vit-base-patch32",
openai/whisper-base -> "whisper-base"); OpenAI's own CLIP names ("ViT-B/32") are accepted as aliases.
Whisper ".en" models share the encoder of their multilingual size. "whisper-large" means large-v3, as in
openai-whisper (128 mel bins); large-v1 and large-v2 have the "whisper-large-v2" encoder (80 mel bins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from transformers import CLIPVisionConfig, PretrainedConfig, WhisperConfig

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.identity import WeightsId
from avforensics.backbones.whisper import HookedWhisperEncoder

_ConfigT = TypeVar("_ConfigT", bound=PretrainedConfig)


def _clip(hidden: int, layers: int, heads: int, image: int, patch: int, projection: int) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "image_size": image,
        "patch_size": patch,
        "projection_dim": projection,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }


def _whisper(dim: int, layers: int, heads: int, mels: int = 80) -> dict[str, Any]:
    return {
        "d_model": dim,
        "encoder_layers": layers,
        "encoder_attention_heads": heads,
        "encoder_ffn_dim": 4 * dim,
        "num_mel_bins": mels,
        "max_source_positions": 1500,
    }


CLIP_VISION_SIZES: dict[str, dict[str, Any]] = {
    "clip-vit-base-patch32": _clip(768, 12, 12, 224, 32, 512),
    "clip-vit-base-patch16": _clip(768, 12, 12, 224, 16, 512),
    "clip-vit-large-patch14": _clip(1024, 24, 16, 224, 14, 768),
    "clip-vit-large-patch14-336": _clip(1024, 24, 16, 336, 14, 768),
    # 224 px input like the real ones, 50 tokens of width 128: a CLIP-shaped tower that trains on 2 cores.
    "clip-micro": _clip(128, 4, 2, 224, 32, 128),
    # The same 50 tokens from 112 px faces through a convolutional stem: learns from scratch in minutes on
    # 2 cores where clip-micro's linear patch embedding does not (docs/backbones.md).
    "clip-micro-convstem": {**_clip(128, 4, 2, 112, 16, 128), "conv_stem": True},
    # One block of it: trained from scratch, it learns the synthetic visual fakes in fewer steps, at a
    # higher rate, and each step costs less (docs/models/cad.md).
    "clip-nano-convstem": {**_clip(128, 1, 2, 112, 16, 128), "conv_stem": True},
}
CLIP_ALIASES = {
    "ViT-B/32": "clip-vit-base-patch32",
    "ViT-B/16": "clip-vit-base-patch16",
    "ViT-L/14": "clip-vit-large-patch14",
    "ViT-L/14@336px": "clip-vit-large-patch14-336",
}

WHISPER_ENCODER_SIZES: dict[str, dict[str, Any]] = {
    "whisper-tiny": _whisper(384, 4, 6),
    "whisper-base": _whisper(512, 6, 8),
    "whisper-small": _whisper(768, 12, 12),
    "whisper-medium": _whisper(1024, 24, 16),
    "whisper-large-v2": _whisper(1280, 32, 20),
    "whisper-large-v3": _whisper(1280, 32, 20, mels=128),
    # Whisper-shaped encoder of width 128 (2 heads of 64, like the real head size) for tests and demos.
    "whisper-micro": _whisper(128, 2, 2),
}
WHISPER_ALIASES = {
    "whisper-tiny.en": "whisper-tiny",
    "whisper-base.en": "whisper-base",
    "whisper-small.en": "whisper-small",
    "whisper-medium.en": "whisper-medium",
    "whisper-large-v1": "whisper-large-v2",
    "whisper-large": "whisper-large-v3",
    "whisper-large-v3-turbo": "whisper-large-v3",
}


def _lookup(name: str, sizes: Mapping[str, dict[str, Any]], aliases: Mapping[str, str], kind: str) -> dict:
    canonical = aliases.get(name, name)
    if canonical not in sizes:
        known = ", ".join(sorted([*sizes, *aliases]))
        raise KeyError(f"unknown {kind} architecture '{name}'; known: {known}")
    return dict(sizes[canonical])


def _config(
    name_or_config: str | Mapping[str, Any] | _ConfigT,
    config_type: type[_ConfigT],
    sizes: Mapping[str, dict[str, Any]],
    aliases: Mapping[str, str],
    kind: str,
) -> _ConfigT:
    if isinstance(name_or_config, config_type):
        return name_or_config
    if isinstance(name_or_config, str):
        name_or_config = _lookup(name_or_config, sizes, aliases, kind)
    return config_type(**name_or_config)


def clip_vision_config(name_or_config: str | Mapping[str, Any] | CLIPVisionConfig) -> CLIPVisionConfig:
    """A CLIPVisionConfig from a size name, a dict of config values, or a config (returned as is)."""
    return _config(name_or_config, CLIPVisionConfig, CLIP_VISION_SIZES, CLIP_ALIASES, "CLIP vision")


def whisper_encoder_config(name_or_config: str | Mapping[str, Any] | WhisperConfig) -> WhisperConfig:
    """A WhisperConfig from a size name, a dict of config values, or a config (returned as is)."""
    return _config(name_or_config, WhisperConfig, WHISPER_ENCODER_SIZES, WHISPER_ALIASES, "Whisper encoder")


def _size_name(config: PretrainedConfig, sizes: Mapping[str, Mapping[str, Any]]) -> str:
    """The name in `sizes` whose architecture `config` has (decoder sizes ignored), or "custom"."""
    values = config.to_dict()
    matches = (
        name
        for name, size in sizes.items()
        if all(values.get(key) == value for key, value in size.items() if not key.startswith("decoder_"))
    )
    return next(matches, "custom")


def clip_size_name(config: CLIPVisionConfig) -> str:
    """The size name whose architecture `config` has, or "custom"."""
    return _size_name(config, CLIP_VISION_SIZES)


def whisper_size_name(config: WhisperConfig) -> str:
    """The encoder size name whose architecture `config` has, or "custom"."""
    return _size_name(config, WHISPER_ENCODER_SIZES)


def _source_text(name_or_config: object) -> str:
    return name_or_config if isinstance(name_or_config, str) else "config"


def build_clip_vision(name_or_config: str | Mapping[str, Any] | CLIPVisionConfig) -> HookedCLIPVision:
    """A randomly initialised (transformers' init, torch's global RNG) CLIP vision tower."""
    model = HookedCLIPVision(clip_vision_config(name_or_config))
    model.weights_id = WeightsId(clip_size_name(model.config), "random", _source_text(name_or_config), None)
    return model


def build_whisper_encoder(name_or_config: str | Mapping[str, Any] | WhisperConfig) -> HookedWhisperEncoder:
    """A randomly initialised Whisper encoder (sinusoid positions as in the real model)."""
    model = HookedWhisperEncoder(whisper_encoder_config(name_or_config))
    model.weights_id = WeightsId(
        whisper_size_name(model.config), "random", _source_text(name_or_config), None
    )
    return model
