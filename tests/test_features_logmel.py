"""Our torch log-mel against openai-whisper's reference implementation (installed, runs offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import whisper
from features_fixtures import voiced_speech
from whisper.audio import mel_filters

from avforensics.features import N_SAMPLES, log_mel_spectrogram, mel_filterbank, pad_or_trim
from avforensics.media.decode import decode
from avforensics.media.encode import write_video

TOLERANCE = 1e-3
WINDOW_SAMPLES = 10_240  # one 0.64 s clip window of the data flow


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "speech": voiced_speech(4.0, seed=1),
        "noise": (0.1 * rng.standard_normal(4 * 16_000)).astype(np.float32),
        "silence": np.zeros(4 * 16_000, dtype=np.float32),
    }


SIGNALS = _signals()


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_matches_whisper_asset(n_mels: int) -> None:
    reference = mel_filters("cpu", n_mels).numpy()
    ours = mel_filterbank(n_mels)
    assert ours.shape == reference.shape == (n_mels, 201)
    assert np.abs(ours - reference).max() < 1e-6


@pytest.mark.parametrize("padding", [0, N_SAMPLES])
@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_matches_whisper(kind: str, n_mels: int, padding: int) -> None:
    audio = SIGNALS[kind]
    reference = whisper.log_mel_spectrogram(audio, n_mels=n_mels, padding=padding)
    ours = log_mel_spectrogram(audio, n_mels=n_mels, padding=padding)
    assert ours.shape == reference.shape == (n_mels, (len(audio) + padding) // 160)
    assert ours.dtype == torch.float32
    assert (ours - reference).abs().max().item() < TOLERANCE


def test_short_window_and_tensor_input() -> None:
    window = torch.from_numpy(SIGNALS["speech"][16_000 : 16_000 + WINDOW_SAMPLES].copy())
    reference = whisper.log_mel_spectrogram(window)
    ours = log_mel_spectrogram(window)
    assert ours.shape == (80, 64)
    assert (ours - reference).abs().max().item() < TOLERANCE


def test_whisper_30s_input() -> None:
    """Whisper's own recipe: pad by 30 s, keep the first 3000 frames; equals pad_or_trim first."""
    audio = SIGNALS["speech"]
    padded = log_mel_spectrogram(audio, padding=N_SAMPLES)[:, :3000]
    trimmed = log_mel_spectrogram(pad_or_trim(audio))
    assert trimmed.shape == (80, 3000)
    assert (padded - trimmed).abs().max().item() < TOLERANCE


def test_batch_floors_each_signal_separately() -> None:
    """A batch row equals that window alone: the 80 dB floor never mixes windows."""
    windows = np.stack([SIGNALS["speech"][:WINDOW_SAMPLES], 1e-3 * SIGNALS["noise"][:WINDOW_SAMPLES]])
    batch = log_mel_spectrogram(windows)
    assert batch.shape == (2, 80, 64)
    for row, window in zip(batch, windows, strict=True):
        assert (row - whisper.log_mel_spectrogram(window)).abs().max().item() < TOLERANCE


def test_pad_or_trim_numpy_and_torch() -> None:
    array = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert pad_or_trim(array, 4).tolist() == [[0, 1, 2, 3], [6, 7, 8, 9]]
    assert pad_or_trim(array, 8).tolist() == [[0, 1, 2, 3, 4, 5, 0, 0], [6, 7, 8, 9, 10, 11, 0, 0]]
    assert pad_or_trim(array, 3, axis=0).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [0] * 6]
    tensor = torch.from_numpy(array)
    assert torch.equal(pad_or_trim(tensor, 8), torch.from_numpy(pad_or_trim(array, 8)))
    assert torch.equal(pad_or_trim(tensor, 1, axis=0), tensor[:1])
    assert pad_or_trim(tensor, 6) is tensor


def test_path_input_decodes_the_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "speech.mp4"
    frames = np.zeros((50, 64, 64, 3), dtype=np.uint8)
    write_video(path, frames, fps=25, audio=SIGNALS["speech"][: 2 * 16_000], sample_rate=16_000)
    decoded = decode(path, require_video=False).audio
    from_path = log_mel_spectrogram(path)
    assert from_path.shape == (80, len(decoded) // 160)
    assert torch.equal(from_path, log_mel_spectrogram(decoded))


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(B, N\)"):
        log_mel_spectrogram(np.zeros((1, 2, 16_000), dtype=np.float32))
    with pytest.raises(ValueError, match="has 150 samples; the STFT needs more than 200"):
        log_mel_spectrogram(np.zeros(150, dtype=np.float32))
