"""Initialising the MACB-DF encoders from CLIP (video) and Whisper (audio) weights, where shapes allow.

The paper trains its encoders without naming a pretrained source; starting from CLIP / Whisper is an
option (`video_weights`, `audio_weights`). What is copied: every layer's self-attention and FFN (CLIP's
into the SPATIAL attention of the divided space-time layers, whose TEMPORAL attention starts as the
identity: its output projection is zeroed), CLIP's patch embedding and its patch position embeddings when
the grid matches. What is not: Whisper's 1-D convolution stem (ours embeds 2-D time-frequency patches),
CLIP's class token and pre-layernorm. CLIP's quick-GELU runs as GELU (max difference 0.02 per unit).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.whisper import HookedWhisperEncoder
from avforensics.models.macbdf.encoders import AudioEncoder, FeedForward, SelfAttention, VideoEncoder


def _bias(linear: nn.Linear) -> Tensor:
    return linear.bias if linear.bias is not None else torch.zeros(linear.out_features)


@torch.no_grad()
def copy_attention(target: SelfAttention, norm: nn.LayerNorm, attention: nn.Module) -> None:
    """A transformers attention block (q/k/v/out projections and its pre-norm) into a SelfAttention."""
    projections = (attention.q_proj, attention.k_proj, attention.v_proj)
    target.norm.load_state_dict(norm.state_dict())
    target.attention.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
    target.attention.in_proj_bias.copy_(torch.cat([_bias(p) for p in projections]))
    target.attention.out_proj.weight.copy_(attention.out_proj.weight)
    target.attention.out_proj.bias.copy_(_bias(attention.out_proj))


@torch.no_grad()
def copy_feed_forward(target: FeedForward, norm: nn.LayerNorm, fc1: nn.Linear, fc2: nn.Linear) -> None:
    target.norm.load_state_dict(norm.state_dict())
    target.mlp[0].load_state_dict(fc1.state_dict())
    target.mlp[3].load_state_dict(fc2.state_dict())


def _check(what: str, ours: int, theirs: int, source: str) -> None:
    if ours != theirs:
        raise ValueError(f"{source}: cannot initialise the {what} from these weights ({theirs}, ours {ours})")


@torch.no_grad()
def init_video_from_clip(encoder: VideoEncoder, clip: HookedCLIPVision, source: str) -> None:
    """Copy a CLIP vision tower into the video encoder (its first `depth` layers)."""
    config = clip.config
    first = encoder.layers[0].spatial.attention if len(encoder.layers) else None
    if not isinstance(encoder.patch_embed, nn.Conv2d):
        raise ValueError(f"{source}: CLIP weights have a linear patch embedding; set video_conv_stem false")
    _check("width", encoder.patch_embed.out_channels, config.hidden_size, source)
    _check("patch size", encoder.patch_embed.kernel_size[0], config.patch_size, source)
    if first is not None:
        _check("attention heads", first.num_heads, config.num_attention_heads, source)
    if len(encoder.layers) > clip.num_layers:
        layers = len(encoder.layers)
        raise ValueError(f"{source}: CLIP has {clip.num_layers} layers, fewer than the {layers} wanted")
    encoder.patch_embed.weight.copy_(clip.embeddings.patch_embedding.weight)
    nn.init.zeros_(encoder.patch_embed.bias)
    positions = clip.embeddings.position_embedding.weight[1:]  # without the class token's
    if positions.shape[0] == encoder.grid**2:
        encoder.spatial_position.copy_(positions[None, None])
    for layer, clip_layer in zip(encoder.layers, clip.encoder.layers, strict=False):
        copy_attention(layer.spatial, clip_layer.layer_norm1, clip_layer.self_attn)
        copy_feed_forward(layer.ffn, clip_layer.layer_norm2, clip_layer.mlp.fc1, clip_layer.mlp.fc2)
        nn.init.zeros_(layer.temporal.attention.out_proj.weight)
        nn.init.zeros_(layer.temporal.attention.out_proj.bias)


@torch.no_grad()
def init_audio_from_whisper(encoder: AudioEncoder, whisper: HookedWhisperEncoder, source: str) -> None:
    """Copy a Whisper encoder's first `depth` layers into the audio encoder's transformer layers."""
    config = whisper.config
    _check("width", encoder.patch_embed.out_channels, config.d_model, source)
    if len(encoder.layers):
        _check(
            "attention heads",
            encoder.layers[0].attention.attention.num_heads,
            config.encoder_attention_heads,
            source,
        )
    if len(encoder.layers) > whisper.num_layers:
        layers = len(encoder.layers)
        raise ValueError(f"{source}: Whisper has {whisper.num_layers} layers, fewer than the {layers} wanted")
    for layer, whisper_layer in zip(encoder.layers, whisper.layers, strict=False):
        copy_attention(layer.attention, whisper_layer.self_attn_layer_norm, whisper_layer.self_attn)
        copy_feed_forward(layer.ffn, whisper_layer.final_layer_norm, whisper_layer.fc1, whisper_layer.fc2)
