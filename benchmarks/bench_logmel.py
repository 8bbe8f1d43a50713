"""Log-mel speed: avforensics.features.log_mel_spectrogram vs openai-whisper's, same inputs, side by side.

Run: .venv/bin/python benchmarks/bench_logmel.py
Cases: a batch of 0.64 s clip windows (10,240 samples each; the model's input) and one 30 s Whisper input.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import whisper

from avforensics.features import N_SAMPLES, log_mel_spectrogram

WINDOW_SAMPLES = 10_240
REPEATS = 30


def _interleaved_medians(
    ours: Callable[[], torch.Tensor], reference: Callable[[], torch.Tensor]
) -> tuple[float, float]:
    """Median seconds of each, calls alternating so that load from other processes hits both alike."""
    ours(), reference()  # warm-up: filter and window caches, allocator
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(REPEATS):
        for function, bucket in zip((ours, reference), timings, strict=True):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return statistics.median(timings[0]), statistics.median(timings[1])


def main() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "64 windows x 0.64 s (batched)": (0.1 * rng.standard_normal((64, WINDOW_SAMPLES))).astype(np.float32),
        "1 x 30 s": (0.1 * rng.standard_normal(N_SAMPLES)).astype(np.float32),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {REPEATS}")
    print(f"{'case':<32}{'n_mels':>7}{'ours ms':>10}{'whisper ms':>12}{'speed-up':>10}")
    for name, audio in cases.items():
        tensor = torch.from_numpy(audio)
        for n_mels in (80, 128):
            ours, reference = _interleaved_medians(
                lambda t=tensor, n=n_mels: log_mel_spectrogram(t, n_mels=n),
                lambda t=tensor, n=n_mels: whisper.log_mel_spectrogram(t, n_mels=n),
            )
            speed_up = reference / ours
            print(f"{name:<32}{n_mels:>7}{ours * 1e3:>10.2f}{reference * 1e3:>12.2f}{speed_up:>9.2f}x")


if __name__ == "__main__":
    main()
