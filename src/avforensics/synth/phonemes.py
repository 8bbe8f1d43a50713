"""Phoneme inventory and utterance timing: the one timeline that drives both the voice and the lips.

Speech and lip motion are both derived from a `PhonemeTrack`, so a real clip is synchronised by
construction and a manipulation breaks synchrony only where it swaps or shifts the track it renders from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Phoneme:
    """Acoustic and visual targets of one phoneme (a simplified ARPAbet set).

    `formants` are F1-F3 in Hz for a reference adult vocal tract; `voicing` and `frication` are excitation
    amplitudes; `noise_band` picks the frication colour (0 labiodental, 1 post-alveolar, 2 alveolar);
    `burst` marks stops, whose release is a short noise burst; `mouth_open` and `mouth_width` (0..1) are
    the viseme the lips move toward.
    """

    symbol: str
    formants: tuple[float, float, float]
    voicing: float
    frication: float
    noise_band: int
    burst: bool
    mouth_open: float
    mouth_width: float
    mean_duration: float


def _p(symbol, formants, voicing, frication, band, burst, mouth_open, width, duration) -> Phoneme:
    return Phoneme(symbol, formants, voicing, frication, band, burst, mouth_open, width, duration)


PHONEMES: tuple[Phoneme, ...] = (
    _p("SIL", (500, 1500, 2500), 0.0, 0.0, 0, False, 0.02, 0.50, 0.20),
    # vowels
    _p("AA", (730, 1090, 2440), 1.0, 0.0, 0, False, 0.95, 0.60, 0.12),
    _p("AE", (660, 1720, 2410), 1.0, 0.0, 0, False, 0.80, 0.75, 0.12),
    _p("AH", (620, 1190, 2390), 1.0, 0.0, 0, False, 0.70, 0.55, 0.09),
    _p("AO", (570, 840, 2410), 1.0, 0.0, 0, False, 0.75, 0.35, 0.12),
    _p("EH", (530, 1840, 2480), 1.0, 0.0, 0, False, 0.60, 0.70, 0.10),
    _p("IH", (390, 1990, 2550), 0.9, 0.0, 0, False, 0.40, 0.75, 0.08),
    _p("IY", (270, 2290, 3010), 0.9, 0.0, 0, False, 0.30, 0.95, 0.11),
    _p("UW", (300, 870, 2240), 0.9, 0.0, 0, False, 0.35, 0.15, 0.11),
    _p("OW", (450, 900, 2400), 1.0, 0.0, 0, False, 0.60, 0.25, 0.12),
    _p("ER", (490, 1350, 1690), 0.9, 0.0, 0, False, 0.45, 0.40, 0.11),
    # nasals and approximants
    _p("M", (250, 1100, 2200), 0.45, 0.0, 0, False, 0.00, 0.50, 0.07),
    _p("N", (250, 1600, 2500), 0.45, 0.0, 0, False, 0.20, 0.60, 0.06),
    _p("L", (360, 1300, 2800), 0.70, 0.0, 0, False, 0.35, 0.55, 0.06),
    _p("R", (420, 1300, 1600), 0.70, 0.0, 0, False, 0.30, 0.35, 0.06),
    _p("W", (300, 700, 2200), 0.70, 0.0, 0, False, 0.20, 0.10, 0.06),
    _p("Y", (280, 2200, 2900), 0.70, 0.0, 0, False, 0.25, 0.85, 0.05),
    # fricatives
    _p("F", (400, 1400, 2500), 0.0, 0.45, 0, False, 0.12, 0.55, 0.10),
    _p("V", (400, 1400, 2500), 0.40, 0.30, 0, False, 0.12, 0.55, 0.07),
    _p("S", (400, 1700, 2600), 0.0, 0.55, 2, False, 0.15, 0.80, 0.11),
    _p("Z", (400, 1700, 2600), 0.40, 0.35, 2, False, 0.15, 0.80, 0.08),
    _p("SH", (400, 1800, 2600), 0.0, 0.55, 1, False, 0.22, 0.25, 0.11),
    # stops: a closure, then a release burst
    _p("P", (400, 1100, 2400), 0.0, 0.0, 0, True, 0.00, 0.50, 0.08),
    _p("B", (400, 1100, 2400), 0.25, 0.0, 0, True, 0.00, 0.50, 0.07),
    _p("T", (400, 1700, 2600), 0.0, 0.0, 2, True, 0.18, 0.65, 0.07),
    _p("D", (400, 1700, 2600), 0.25, 0.0, 2, True, 0.18, 0.65, 0.06),
    _p("K", (400, 1900, 2500), 0.0, 0.0, 1, True, 0.30, 0.55, 0.08),
    _p("G", (400, 1900, 2500), 0.25, 0.0, 1, True, 0.30, 0.55, 0.07),
)
PHONEME_INDEX: dict[str, int] = {p.symbol: i for i, p in enumerate(PHONEMES)}
SILENCE = PHONEME_INDEX["SIL"]
_VOWELS = np.array([PHONEME_INDEX[s] for s in ("AA", "AE", "AH", "AO", "EH", "IH", "IY", "UW", "OW", "ER")])
_CONSONANTS = np.array([i for i, p in enumerate(PHONEMES) if p.symbol != "SIL" and i not in set(_VOWELS)])
_MEAN_DURATIONS = np.array([p.mean_duration for p in PHONEMES])


@dataclass(frozen=True)
class PhonemeTrack:
    """A phoneme sequence with start times (seconds); the last phoneme ends at `duration`."""

    ids: np.ndarray
    starts: np.ndarray
    duration: float

    @property
    def ends(self) -> np.ndarray:
        return np.append(self.starts[1:], self.duration)

    def index_at(self, times: np.ndarray) -> np.ndarray:
        """Which phoneme is sounding at each time (seconds)."""
        return self.ids[np.clip(np.searchsorted(self.starts, times, side="right") - 1, 0, len(self.ids) - 1)]

    def speech_onset(self) -> float:
        """Start of the first non-silent phoneme: the leading silence a shortcut audit measures."""
        spoken = np.flatnonzero(self.ids != SILENCE)
        return float(self.starts[spoken[0]]) if spoken.size else self.duration


def random_utterance(
    rng: np.random.Generator, duration: float, lead_silence: float, rate: float = 1.0
) -> PhonemeTrack:
    """Phrases of CV(C) syllables separated by pauses, filling exactly `duration` seconds.

    `rate` scales phoneme durations (speaking rate); the clip ends in silence after the last phrase.
    """
    ids: list[int] = [SILENCE]
    lengths: list[float] = [lead_silence]
    elapsed = lead_silence
    tail = 0.15
    while elapsed < duration - tail - 0.3:
        for _ in range(int(rng.integers(2, 6))):  # one phrase
            syllable = [int(rng.choice(_CONSONANTS)), int(rng.choice(_VOWELS))]
            if rng.random() < 0.4:
                syllable.append(int(rng.choice(_CONSONANTS)))
            for pid in syllable:
                ids.append(pid)
                lengths.append(float(_MEAN_DURATIONS[pid] * rate * rng.uniform(0.7, 1.35)))
        ids.append(SILENCE)
        lengths.append(float(rng.uniform(0.12, 0.4)))
        elapsed = float(np.sum(lengths))
    starts = np.cumsum([0.0, *lengths[:-1]])
    keep = starts < duration - tail
    ids_array, starts = np.asarray(ids)[keep], starts[keep]
    if ids_array[-1] != SILENCE:
        ids_array, starts = np.append(ids_array, SILENCE), np.append(starts, duration - tail)
    return PhonemeTrack(ids_array, starts, duration)


def splice(outer: PhonemeTrack, inner: PhonemeTrack, periods: list[tuple[float, float]]) -> PhonemeTrack:
    """`outer` with the phonemes of `inner` inside `periods`: a word replacement, as in LAV-DF."""
    grid = np.sort(np.unique(np.concatenate([outer.starts, inner.starts, [p for pr in periods for p in pr]])))
    grid = grid[grid < outer.duration]
    inside = np.zeros(grid.shape, dtype=bool)
    for start, end in periods:
        inside |= (grid >= start) & (grid < end)
    ids = np.where(inside, inner.index_at(grid), outer.index_at(grid))
    changes = np.append(True, ids[1:] != ids[:-1])
    return PhonemeTrack(ids[changes], grid[changes], outer.duration)
