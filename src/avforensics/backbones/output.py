"""What every hooked backbone returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class BackboneOutput:
    """Result of a hooked backbone forward.

    Leading dimensions follow the input: a (B, T, 3, H, W) clip batch gives (B, T, tokens, D) states.
    `num_prefix_tokens` counts the tokens before the content (patch / audio) tokens in the output: CLS,
    global tokens and inserted prompts, so a detector can pick e.g. the first prompt token (index 1).
    `pooled` is the post-layernorm CLS token for CLIP and None for Whisper (which has no CLS).
    `hidden_states`: the input of the first layer then every layer's output (len = layers + 1), if asked.
    """

    last_hidden_state: Tensor
    num_prefix_tokens: int
    pooled: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
