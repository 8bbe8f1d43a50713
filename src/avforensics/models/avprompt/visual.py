"""Visual branch (Eq. 6-7): a frozen CLIP image encoder read through sequential visual prompts."""

from __future__ import annotations

from torch import Tensor, nn

from avforensics.backbones.clip import HookedCLIPVision
from avforensics.backbones.hooks import TokenPrompts
from avforensics.backbones.tuning import freeze

# token read as the frame feature: the first prompt, right after CLS (Eq. 6), or CLS itself
READOUT_TOKEN = {"prompt": 1, "cls": 0}


class VisualBranch(nn.Module):
    """Per-frame deepfake features z_{v,t}^{L,1}: the first prompt token after the last CLIP layer.

    `prompt_mode="keep"` is the paper's sequential prompts (Eq. 6: every layer inserts N_vpt new tokens
    after CLS and keeps the earlier ones); `"replace"` is VPT-deep (the Table 5 ablation). The prompt
    token goes through CLIP's own (frozen) post-layernorm, the normalisation CLIP gives its CLS output.
    `train_backbone` unfreezes the tower: only for the CPU config, whose tower is random (no prior to keep).
    `readout="cls"` reads CLIP's class token instead (the CPU config: a from-scratch tower learns through
    the class token, which attends to the patches in every layer, and not through a prompt that only the
    last layer sees; measured in docs/models/avprompt.md).
    """

    def __init__(
        self,
        backbone: HookedCLIPVision,
        num_prompts: int,
        prompt_mode: str,
        train_backbone: bool = False,
        readout: str = "prompt",
    ):
        super().__init__()
        if num_prompts < 1:
            raise ValueError(f"the visual branch needs at least one prompt token, got {num_prompts}")
        if readout not in READOUT_TOKEN:
            raise ValueError(f"visual readout must be one of {list(READOUT_TOKEN)}, got {readout!r}")
        self.readout_token = READOUT_TOKEN[readout]
        self.backbone = backbone if train_backbone else freeze(backbone)
        self.prompts = TokenPrompts(backbone.num_layers, num_prompts, backbone.hidden_size, mode=prompt_mode)

    @property
    def dim(self) -> int:
        return self.backbone.hidden_size

    def forward(self, frames: Tensor) -> Tensor:
        """(B, T, 3, H, W) CLIP-normalised frames -> (B, T, D_v) per-frame features (Eq. 10's rows)."""
        if frames.dim() != 5:
            raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")
        output = self.backbone(frames, hooks=[self.prompts])
        return self.backbone.post_layernorm(output.last_hidden_state[:, :, self.readout_token])
