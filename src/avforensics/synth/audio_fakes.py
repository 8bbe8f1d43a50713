"""Audio manipulations: cloned speech through a crude vocoder, voice conversion, partial splicing.

- `cloned_speech` imitates SV2TTS / Real-Time Voice Cloning (FakeAVCeleb RVFA/FVFA) and the TTS word
  replacements of LAV-DF: another speaker's voice pulled toward the target, saying other words, with an
  over-periodic ("buzzy") excitation, then a frame vocoder (smeared spectral envelope, phase noise,
  band limit).
- `converted_voice` imitates voice conversion (the audio fakes of AV-Deepfake1M, IDForge): the SAME words
  and timing (so the lips still match) in a voice shifted toward a donor's pitch and formants, with milder
  vocoder artefacts.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avforensics.synth.identity import Voice, blend_voices
from avforensics.synth.phonemes import PhonemeTrack
from avforensics.synth.speech import synthesize


def frame_vocoder(
    audio: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    envelope_smoothing: float,
    phase_noise: float,
    cutoff_hz: float,
) -> np.ndarray:
    """Re-synthesise `audio` frame by frame from a degraded spectrum (sqrt-Hann frames, 50 % overlap).

    `envelope_smoothing` (0..1) blends each magnitude spectrum toward its smoothed envelope, losing the
    harmonic fine structure; `phase_noise` (0..1) randomises phases (frame-rate phasiness); everything
    above `cutoff_hz` is removed (the band limit of a vocoder trained at a lower rate).
    """
    n_fft = 1 << int(round(np.log2(0.032 * sample_rate)))
    hop = n_fft // 2
    window = np.sqrt(np.hanning(n_fft + 1)[:-1])
    padded = np.concatenate([np.zeros(hop), audio, np.zeros(n_fft)])
    count = (len(padded) - n_fft) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count] * window
    spectrum = np.fft.rfft(frames, axis=1)
    magnitude, phase = np.abs(spectrum), np.angle(spectrum)
    envelope = ndimage.uniform_filter1d(magnitude, size=9, axis=1, mode="nearest")
    magnitude = (1 - envelope_smoothing) * magnitude + envelope_smoothing * envelope
    phase = phase + phase_noise * rng.uniform(-np.pi, np.pi, phase.shape)
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    magnitude *= 1.0 / (1.0 + np.exp((frequencies - cutoff_hz) / 120.0))
    frames = np.fft.irfft(magnitude * np.exp(1j * phase), n=n_fft, axis=1) * window
    out = np.zeros(len(padded))
    for index in range(count):
        out[index * hop : index * hop + n_fft] += frames[index]
    return out[hop : hop + len(audio)]


def cloned_speech(
    track: PhonemeTrack,
    target: Voice,
    donor: Voice,
    sample_rate: int,
    rng: np.random.Generator,
    strength: float,
) -> np.ndarray:
    """TTS-like speech of `track`: a donor voice cloned toward `target`, through a crude vocoder."""
    voice = blend_voices(donor, target, 0.45 + 0.45 * (1 - strength))
    speech = synthesize(track, voice, sample_rate, rng, periodic=True)
    return frame_vocoder(
        speech,
        sample_rate,
        rng,
        envelope_smoothing=0.3 + 0.5 * strength,
        phase_noise=0.1 + 0.4 * strength,
        cutoff_hz=min(7600.0 - 3200.0 * strength, 0.47 * sample_rate),
    )


def converted_voice(
    track: PhonemeTrack,
    source: Voice,
    donor: Voice,
    sample_rate: int,
    rng: np.random.Generator,
    strength: float,
) -> np.ndarray:
    """The same words and timing as `track`, in `source`'s voice converted toward `donor`."""
    voice = blend_voices(source, donor, 0.5 + 0.4 * strength)
    speech = synthesize(track, voice, sample_rate, rng)
    return frame_vocoder(
        speech,
        sample_rate,
        rng,
        envelope_smoothing=0.15 + 0.4 * strength,
        phase_noise=0.05 + 0.2 * strength,
        cutoff_hz=min(7800.0 - 2400.0 * strength, 0.47 * sample_rate),
    )


def splice_audio(
    real: np.ndarray, fake: np.ndarray, periods: list[tuple[float, float]], sample_rate: int
) -> np.ndarray:
    """`real` with `fake` inside `periods`, joined by 10 ms raised-cosine cross-fades."""
    weight = np.zeros(len(real))
    for start, end in periods:
        weight[int(start * sample_rate) : int(end * sample_rate)] = 1.0
    ramp = max(1, int(0.01 * sample_rate))
    kernel = np.hanning(2 * ramp + 1)
    weight = np.clip(np.convolve(weight, kernel / kernel.sum(), mode="same"), 0.0, 1.0)
    return real + weight * (fake - real)
