"""From a clip's 16 kHz samples to what CAD's Whisper encoders read, padded to 30 s or not.

The paper feeds Whisper the clip's audio padded to 30 s, as Whisper was trained ("16 frames ... to align
with Whisper's 30-second audio feature extraction"): the encoder then sees 1500 tokens, of which the
first ceil(samples / 320) cover the clip. The unpadded mode encodes only the clip (0.64 s -> 32 tokens),
about 45x cheaper on CPU; both modes hand on the tokens that cover the clip, so everything after the
encoder is the same.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avforensics.features.logmel import HOP_LENGTH, N_FRAMES, N_SAMPLES, log_mel_spectrogram

SAMPLES_PER_TOKEN = 2 * HOP_LENGTH  # Whisper's conv stem halves the 10 ms mel frames: one token = 20 ms


def silence_where_absent(audio: Tensor, audio_present: Tensor) -> Tensor:
    """Audio with the rows of clips without an audio track set to digital silence (zeros).

    Silence is what a decoder hands over for a video without audio; it is imposed here so that a loader's
    filler values (noise, another clip's audio) can never leak into a score.
    """
    return torch.where(audio_present.to(torch.bool).unsqueeze(-1), audio, torch.zeros_like(audio))


def clip_tokens(num_samples: int) -> int:
    """Whisper tokens that cover `num_samples` samples of audio."""
    return math.ceil(num_samples / SAMPLES_PER_TOKEN)


def whisper_log_mel(audio: Tensor, n_mels: int, pad_to_30s: bool) -> Tensor:
    """(B, N) samples -> (B, n_mels, F): F = 3000 when padded (Whisper's own input), else N // 160."""
    if audio.dim() != 2:
        raise ValueError(f"audio must be (B, N) samples, got shape {tuple(audio.shape)}")
    if pad_to_30s:
        if audio.shape[-1] > N_SAMPLES:
            raise ValueError(f"a clip of {audio.shape[-1]} samples is longer than Whisper's 30 s input")
        mel = log_mel_spectrogram(audio, n_mels=n_mels, padding=N_SAMPLES)[..., :N_FRAMES]
    else:
        mel = log_mel_spectrogram(audio, n_mels=n_mels)
    return mel.to(audio.dtype)
