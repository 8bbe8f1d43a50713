"""Load a CLIP vision tower or a Whisper encoder from wherever its weights are.

`source` may be
- a Hugging Face checkpoint directory (full CLIPModel / WhisperModel / ...ForConditionalGeneration, or a
  bare tower; safetensors, sharded or pytorch_model.bin);
- a hub id "owner/name" (downloaded with huggingface_hub where there is internet);
- an OpenAI original checkpoint file (.pt: CLIP TorchScript archive or state dict, openai-whisper dict);
- a CTranslate2 Whisper `model.bin` (or its directory);
- the name of weights installed with `avforensics weights install NAME` (e.g. "whisper-base").
The returned backbone is in eval mode, in `dtype`, and carries `weights_id` (format, name, sha256).
"""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from avforensics.backbones import hf_format, openai_format
from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.errors import BackboneWeightsError, WeightsUnavailableError
from avforensics.backbones.identity import WeightsId, sha256_of_files
from avforensics.backbones.sizes import clip_size_name, whisper_size_name
from avforensics.backbones.whisper import HookedWhisperEncoder

ModuleT = TypeVar("ModuleT", bound=nn.Module)
_HUB_PATTERNS = (
    ("config.json", "*.safetensors", "*.safetensors.index.json"),
    ("config.json", "pytorch_model*.bin*"),
)


def load_clip_vision(source: str | Path, dtype: torch.dtype = torch.float32) -> HookedCLIPVision:
    """A HookedCLIPVision with the weights of `source` (see the module doc for what `source` may be)."""
    kind, path = _locate(source)
    if kind == "huggingface":
        config = hf_format.clip_vision_config_from_dir(path)
        files = hf_format.weight_files(path)
        select = partial(
            hf_format.select_backbone_tensors,
            prefixes=hf_format.CLIP_VISION_PREFIXES,
            roots=hf_format.CLIP_VISION_ROOTS,
            source=str(path),
        )
        state = hf_format.read_backbone_state(files, select)
    elif kind == "openai":
        files = [path]
        config, state = openai_format.clip_vision_from_openai(
            openai_format.read_openai_checkpoint(path), str(path)
        )
    else:
        raise BackboneWeightsError(f"{path}: a {kind} file holds no CLIP image encoder")
    model = _filled(HookedCLIPVision(config), state, str(path), optional=())
    model.weights_id = WeightsId(clip_size_name(config), kind, str(source), sha256_of_files(files))
    return model.to(dtype).eval()


def load_whisper_encoder(source: str | Path, dtype: torch.dtype = torch.float32) -> HookedWhisperEncoder:
    """A HookedWhisperEncoder with the weights of `source` (see the module doc for what `source` may be)."""
    kind, path = _locate(source)
    select = partial(
        hf_format.select_backbone_tensors,
        prefixes=hf_format.WHISPER_ENCODER_PREFIXES,
        roots=hf_format.WHISPER_ENCODER_ROOTS,
        source=str(path),
    )
    if kind == "huggingface":
        config = hf_format.whisper_config_from_dir(path)
        files = hf_format.weight_files(path)
        state = hf_format.read_backbone_state(files, select)
    elif kind == "openai":
        files = [path]
        checkpoint = openai_format.read_openai_checkpoint(path)
        config, state = openai_format.whisper_encoder_from_openai(checkpoint, str(path))
    else:
        from avforensics.backbones.ctranslate2 import model_bin_path, whisper_from_ctranslate2

        files = [model_bin_path(path)]
        config, full_state = whisper_from_ctranslate2(path)
        state = {name: full_state[key] for name, key in select(list(full_state)).items()}
    # Whisper's positions are fixed sinusoids, which the fresh encoder already holds if a file omits them.
    model = _filled(HookedWhisperEncoder(config), state, str(path), optional=("embed_positions.weight",))
    model.weights_id = WeightsId(whisper_size_name(config), kind, str(source), sha256_of_files(files))
    return model.to(dtype).eval()


def _filled(model: ModuleT, state: dict[str, Tensor], source: str, optional: tuple[str, ...]) -> ModuleT:
    """Copy `state` into `model`, failing with the missing / unexpected names if they do not fit."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise BackboneWeightsError(f"{source}: weights do not fit the architecture: {error}") from error
    missing = [name for name in missing if name not in optional]
    if missing or unexpected:
        raise BackboneWeightsError(
            f"{source}: weights do not fit the architecture; "
            f"missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    return model


def _locate(source: str | Path) -> tuple[str, Path]:
    """(format, local path) of a source: huggingface / openai / ctranslate2; fetches hub ids."""
    path = Path(source).expanduser()
    if path.is_dir():
        return ("ctranslate2" if (path / "model.bin").is_file() else "huggingface"), path
    if path.is_file():
        is_ct2 = path.suffix == ".bin" and not zipfile.is_zipfile(path)
        return ("ctranslate2" if is_ct2 else "openai"), path
    text = str(source)
    if isinstance(source, str) and text.count("/") == 1 and not text.startswith((".", "~", "/")):
        return "huggingface", _download(text)
    if "/" in text or "\\" in text:
        raise BackboneWeightsError(f"{text}: no such file or directory")
    return "huggingface", _installed(text)


def _installed(name: str) -> Path:
    from avforensics.backbones import weights

    try:
        return weights.resolve(name)
    except weights.UnknownWeightsError as error:
        raise BackboneWeightsError(
            f"'{name}' is not a file, a directory, a hub id (owner/name) or installable weights: {error}"
        ) from error
    except weights.WeightsNotInstalledError as error:
        raise WeightsUnavailableError(str(error)) from error


def _download(repo_id: str) -> Path:
    """Fetch config + weights of a hub repository; offline, explain how to get the weights without a hub."""
    from huggingface_hub import snapshot_download

    try:
        for patterns in _HUB_PATTERNS:
            directory = Path(snapshot_download(repo_id, allow_patterns=list(patterns)))
            if any(directory.glob("*.safetensors")) or any(directory.glob("pytorch_model*.bin")):
                return directory
    except Exception as error:  # network, proxy, auth and cache errors come from several libraries
        raise WeightsUnavailableError(
            f"cannot fetch '{repo_id}' from the Hugging Face hub ({type(error).__name__}: {error}). "
            "Without hub access, pass instead: a local Hugging Face directory (e.g. one saved with "
            "save_pretrained or copied from a machine with internet), an OpenAI original checkpoint (.pt), "
            "a CTranslate2 Whisper model.bin, or the name of weights installed with "
            "`avforensics weights install NAME` (see docs/weights.md)."
        ) from error
    raise BackboneWeightsError(
        f"{repo_id}: the hub repository has no safetensors or pytorch_model.bin weights"
    )
