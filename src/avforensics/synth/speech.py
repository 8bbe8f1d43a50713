"""Source-filter speech synthesis driven by a `PhonemeTrack`.

A glottal pulse train (per-voice f0, jitter, shimmer, intonation) and aspiration noise pass through a
cascade of three formant resonators whose frequencies follow the phonemes (smoothed, as coarticulation
does); fricatives and stop bursts add band-limited noise. Crude, but it has what forensic cues look at:
harmonics, formants, a breathy noise floor, pauses, and timing shared with the lips.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from avforensics.synth.identity import Voice
from avforensics.synth.phonemes import PHONEMES, PhonemeTrack

_FORMANTS = np.array([p.formants for p in PHONEMES], dtype=np.float64)
_VOICING = np.array([p.voicing for p in PHONEMES])
_FRICATION = np.array([p.frication for p in PHONEMES])
_NOISE_BAND = np.array([p.noise_band for p in PHONEMES])
_BURST = np.array([p.burst for p in PHONEMES])
_BANDWIDTHS = np.array([70.0, 100.0, 160.0])
# Frication noise colours (Hz): labiodental (broad, weak), post-alveolar, alveolar.
_NOISE_BANDS = ((1200.0, 7000.0), (2000.0, 5500.0), (3800.0, 9500.0))
_BURST_SECONDS = 0.018
_BLOCK_SECONDS = 0.01


def synthesize(
    track: PhonemeTrack,
    voice: Voice,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    periodic: bool = False,
) -> np.ndarray:
    """Speech for `track` in `voice`, float64 mono, peak-normalised to 0.5.

    `periodic=True` drops jitter, shimmer and most intonation: the over-regular "buzzy" excitation of a
    parametric vocoder.
    """
    n = int(round(track.duration * sample_rate))
    times = np.arange(n) / sample_rate
    pid = track.index_at(times)
    voicing = _smooth(_VOICING[pid], sample_rate, 0.012)
    frication = _smooth(_FRICATION[pid], sample_rate, 0.010)
    formants = _smooth(_FORMANTS[pid] * voice.formant_scale, sample_rate, 0.030)

    source = _glottal_source(times, voice, sample_rate, rng, periodic) * voicing
    source += voice.breathiness * rng.standard_normal(n) * voicing
    voiced = _formant_filter(source, formants, sample_rate)

    noise = _noise_bands(rng.standard_normal(n), sample_rate)
    band = _NOISE_BAND[pid]
    fricated = np.take_along_axis(noise, band[None, :], axis=0)[0] * frication
    bursts = np.sum(_burst_envelopes(track, n, sample_rate) * noise, axis=0)
    speech = voiced + 0.6 * fricated + 1.2 * bursts
    peak = float(np.max(np.abs(speech))) or 1.0
    return 0.5 * speech / peak


def _smooth(values: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """Moving average along time (axis 0): the articulators cannot jump between targets."""
    width = max(1, int(seconds * sample_rate))
    padded = np.concatenate(
        [np.repeat(values[:1], width // 2, axis=0), values, np.repeat(values[-1:], width, axis=0)]
    )
    cumulative = np.cumsum(padded, axis=0, dtype=np.float64)
    averaged = (cumulative[width:] - cumulative[:-width]) / width
    return averaged[: len(values)]


def _glottal_source(
    times: np.ndarray, voice: Voice, sample_rate: int, rng: np.random.Generator, periodic: bool
) -> np.ndarray:
    """Differentiated Rosenberg pulses at a slowly gliding f0 with cycle-to-cycle jitter and shimmer."""
    duration = times[-1] + 1.0 / sample_rate
    intonation_depth = 0.02 if periodic else 0.09
    contour = 1.0 + intonation_depth * np.sin(2 * np.pi * rng.uniform(0.3, 0.7) * times + rng.uniform(0, 6.3))
    contour *= 1.0 - 0.08 * times / duration  # declination
    if not periodic:
        knots = np.arange(0.0, duration + 0.005, 0.005)
        contour *= 1.0 + np.interp(times, knots, rng.normal(0.0, voice.jitter, knots.size))
    phase = np.cumsum(voice.f0 * contour / sample_rate)
    cycle = phase % 1.0
    opening, closing = 0.40, 0.16  # fractions of the period
    flow = np.where(
        cycle < opening,
        0.5 * (1 - np.cos(np.pi * cycle / opening)),
        np.where(cycle < opening + closing, np.cos(0.5 * np.pi * (cycle - opening) / closing), 0.0),
    )
    if not periodic:
        cycles = phase.astype(np.int64)
        flow *= 1.0 + rng.normal(0.0, voice.shimmer, cycles[-1] + 1)[cycles]
    pulses = np.diff(flow, prepend=0.0)
    return signal.lfilter([1.0], [1.0, -voice.spectral_tilt], pulses)


def _formant_filter(source: np.ndarray, formants: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cascade of three resonators, coefficients updated every 10 ms with the filter state carried over."""
    block = max(1, int(_BLOCK_SECONDS * sample_rate))
    out = np.empty_like(source)
    state = np.zeros(6)
    nyquist_guard = 0.45 * sample_rate
    for start in range(0, len(source), block):
        stop = min(start + block, len(source))
        centre = formants[(start + stop) // 2]
        denominator = np.array([1.0])
        for frequency, bandwidth in zip(np.minimum(centre, nyquist_guard), _BANDWIDTHS, strict=True):
            radius = np.exp(-np.pi * bandwidth / sample_rate)
            theta = 2 * np.pi * frequency / sample_rate
            denominator = np.convolve(denominator, [1.0, -2 * radius * np.cos(theta), radius * radius])
        gain = np.sum(denominator)  # unity gain at DC keeps the level steady as formants move
        out[start:stop], state = signal.lfilter([gain], denominator, source[start:stop], zi=state)
    return out


def _noise_bands(noise: np.ndarray, sample_rate: int) -> np.ndarray:
    """The white noise filtered into each frication colour: (3, N)."""
    nyquist = sample_rate / 2
    bands = []
    for low, high in _NOISE_BANDS:
        sos = signal.butter(
            4, [low / nyquist, min(high, 0.92 * nyquist) / nyquist], btype="band", output="sos"
        )
        bands.append(signal.sosfilt(sos, noise))
    return np.stack(bands)


def _burst_envelopes(track: PhonemeTrack, n: int, sample_rate: int) -> np.ndarray:
    """Decaying noise bursts at the release (end) of every stop closure, one row per noise colour."""
    envelopes = np.zeros((len(_NOISE_BANDS), n))
    length = int(_BURST_SECONDS * sample_rate)
    decay = np.exp(-np.arange(length) / (0.3 * length))
    stops = _BURST[track.ids]
    for end, phoneme in zip(track.ends[stops], track.ids[stops], strict=True):
        start = int(end * sample_rate)
        piece = decay[: max(0, min(length, n - start))]
        envelopes[_NOISE_BAND[phoneme], start : start + piece.size] += piece
    return envelopes
