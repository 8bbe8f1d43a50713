"""Parameter-efficient tuning of frozen backbones: freezing, parameter counts and LoRA (through peft).

CAD tunes its Whisper encoder with LoRA (r=8, alpha=16) on the attention projections; peft injects the
low-rank adapters into our modules in place, so the hooked forward runs them without knowing.
"""

from __future__ import annotations

from collections.abc import Sequence

from peft import LoraConfig, inject_adapter_in_model
from torch import Tensor, nn

LORA_MARKER = "lora_"


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients to every parameter of `module` (mode train/eval is left to the caller)."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared parameters count once."""
    parameters = list(module.parameters())  # nn.Module.parameters() already removes duplicates
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def add_lora(
    backbone: nn.Module,
    targets: Sequence[str] = ("q_proj", "v_proj"),
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    layers: Sequence[int] | None = None,
) -> list[str]:
    """Freeze `backbone` and add LoRA adapters to the self-attention projections named in `targets`.

    Only `layers.<i>.self_attn.<target>` Linears are adapted (Whisper encoder naming; CLIP's are
    `encoder.layers.<i>.self_attn.<target>`), in every layer or in `layers`. Each adapted Linear gains
    rank * (in + out) trainable parameters; B starts at zero, so the output is unchanged until trained.
    Returns the names of the adapted modules.
    """
    freeze(backbone)
    layer_pattern = r"\d+" if layers is None else "|".join(str(i) for i in layers)
    pattern = rf"(.*\.)?layers\.({layer_pattern})\.self_attn\.({'|'.join(targets)})"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern, bias="none")
    try:
        inject_adapter_in_model(config, backbone)
    except ValueError as error:  # peft's message shows only our regex
        raise ValueError(
            f"no module of {type(backbone).__name__} matches LoRA targets {list(targets)}"
        ) from error
    adapted = [name for name, module in backbone.named_modules() if hasattr(module, "lora_A")]
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad_(LORA_MARKER in name)
    return adapted


def lora_state_dict(backbone: nn.Module) -> dict[str, Tensor]:
    """Only the LoRA tensors: what a checkpoint must store for a LoRA-tuned frozen backbone."""
    return {name: tensor for name, tensor in backbone.state_dict().items() if LORA_MARKER in name}
