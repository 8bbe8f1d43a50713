"""features room (see DESIGN.md): Whisper log-mel spectrograms and CLIP image normalisation."""

from avforensics.features.image import CLIP_MEAN, CLIP_SIZE, CLIP_STD, clip_preprocess
from avforensics.features.logmel import (
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    log_mel_spectrogram,
    mel_filterbank,
    pad_or_trim,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_SIZE",
    "CLIP_STD",
    "HOP_LENGTH",
    "N_FFT",
    "N_FRAMES",
    "N_SAMPLES",
    "SAMPLE_RATE",
    "clip_preprocess",
    "log_mel_spectrogram",
    "mel_filterbank",
    "pad_or_trim",
]
