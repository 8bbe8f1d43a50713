"""Small random backbones and the same weights written in every checkpoint format the loaders read.

The OpenAI-format writers below are the inverse name mappings written independently of the loaders, so a
round trip through them checks the loaders' mappings rather than repeating them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    WhisperConfig,
    WhisperForConditionalGeneration,
)

# Width 128 = 2 heads of 64: OpenAI CLIP files do not store the head count, which is width // 64.
CLIP_VALUES = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 16,
    "hidden_act": "quick_gelu",
}
WHISPER_VALUES = {
    "d_model": 128,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 512,
    "decoder_layers": 1,
    "decoder_attention_heads": 2,
    "decoder_ffn_dim": 256,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "max_target_positions": 16,
    "vocab_size": 64,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 3,
}


def clip_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(**CLIP_VALUES)


def whisper_config() -> WhisperConfig:
    return WhisperConfig(**WHISPER_VALUES)


def random_clip_model(seed: int = 0) -> CLIPModel:
    """A full random CLIP (vision + a tiny text tower), like the checkpoints published on the hub."""
    torch.manual_seed(seed)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(text_config=text, vision_config=CLIP_VALUES, projection_dim=16)
    return CLIPModel(config).eval()


def random_whisper_model(seed: int = 0) -> WhisperForConditionalGeneration:
    torch.manual_seed(seed)
    return WhisperForConditionalGeneration(whisper_config()).eval()


def openai_clip_state(vision: CLIPVisionModel, projection: Tensor) -> dict[str, Tensor]:
    """The state dict OpenAI's CLIP code would hold for these vision weights (plus text tensors)."""
    hf = vision.state_dict()
    state = {
        "visual.conv1.weight": hf["embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf["embeddings.class_embedding"],
        "visual.positional_embedding": hf["embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf["pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf["pre_layrnorm.bias"],
        "visual.ln_post.weight": hf["post_layernorm.weight"],
        "visual.ln_post.bias": hf["post_layernorm.bias"],
        "visual.proj": projection.T.contiguous(),
        "token_embedding.weight": torch.randn(64, 32),
        "positional_embedding": torch.randn(16, 32),
        "logit_scale": torch.tensor(4.6),
    }
    for index in range(len(vision.encoder.layers)):
        hf_prefix, oa_prefix = f"encoder.layers.{index}.", f"visual.transformer.resblocks.{index}."
        for leaf in ("weight", "bias"):
            fused = [hf[f"{hf_prefix}self_attn.{p}_proj.{leaf}"] for p in "qkv"]
            state[f"{oa_prefix}attn.in_proj_{leaf}"] = torch.cat(fused, dim=0)
            for oa_name, hf_name in (
                ("attn.out_proj", "self_attn.out_proj"),
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ):
                state[f"{oa_prefix}{oa_name}.{leaf}"] = hf[f"{hf_prefix}{hf_name}.{leaf}"]
    return state


def save_torchscript_state(state: dict[str, Tensor], path: Path) -> None:
    """Write `state` as a TorchScript archive, the container OpenAI publishes CLIP in."""
    root = nn.Module()
    for key, value in state.items():
        *modules, leaf = key.split(".")
        node = root
        for name in modules:
            if not hasattr(node, name):
                node.add_module(name, nn.Module())
            node = getattr(node, name)
        node.register_parameter(leaf, nn.Parameter(value.clone(), requires_grad=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(root).save(str(path))


def openai_whisper_checkpoint(model: WhisperForConditionalGeneration) -> dict[str, object]:
    """What openai-whisper's `torch.save({"dims", "model_state_dict"})` holds for this encoder."""
    config, hf = model.config, model.model.encoder.state_dict()
    state = {
        "encoder.conv1.weight": hf["conv1.weight"],
        "encoder.conv1.bias": hf["conv1.bias"],
        "encoder.conv2.weight": hf["conv2.weight"],
        "encoder.conv2.bias": hf["conv2.bias"],
        "encoder.positional_embedding": hf["embed_positions.weight"],
        "encoder.ln_post.weight": hf["layer_norm.weight"],
        "encoder.ln_post.bias": hf["layer_norm.bias"],
        "decoder.token_embedding.weight": model.model.decoder.embed_tokens.weight.detach(),
    }
    names = {
        "attn.query": "self_attn.q_proj",
        "attn.key": "self_attn.k_proj",
        "attn.value": "self_attn.v_proj",
        "attn.out": "self_attn.out_proj",
        "attn_ln": "self_attn_layer_norm",
        "mlp.0": "fc1",
        "mlp.2": "fc2",
        "mlp_ln": "final_layer_norm",
    }
    for index in range(config.encoder_layers):
        for oa_name, hf_name in names.items():
            for leaf in ("weight", "bias"):
                key = f"layers.{index}.{hf_name}.{leaf}"
                if key in hf:  # Whisper's key projection has no bias
                    state[f"encoder.blocks.{index}.{oa_name}.{leaf}"] = hf[key]
    dims = {
        "n_mels": config.num_mel_bins,
        "n_audio_ctx": config.max_source_positions,
        "n_audio_state": config.d_model,
        "n_audio_head": config.encoder_attention_heads,
        "n_audio_layer": config.encoder_layers,
        "n_vocab": config.vocab_size,
        "n_text_ctx": config.max_target_positions,
        "n_text_state": config.d_model,
        "n_text_head": config.decoder_attention_heads,
        "n_text_layer": config.decoder_layers,
    }
    return {"dims": dims, "model_state_dict": state}


def save_ctranslate2_whisper(model: WhisperForConditionalGeneration, directory: Path) -> Path:
    """Convert with CTranslate2's own converter (float32, so the round trip is exact); returns model.bin."""
    from ctranslate2.converters.transformers import WhisperLoader

    spec = WhisperLoader().get_model_spec(model)
    spec.register_vocabulary([f"token{i}" for i in range(model.config.vocab_size)])
    spec.config.suppress_ids, spec.config.suppress_ids_begin, spec.config.lang_ids = [], [], []
    spec.config.alignment_heads = [(0, 0)]
    spec.validate()
    spec.optimize(quantization=None)
    directory.mkdir(parents=True, exist_ok=True)
    spec.save(str(directory))
    return directory / "model.bin"
