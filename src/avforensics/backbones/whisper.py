"""Whisper audio encoder whose layers run through the hook loop, for inputs of ANY length.

transformers' WhisperEncoder only accepts the padded 30 s input (3000 mel frames). Detectors score
0.64 s windows (64 frames -> 32 tokens), so this encoder slices the sinusoidal position table to the
input length, as openai-whisper's positions are absolute from the window start. Built from transformers'
Whisper modules with WhisperEncoder's attribute names, so its state dict is a WhisperEncoder state dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from avforensics.backbones.hooks import HookContext, LayerHook, run_layers
from avforensics.backbones.identity import WeightsId
from avforensics.backbones.output import BackboneOutput


def _whisper_attention_half(layer: nn.Module, hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Residual self-attention half of a WhisperEncoderLayer (same operations as its forward)."""
    attended, _ = layer.self_attn(
        hidden_states=layer.self_attn_layer_norm(hidden), attention_mask=attention_mask
    )
    return hidden + nn.functional.dropout(attended, p=layer.dropout, training=layer.training)


def _whisper_feed_forward_half(layer: nn.Module, hidden: Tensor) -> Tensor:
    """Residual MLP half of a WhisperEncoderLayer, with its float16 overflow clamp."""
    update = layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden)))
    update = nn.functional.dropout(update, p=layer.activation_dropout, training=layer.training)
    update = nn.functional.dropout(layer.fc2(update), p=layer.dropout, training=layer.training)
    hidden = hidden + update
    if hidden.dtype == torch.float16:
        limit = torch.finfo(hidden.dtype).max - 1000
        hidden = hidden.clamp(min=-limit, max=limit)
    return hidden


class HookedWhisperEncoder(nn.Module):
    """Whisper encoder: conv stem -> sliced sinusoid positions -> hooked layers -> final layer norm.

    Input: log-mel (B, num_mel_bins, F) with F <= 2 * max_source_positions; output tokens: ceil(F / 2).
    """

    def __init__(self, config: WhisperConfig, encoder: WhisperEncoder | None = None):
        super().__init__()
        if config.encoder_layerdrop > 0:
            raise ValueError("HookedWhisperEncoder runs every layer; set encoder_layerdrop=0 in the config")
        encoder = WhisperEncoder(config) if encoder is None else encoder
        self.config = encoder.config
        self.conv1 = encoder.conv1
        self.conv2 = encoder.conv2
        self.embed_positions = encoder.embed_positions
        self.layers = encoder.layers
        self.layer_norm = encoder.layer_norm
        self.weights_id: WeightsId | None = None

    @classmethod
    def from_transformers(cls, encoder: WhisperEncoder) -> HookedWhisperEncoder:
        """Wrap an existing transformers WhisperEncoder, sharing (not copying) its modules."""
        return cls(encoder.config, encoder)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return self.config.d_model

    def embed(self, input_features: Tensor) -> Tensor:
        """(B, mels, F) -> (B, ceil(F/2), D): conv stem with GELUs plus the first ceil(F/2) positions."""
        if input_features.dim() != 3 or input_features.shape[1] != self.config.num_mel_bins:
            raise ValueError(
                f"expected log-mel input (B, {self.config.num_mel_bins}, frames), "
                f"got {tuple(input_features.shape)}"
            )
        hidden = nn.functional.gelu(self.conv1(input_features))
        hidden = nn.functional.gelu(self.conv2(hidden)).permute(0, 2, 1)
        tokens = hidden.shape[1]
        if tokens > self.embed_positions.num_embeddings:
            raise ValueError(
                f"{input_features.shape[-1]} mel frames give {tokens} tokens, more than the "
                f"{self.embed_positions.num_embeddings} positions of this encoder (30 s)"
            )
        hidden = hidden + self.embed_positions.weight[:tokens]
        return nn.functional.dropout(hidden, p=self.config.dropout, training=self.training)

    def forward(
        self,
        input_features: Tensor,
        hooks: Sequence[LayerHook] = (),
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        ctx = HookContext(
            batch_size=input_features.shape[0],
            num_frames=1,
            num_layers=self.num_layers,
            num_prefix_tokens=0,
        )
        hidden, states = run_layers(
            self.layers,
            self.embed(input_features),
            ctx,
            hooks,
            (_whisper_attention_half, _whisper_feed_forward_half),
            output_hidden_states,
        )
        return BackboneOutput(self.layer_norm(hidden), ctx.num_prefix_tokens, None, states)
