"""CLIP vision tower whose layers run through the hook loop (prompts, adapters, per-layer features).

Built from transformers' own CLIP modules with CLIPVisionModel's attribute names (embeddings,
pre_layrnorm, encoder.layers, post_layernorm), so its state dict is exactly a transformers
CLIPVisionModel state dict and Hugging Face checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from avforensics.backbones.conv_stem import ConvStem
from avforensics.backbones.hooks import HookContext, LayerHook, run_layers
from avforensics.backbones.identity import WeightsId
from avforensics.backbones.output import BackboneOutput


def _clip_attention_half(layer: nn.Module, hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Residual self-attention half of a CLIPEncoderLayer (same operations as its forward)."""
    attended, _ = layer.self_attn(hidden_states=layer.layer_norm1(hidden), attention_mask=attention_mask)
    return hidden + attended


def _clip_feed_forward_half(layer: nn.Module, hidden: Tensor) -> Tensor:
    """Residual MLP half of a CLIPEncoderLayer."""
    return hidden + layer.mlp(layer.layer_norm2(hidden))


class HookedCLIPVision(nn.Module):
    """Frozen-backbone friendly CLIP image encoder: embed -> hooked layer loop -> post-layernorm CLS.

    Accepts (N, 3, H, W) images or (B, T, 3, H, W) clips; for clips the hooks see B*T sequences and
    `ctx.num_frames = T`. Images of another size than `config.image_size` (multiples of the patch size)
    get bicubically interpolated position embeddings. A config with `conv_stem: true` (the CPU sizes that
    train from scratch) replaces the patch convolution by a `ConvStem` with the same output grid.
    """

    def __init__(self, config: CLIPVisionConfig, tower: CLIPVisionModel | None = None):
        super().__init__()
        tower = CLIPVisionModel(config) if tower is None else tower
        self.config = tower.config
        self.embeddings = tower.embeddings
        if getattr(self.config, "conv_stem", False):
            self.embeddings.patch_embedding = ConvStem(
                self.config.num_channels, self.config.hidden_size, self.config.patch_size
            )
        self.pre_layrnorm = tower.pre_layrnorm
        self.encoder = tower.encoder
        self.post_layernorm = tower.post_layernorm
        self.weights_id: WeightsId | None = None

    @classmethod
    def from_transformers(cls, tower: CLIPVisionModel) -> HookedCLIPVision:
        """Wrap an existing transformers CLIPVisionModel, sharing (not copying) its modules."""
        return cls(tower.config, tower)

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def patch_grid(self, height: int, width: int) -> tuple[int, int]:
        patch = self.config.patch_size
        if height % patch or width % patch:
            raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {patch}")
        return height // patch, width // patch

    def embed(self, pixel_values: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, 1 + patches, D): CLS + patch tokens + positions, after the pre-layernorm."""
        height, width = pixel_values.shape[-2:]
        self.patch_grid(height, width)  # raises on sizes that are not multiples of the patch size
        native = height == width == self.config.image_size
        return self.pre_layrnorm(self.embeddings(pixel_values, interpolate_pos_encoding=not native))

    def forward(
        self,
        pixel_values: Tensor,
        hooks: Sequence[LayerHook] = (),
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        if pixel_values.dim() == 5:
            batch, frames = pixel_values.shape[:2]
            images = pixel_values.flatten(0, 1)
        elif pixel_values.dim() == 4:
            batch, frames = pixel_values.shape[0], 1
            images = pixel_values
        else:
            raise ValueError(
                f"expected (N,3,H,W) or (B,T,3,H,W) pixel values, got shape {tuple(pixel_values.shape)}"
            )
        ctx = HookContext(
            batch_size=batch,
            num_frames=frames,
            num_layers=self.num_layers,
            num_prefix_tokens=1,
            grid=self.patch_grid(*images.shape[-2:]),
        )
        hidden, states = run_layers(
            self.encoder.layers,
            self.embed(images),
            ctx,
            hooks,
            (_clip_attention_half, _clip_feed_forward_half),
            output_hidden_states,
        )
        pooled = self.post_layernorm(hidden[:, 0])
        if pixel_values.dim() == 5:
            hidden = hidden.unflatten(0, (batch, frames))
            pooled = pooled.unflatten(0, (batch, frames))
            states = None if states is None else tuple(s.unflatten(0, (batch, frames)) for s in states)
        return BackboneOutput(hidden, ctx.num_prefix_tokens, pooled, states)
