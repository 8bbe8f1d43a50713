"""OpenAI's original checkpoints -> (transformers config, transformers state dict).

CLIP: a TorchScript archive (the files OpenAI publishes) or a plain state dict with `visual.*` keys; the
fused attention `in_proj` is split into q/k/v. Whisper: `{"dims": ..., "model_state_dict": ...}` as
written by openai-whisper. Architecture sizes are read from the tensors / dims, like OpenAI's own code.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor
from transformers import CLIPVisionConfig, WhisperConfig

from avforensics.backbones.errors import BackboneWeightsError

_CLIP_BLOCK = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")
_CLIP_BLOCK_NAMES = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_CLIP_TOP_NAMES = {
    "conv1.weight": "embeddings.patch_embedding.weight",
    "class_embedding": "embeddings.class_embedding",
    "positional_embedding": "embeddings.position_embedding.weight",
    "ln_pre.weight": "pre_layrnorm.weight",
    "ln_pre.bias": "pre_layrnorm.bias",
    "ln_post.weight": "post_layernorm.weight",
    "ln_post.bias": "post_layernorm.bias",
}
_CLIP_HEAD_WIDTH = 64  # OpenAI CLIP: vision heads = width // 64

_WHISPER_BLOCK = re.compile(r"^encoder\.blocks\.(\d+)\.(.+)$")
_WHISPER_BLOCK_NAMES = {
    "attn.query": "self_attn.q_proj",
    "attn.key": "self_attn.k_proj",
    "attn.value": "self_attn.v_proj",
    "attn.out": "self_attn.out_proj",
    "attn_ln": "self_attn_layer_norm",
    "mlp.0": "fc1",
    "mlp.2": "fc2",
    "mlp_ln": "final_layer_norm",
}
_WHISPER_TOP_NAMES = {
    "encoder.conv1.weight": "conv1.weight",
    "encoder.conv1.bias": "conv1.bias",
    "encoder.conv2.weight": "conv2.weight",
    "encoder.conv2.bias": "conv2.bias",
    "encoder.positional_embedding": "embed_positions.weight",
    "encoder.ln_post.weight": "layer_norm.weight",
    "encoder.ln_post.bias": "layer_norm.bias",
}


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_openai_checkpoint(path: Path) -> Mapping[str, object]:
    """A TorchScript archive's state dict, or the dict a plain `torch.save` wrote (tensors only)."""
    try:
        if _is_torchscript(path):
            # TorchScript is deprecated, but it is the format OpenAI published.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location="cpu").state_dict()
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as error:
        raise BackboneWeightsError(
            f"{path}: not a readable PyTorch / TorchScript checkpoint ({error})"
        ) from error


def _rename_block(rest: str, names: Mapping[str, str]) -> str | None:
    module, _, leaf = rest.rpartition(".")
    return None if module not in names else f"{names[module]}.{leaf}"


def clip_vision_from_openai(
    state: Mapping[str, Tensor], source: str
) -> tuple[CLIPVisionConfig, dict[str, Tensor]]:
    """Map an OpenAI CLIP state dict (`visual.*` keys; text keys are ignored) to CLIPVisionModel names."""
    visual = {key[len("visual.") :]: value for key, value in state.items() if key.startswith("visual.")}
    if not visual:
        raise BackboneWeightsError(f"{source}: no 'visual.*' tensors; not an OpenAI CLIP checkpoint")
    if (
        "conv1.weight" not in visual
        or "positional_embedding" not in visual
        or "layer1.0.conv1.weight" in visual
    ):
        raise BackboneWeightsError(
            f"{source}: a ResNet CLIP image encoder; only ViT CLIP models are supported"
        )
    hf: dict[str, Tensor] = {}
    for key, value in visual.items():
        if key in _CLIP_TOP_NAMES:
            hf[_CLIP_TOP_NAMES[key]] = value
            continue
        match = _CLIP_BLOCK.match(key)
        if match is None:
            if key != "proj":  # the image-text projection is not part of the vision tower
                raise BackboneWeightsError(f"{source}: unexpected OpenAI CLIP tensor 'visual.{key}'")
            continue
        layer, rest = match.groups()
        prefix = f"encoder.layers.{layer}."
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            leaf = rest.rsplit("_", 1)[1]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                hf[f"{prefix}self_attn.{name}.{leaf}"] = part
            continue
        renamed = _rename_block(rest, _CLIP_BLOCK_NAMES)
        if renamed is None:
            raise BackboneWeightsError(f"{source}: unexpected OpenAI CLIP tensor 'visual.{key}'")
        hf[prefix + renamed] = value
    return _clip_config(visual, source), hf


def _clip_config(visual: Mapping[str, Tensor], source: str) -> CLIPVisionConfig:
    width, _, patch, _ = visual["conv1.weight"].shape
    positions = visual["positional_embedding"].shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise BackboneWeightsError(f"{source}: {positions - 1} patch positions do not form a square grid")
    if width % _CLIP_HEAD_WIDTH:
        raise BackboneWeightsError(f"{source}: width {width} is not a multiple of CLIP's head width 64")
    layers = {int(m.group(1)) for key in visual if (m := _CLIP_BLOCK.match(key))}
    return CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=len(layers),
        num_attention_heads=width // _CLIP_HEAD_WIDTH,
        image_size=patch * grid,
        patch_size=patch,
        projection_dim=visual["proj"].shape[1] if "proj" in visual else width,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )


def whisper_encoder_from_openai(
    checkpoint: Mapping[str, object], source: str
) -> tuple[WhisperConfig, dict[str, Tensor]]:
    """Map an openai-whisper checkpoint to WhisperEncoder names (decoder tensors are ignored)."""
    dims, state = checkpoint.get("dims"), checkpoint.get("model_state_dict")
    if not isinstance(dims, Mapping) or not isinstance(state, Mapping):
        raise BackboneWeightsError(
            f"{source}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')"
        )
    hf: dict[str, Tensor] = {}
    for key, value in state.items():
        if not key.startswith("encoder."):
            continue
        if key in _WHISPER_TOP_NAMES:
            hf[_WHISPER_TOP_NAMES[key]] = value
            continue
        match = _WHISPER_BLOCK.match(key)
        renamed = None if match is None else _rename_block(match.group(2), _WHISPER_BLOCK_NAMES)
        if renamed is None:
            raise BackboneWeightsError(f"{source}: unexpected openai-whisper tensor '{key}'")
        hf[f"layers.{match.group(1)}.{renamed}"] = value
    try:
        config = WhisperConfig(
            num_mel_bins=dims["n_mels"],
            max_source_positions=dims["n_audio_ctx"],
            d_model=dims["n_audio_state"],
            encoder_attention_heads=dims["n_audio_head"],
            encoder_layers=dims["n_audio_layer"],
            encoder_ffn_dim=4 * dims["n_audio_state"],
        )
    except KeyError as error:
        raise BackboneWeightsError(f"{source}: openai-whisper 'dims' lacks {error}") from error
    return config, hf
