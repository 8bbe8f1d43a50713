"""Hugging Face checkpoint directories -> (config, backbone state dict), reading only the tensors needed.

Handles `model.safetensors`, sharded safetensors (`*.safetensors.index.json`) and the older
`pytorch_model.bin`; full models (CLIPModel, WhisperForConditionalGeneration) as well as bare towers, by
keeping only the keys under the backbone's prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor
from transformers import CLIPConfig, CLIPVisionConfig, WhisperConfig

from avforensics.backbones.errors import BackboneWeightsError

# Prefixes under which each backbone's tensors live, tried in order (full model first, bare tower last).
CLIP_VISION_PREFIXES = ("vision_model.", "")
CLIP_VISION_ROOTS = ("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.")
WHISPER_ENCODER_PREFIXES = ("model.encoder.", "encoder.", "")
WHISPER_ENCODER_ROOTS = ("conv1.", "conv2.", "embed_positions.", "layers.", "layer_norm.")


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a checkpoint directory, in shard order; safetensors preferred."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [directory / shard for shard in shards]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (directory / single).is_file():
            return [directory / single]
    raise BackboneWeightsError(
        f"{directory}: no model.safetensors or pytorch_model.bin (or their index) found"
    )


def read_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise BackboneWeightsError(f"{directory}: no config.json; not a Hugging Face checkpoint directory")
    return json.loads(path.read_text())


def clip_vision_config_from_dir(directory: Path) -> CLIPVisionConfig:
    model_type = read_config(directory).get("model_type")
    if model_type == "clip":
        return CLIPConfig.from_pretrained(directory).vision_config
    if model_type == "clip_vision_model":
        return CLIPVisionConfig.from_pretrained(directory)
    raise BackboneWeightsError(f"{directory}: config model_type is {model_type!r}, not a CLIP model")


def whisper_config_from_dir(directory: Path) -> WhisperConfig:
    model_type = read_config(directory).get("model_type")
    if model_type != "whisper":
        raise BackboneWeightsError(f"{directory}: config model_type is {model_type!r}, not a Whisper model")
    return WhisperConfig.from_pretrained(directory)


def select_backbone_tensors(
    keys: Sequence[str], prefixes: Sequence[str], roots: Sequence[str], source: str
) -> dict[str, str]:
    """Map backbone key -> stored key, using the first prefix under which backbone tensors are found."""
    for prefix in prefixes:
        chosen = {
            key[len(prefix) :]: key
            for key in keys
            if key.startswith(prefix)
            and key[len(prefix) :].startswith(roots)
            and not key.endswith("position_ids")
        }
        if chosen:
            return chosen
    raise BackboneWeightsError(
        f"{source}: no backbone tensors found (looked under prefixes {list(prefixes)})"
    )


def read_backbone_state(
    files: Sequence[Path], select: Callable[[Sequence[str]], dict[str, str]]
) -> dict[str, Tensor]:
    """Load only the selected tensors of `files` (all shards of one checkpoint), opening each file once."""
    keys_by_file: dict[Path, list[str]] = {}
    pickled: dict[Path, dict[str, Tensor]] = {}
    for path in files:
        if path.suffix == ".safetensors":
            with safe_open(path, framework="pt") as handle:
                keys_by_file[path] = list(handle.keys())
        else:
            try:
                pickled[path] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except (RuntimeError, OSError, EOFError) as error:
                raise BackboneWeightsError(f"{path}: unreadable PyTorch weights file ({error})") from error
            keys_by_file[path] = list(pickled[path])
    name_of = {key: name for name, key in select([k for keys in keys_by_file.values() for k in keys]).items()}
    state: dict[str, Tensor] = {}
    for path, keys in keys_by_file.items():
        needed = [key for key in keys if key in name_of]
        if path in pickled:
            state.update({name_of[key]: pickled[path][key] for key in needed})
        elif needed:
            with safe_open(path, framework="pt") as handle:
                state.update({name_of[key]: handle.get_tensor(key) for key in needed})
    return state
