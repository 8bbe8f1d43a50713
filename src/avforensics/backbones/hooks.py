"""One way into the layers of a frozen transformer: hooks called around every layer of the backbone loop.

Prompt learning (avprompt) and adapters (CAD) both change what flows between the layers of CLIP and
Whisper while the layers themselves stay frozen. Rather than one forked backbone per method, the backbones
run their layers through `run_layers`, which calls, for every layer `index`:

    before_layer(index, hidden, ctx)     -> hidden   (insert / replace / rewrite tokens)
    [attention half of the layer]
    after_attention(index, hidden, ctx)  -> hidden   (only if some hook asks: the layer is then run in halves)
    [feed-forward half of the layer]
    after_layer(index, hidden, ctx)      -> hidden

Hooks are composed in list order at each point. A hook's learnable parts (prompts, projections, adapters)
belong to the detector that owns the hook, never to the backbone, so freezing the backbone and
checkpointing "trainable weights only" stay trivial. With no hooks, the loop is the plain layer loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

HOOK_POINTS = ("before_layer", "after_attention", "after_layer")

# (layer, hidden, attention_mask) -> hidden  and  (layer, hidden) -> hidden
AttentionHalf = Callable[[nn.Module, Tensor, "Tensor | None"], Tensor]
FeedForwardHalf = Callable[[nn.Module, Tensor], Tensor]


@dataclass
class HookContext:
    """What a hook may need to know about the batch; one per forward call, mutable by the hooks.

    The hidden tensor is (batch_size * num_frames, tokens, dim): a video backbone sees every frame as one
    sequence, so a temporal adapter needs `num_frames` to fold frames back into clips. Token-inserting hooks
    must increase `num_prefix_tokens` (the tokens before the content tokens: CLS, global tokens, prompts)
    so later hooks still find the patch / audio tokens.
    """

    batch_size: int
    num_frames: int
    num_layers: int
    num_prefix_tokens: int
    grid: tuple[int, int] | None = None
    attention_mask: Tensor | None = None

    def split_prefix(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """(prefix tokens, content tokens) of a hidden tensor."""
        return hidden[:, : self.num_prefix_tokens], hidden[:, self.num_prefix_tokens :]

    def content_as_clips(self, content: Tensor) -> Tensor:
        """Patch tokens (B*T, rows*cols, D) -> (B, T, rows, cols, D) for spatiotemporal modules."""
        if self.grid is None:
            raise ValueError("content_as_clips needs a patch grid; this backbone has no spatial tokens")
        rows, cols = self.grid
        if content.shape[1] != rows * cols:
            raise ValueError(
                f"expected {rows * cols} patch tokens for grid {self.grid}, got {content.shape[1]}"
            )
        return content.reshape(self.batch_size, self.num_frames, rows, cols, content.shape[-1])

    def clips_as_content(self, clips: Tensor) -> Tensor:
        """Inverse of `content_as_clips`: (B, T, rows, cols, D) -> (B*T, rows*cols, D)."""
        batch, frames, rows, cols, dim = clips.shape
        return clips.reshape(batch * frames, rows * cols, dim)

    def require_no_mask(self, hook: object) -> None:
        """Token-inserting hooks call this: a mask built for the old length would silently misalign."""
        if self.attention_mask is not None:
            raise ValueError(f"{type(hook).__name__} changes the token count but an attention mask is set")


class LayerHook:
    """Base of every hook: override any of the three points; each returns the (possibly new) hidden tensor.

    The loop only calls the points a hook overrides (see `points`), so unused points cost nothing, and the
    layer is split in halves only when some active hook overrides `after_attention`.
    """

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return hidden

    def after_attention(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return hidden

    def after_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return hidden

    def points(self) -> frozenset[str]:
        """The points this hook acts at: by default, the methods its class overrides."""
        return frozenset(p for p in HOOK_POINTS if getattr(type(self), p) is not getattr(LayerHook, p))


def run_layers(
    layers: Sequence[nn.Module],
    hidden: Tensor,
    ctx: HookContext,
    hooks: Sequence[LayerHook],
    halves: tuple[AttentionHalf, FeedForwardHalf],
    output_hidden_states: bool = False,
    checkpoint: bool = False,
) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """Run `layers` over `hidden` with `hooks`; returns the last hidden tensor and, if asked, every state.

    The states are the loop input (before any hook) followed by each layer's output after its
    `after_layer` hooks, so there are len(layers) + 1 of them; their token counts may differ.
    `checkpoint`: while gradients are recorded, keep only each whole layer's input and recompute its
    activations in the backward pass (activation checkpointing: memory for compute, same gradients).
    Hooks run outside the checkpoint, so a hook's state (BatchNorm statistics) is updated once.
    """
    by_point: dict[str, list[Callable[[int, Tensor, HookContext], Tensor]]] = {p: [] for p in HOOK_POINTS}
    for hook in hooks:
        for point in hook.points():
            by_point[point].append(getattr(hook, point))
    before, middle, after = (by_point[p] for p in HOOK_POINTS)
    attention_half, feed_forward_half = halves
    states = [hidden] if output_hidden_states else None
    for index, layer in enumerate(layers):
        for call in before:
            hidden = call(index, hidden, ctx)
        if middle:
            hidden = attention_half(layer, hidden, ctx.attention_mask)
            for call in middle:
                hidden = call(index, hidden, ctx)
            hidden = feed_forward_half(layer, hidden)
        elif checkpoint and torch.is_grad_enabled():
            hidden = torch.utils.checkpoint.checkpoint(layer, hidden, ctx.attention_mask, use_reentrant=False)
        else:
            hidden = layer(hidden, ctx.attention_mask)
        for call in after:
            hidden = call(index, hidden, ctx)
        if states is not None:
            states.append(hidden)
    return hidden, None if states is None else tuple(states)


def _insert(hidden: Tensor, tokens: Tensor, position: int) -> Tensor:
    """Insert `tokens` (n, D), shared by every sequence, at `position` of `hidden` (N, S, D)."""
    tokens = tokens.to(hidden.dtype).unsqueeze(0).expand(hidden.shape[0], -1, -1)
    return torch.cat([hidden[:, :position], tokens, hidden[:, position:]], dim=1)


class TokenPrompts(nn.Module, LayerHook):
    """Learnable prompt tokens placed right after the CLS token before every layer (VPT-deep family).

    mode="keep"    (avprompt Eq. 6, "sequential visual prompts"): before layer l insert N new tokens at
                   position 1 and keep those inserted before earlier layers, so the sequence grows by N per
                   layer; after the last layer, token 1 is the prompt inserted last (z^{L,1}).
    mode="replace" (VPT-deep, the paper's ablation): insert N tokens before layer 0; before each later
                   layer overwrite those same N positions with that layer's prompts.
    The same prompts serve every frame of every clip.
    """

    def __init__(
        self, num_layers: int, num_tokens: int, dim: int, mode: str = "keep", init_std: float = 0.02
    ):
        super().__init__()
        if mode not in ("keep", "replace"):
            raise ValueError(f"prompt mode must be 'keep' or 'replace', got {mode!r}")
        self.mode = mode
        self.num_tokens = num_tokens
        self.prompts = nn.Parameter(torch.randn(num_layers, num_tokens, dim) * init_std)

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        if index >= self.prompts.shape[0]:
            raise ValueError(
                f"TokenPrompts holds {self.prompts.shape[0]} layers, backbone reached layer {index}"
            )
        position = 1  # right after the CLS token
        if self.mode == "keep" or index == 0:
            ctx.require_no_mask(self)
            ctx.num_prefix_tokens += self.num_tokens
            return _insert(hidden, self.prompts[index], position)
        prompts = self.prompts[index].to(hidden.dtype).unsqueeze(0).expand(hidden.shape[0], -1, -1)
        end = position + self.num_tokens
        return torch.cat([hidden[:, :position], prompts, hidden[:, end:]], dim=1)


class FeaturePrompts(nn.Module, LayerHook):
    """Short-time audio prompts (avprompt Eq. 8): prompts joined to every token along the FEATURE axis.

    Before layer l, each content token z_i becomes FC_l(cat(P_l[i], z_i)), with P_l of shape
    (num_tokens, prompt_dim) and FC_l: (prompt_dim + dim) -> dim, one per layer. Before layer 0 a learnable
    global token is prepended (position 0) and then carried by the layers; it is never projected.
    `identity_init` starts every FC_l as [0 | I] (zero bias), so training starts from the frozen model's
    own features; `global_token=False` drops the global token (an ablation, and the identity check).
    Because P_l has one row per token, the hook is built for one window length (e.g. 32 tokens = 0.64 s).
    """

    def __init__(
        self,
        num_layers: int,
        num_tokens: int,
        dim: int,
        prompt_dim: int,
        global_token: bool = True,
        identity_init: bool = True,
        init_std: float = 0.02,
    ):
        super().__init__()
        self.num_tokens = num_tokens
        self.prompts = nn.Parameter(torch.randn(num_layers, num_tokens, prompt_dim) * init_std)
        self.projections = nn.ModuleList(nn.Linear(prompt_dim + dim, dim) for _ in range(num_layers))
        self.global_token = nn.Parameter(torch.randn(1, dim) * init_std) if global_token else None
        if identity_init:
            self.reset_projections_to_identity()

    @torch.no_grad()
    def reset_projections_to_identity(self) -> None:
        """Make every FC_l ignore its prompt half and pass the token through unchanged."""
        for projection in self.projections:
            prompt_dim = projection.in_features - projection.out_features
            projection.weight.zero_()
            projection.weight[:, prompt_dim:].copy_(torch.eye(projection.out_features))
            projection.bias.zero_()

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        if index >= len(self.projections):
            raise ValueError(f"FeaturePrompts holds {len(self.projections)} layers, backbone reached {index}")
        if index == 0 and self.global_token is not None:
            ctx.require_no_mask(self)
            hidden = _insert(hidden, self.global_token, 0)
            ctx.num_prefix_tokens += 1
        prefix, content = ctx.split_prefix(hidden)
        if content.shape[1] != self.num_tokens:
            raise ValueError(
                f"audio prompts were built for {self.num_tokens} tokens, the input has {content.shape[1]}; "
                "build FeaturePrompts for this window length"
            )
        prompts = self.prompts[index].to(content.dtype).unsqueeze(0).expand(content.shape[0], -1, -1)
        content = self.projections[index](torch.cat([prompts, content], dim=-1))
        return torch.cat([prefix, content], dim=1)


class LayerModules(nn.Module, LayerHook):
    """Per-layer modules `module(hidden, ctx) -> hidden` applied at one hook point (adapters, e.g. CAD's
    spatiotemporal adapter, which folds frames into clips with `ctx.content_as_clips`).

    `layers` says which backbone layers get a module (default: layer i gets modules[i]); the module decides
    whether it is residual.
    """

    def __init__(
        self, modules: Sequence[nn.Module], point: str = "after_layer", layers: Sequence[int] | None = None
    ):
        super().__init__()
        if point not in HOOK_POINTS:
            raise ValueError(f"hook point must be one of {HOOK_POINTS}, got {point!r}")
        layers = list(range(len(modules))) if layers is None else list(layers)
        if len(layers) != len(modules):
            raise ValueError(f"{len(modules)} modules for {len(layers)} layers")
        self.point = point
        self.adapters = nn.ModuleList(modules)
        self._slot = {layer: slot for slot, layer in enumerate(layers)}

    def points(self) -> frozenset[str]:
        return frozenset((self.point,))

    def _run(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        slot = self._slot.get(index)
        return hidden if slot is None else self.adapters[slot](hidden, ctx)

    def before_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return self._run(index, hidden, ctx)

    def after_attention(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return self._run(index, hidden, ctx)

    def after_layer(self, index: int, hidden: Tensor, ctx: HookContext) -> Tensor:
        return self._run(index, hidden, ctx)
