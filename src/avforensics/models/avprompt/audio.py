"""Audio branch (Eq. 4, 8-9): a frozen Whisper encoder adapted by short-time audio prompts."""

from __future__ import annotations

from torch import Tensor, nn

from avforensics.backbones.hooks import FeaturePrompts
from avforensics.backbones.tuning import freeze
from avforensics.backbones.whisper import HookedWhisperEncoder
from avforensics.features.logmel import log_mel_spectrogram


class AudioBranch(nn.Module):
    """Per-token audio features z_a^{L,1..N_t/2} of one window, without the global token (Eq. 9, 11).

    Every layer joins prompt P_a^l (one row per token, width D_p) to each token along the feature axis and
    projects back with FC_l (Eq. 8); a learnable global token is prepended before the first layer. The
    prompts have one row per token, so the branch is built for one window length: `num_tokens` = N_t / 2.
    """

    def __init__(self, backbone: HookedWhisperEncoder, num_tokens: int, prompt_dim: int, global_token: bool):
        super().__init__()
        self.backbone = freeze(backbone)
        self.num_tokens = num_tokens
        self.prompts = FeaturePrompts(
            backbone.num_layers, num_tokens, backbone.hidden_size, prompt_dim, global_token=global_token
        )

    @property
    def dim(self) -> int:
        return self.backbone.hidden_size

    @property
    def mel_frames(self) -> int:
        """N_t: Whisper's conv stem halves the mel frames into tokens."""
        return 2 * self.num_tokens

    def log_mel(self, audio: Tensor) -> Tensor:
        """(B, N) 16 kHz samples -> (B, mels, N_t) Whisper log-mel, unpadded (0.64 s -> 64 frames)."""
        mel = log_mel_spectrogram(audio, n_mels=self.backbone.config.num_mel_bins)
        return mel.to(audio.dtype)

    def forward(self, mel: Tensor) -> Tensor:
        """(B, mels, N_t) log-mel -> (B, N_t / 2, D_a) per-token features."""
        if mel.shape[-1] != self.mel_frames:
            raise ValueError(
                f"the audio prompts were built for {self.mel_frames} mel frames ({self.num_tokens} tokens), "
                f"got {mel.shape[-1]}"
            )
        output = self.backbone(mel, hooks=[self.prompts])
        return output.last_hidden_state[:, output.num_prefix_tokens :]
