"""MACB-DF encoders initialised from CLIP / Whisper layers compute what those layers compute."""

from __future__ import annotations

import pytest
import torch

from avforensics.backbones.sizes import build_clip_vision, build_whisper_encoder
from avforensics.models.macbdf.encoders import AudioEncoder, VideoEncoder
from avforensics.models.macbdf.pretrained import init_audio_from_whisper, init_video_from_clip

TINY_CLIP = {
    "hidden_size": 16,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 8,
}
TINY_WHISPER = {
    "d_model": 16,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "num_mel_bins": 80,
}


def test_video_encoder_from_clip_layers() -> None:
    torch.manual_seed(0)
    clip = build_clip_vision(TINY_CLIP).eval()
    encoder = VideoEncoder(frames=2, image_size=32, patch=8, dim=16, depth=2, heads=2, out_dim=8).eval()
    init_video_from_clip(encoder, clip, "tiny-clip")
    tokens = torch.randn(3, 16, 16)
    clip_layer, layer = clip.encoder.layers[1], encoder.layers[1]
    attended, _ = clip_layer.self_attn(hidden_states=clip_layer.layer_norm1(tokens))
    with torch.no_grad():
        torch.testing.assert_close(layer.spatial(tokens), tokens + attended, atol=1e-5, rtol=1e-5)
        assert torch.equal(layer.ffn.mlp[0].weight, clip_layer.mlp.fc1.weight)
        # The temporal attention starts as the identity.
        assert torch.equal(layer.temporal(tokens), tokens)
        image = torch.randn(1, 3, 32, 32)
        torch.testing.assert_close(encoder.patch_embed(image), clip.embeddings.patch_embedding(image))
        expected_positions = clip.embeddings.position_embedding.weight[1:]
        assert torch.equal(encoder.spatial_position[0, 0], expected_positions)


def test_audio_encoder_from_whisper_layers() -> None:
    torch.manual_seed(0)
    whisper = build_whisper_encoder(TINY_WHISPER).eval()
    encoder = AudioEncoder(80, 32, (16, 4), dim=16, depth=2, heads=2, out_dim=8).eval()
    init_audio_from_whisper(encoder, whisper, "tiny-whisper")
    tokens = torch.randn(2, 10, 16)
    w_layer, layer = whisper.layers[0], encoder.layers[0]
    attended, _ = w_layer.self_attn(hidden_states=w_layer.self_attn_layer_norm(tokens))
    feed = w_layer.fc2(w_layer.activation_fn(w_layer.fc1(w_layer.final_layer_norm(tokens + attended))))
    with torch.no_grad():  # Whisper's layer and ours both use exact GELU: the whole layer matches
        torch.testing.assert_close(layer(tokens), tokens + attended + feed, atol=1e-5, rtol=1e-5)


def test_mismatched_shapes_are_refused_with_the_source() -> None:
    clip = build_clip_vision(TINY_CLIP)
    wide = VideoEncoder(frames=2, image_size=32, patch=8, dim=32, depth=1, heads=2, out_dim=8)
    with pytest.raises(ValueError, match="tiny-clip: cannot initialise the width"):
        init_video_from_clip(wide, clip, "tiny-clip")
    deep = VideoEncoder(frames=2, image_size=32, patch=8, dim=16, depth=3, heads=2, out_dim=8)
    with pytest.raises(ValueError, match="CLIP has 2 layers, fewer than the 3 wanted"):
        init_video_from_clip(deep, clip, "tiny-clip")
