"""What to render: scenes shared by groups of four clips (one per FakeAVCeleb category) and their fakes.

Every real scene is rendered once as RVRA and three times manipulated (RVFA, FVRA, FVFA), the way the
real datasets derive fakes from real sources. Because the four share duration, background, loudness,
leading silence and encoder settings, none of these can tell real from fake; methods rotate across
groups so that every method gets about the same number of clips.

Each scene has a person of its own (even identity indices), and donors, whose face or voice a fake
borrows, come from a separate pool (odd indices) that never appears as a source. Otherwise a model could
learn faces instead of forgeries: a donor seen as real in its own scenes and as fake when swapped into
another's teaches the opposite of what a held-out identity needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VIDEO_METHODS = ("faceswap", "gan_upsampling", "lipsync", "desync")
AUDIO_METHODS = ("vocoder_tts", "voice_conversion")
# Methods that can manipulate a few seconds of a clip (LAV-DF style); swaps and offsets act on whole clips.
PARTIAL_METHODS = frozenset({"gan_upsampling", "lipsync", "vocoder_tts", "voice_conversion"})
CATEGORIES = ("RVRA", "RVFA", "FVRA", "FVFA")
_PARTIAL_EVERY = 3
DEFAULT_DURATIONS = (2.0, 5.0)
DONOR_POOL = 64  # distinct donor identities


@dataclass(frozen=True)
class SceneSpec:
    """The real recording a group of clips derives from."""

    seed: int
    identity: int
    duration: float
    fps: int
    size: int
    sample_rate: int
    channels: int
    loudness_db: float
    noise_floor_db: float
    pixel_noise: float
    crf: int
    lead_silence: float
    speaking_rate: float
    face_scale: float
    motion_px: float


@dataclass(frozen=True)
class ClipSpec:
    """One output file: a scene, its category and manipulations."""

    name: str
    scene: SceneSpec
    category: str
    video_method: str
    audio_method: str
    donor: int
    fake_periods: tuple[tuple[float, float], ...]
    strength: float
    difficulty: float
    seed: int

    @property
    def methods(self) -> str:
        return "+".join(m for m in (self.video_method, self.audio_method) if m) or "real"


def _scene(rng: np.random.Generator, seed: int, identity: int, durations: tuple[float, float]) -> SceneSpec:
    fps = int(rng.choice([25, 25, 25, 25, 25, 24, 30]))
    duration = round(round(float(rng.uniform(*durations)) * fps) / fps, 4)
    hifi = rng.random() < 0.35
    loudness = float(rng.uniform(-30.0, -18.0))
    return SceneSpec(
        seed=seed,
        identity=identity,
        duration=duration,
        fps=fps,
        size=int(rng.choice([224, 240, 256])),
        sample_rate=44100 if hifi else 16000,
        channels=2 if hifi else 1,
        loudness_db=loudness,
        noise_floor_db=loudness - float(rng.uniform(30.0, 50.0)),
        pixel_noise=float(rng.uniform(1.0, 4.0)) / 255.0,
        crf=int(rng.integers(18, 27)),
        lead_silence=float(rng.uniform(0.1, 0.6)),
        speaking_rate=float(rng.uniform(0.85, 1.2)),
        face_scale=float(rng.uniform(0.19, 0.23)),
        motion_px=float(rng.uniform(1.5, 5.0)),
    )


def _periods(rng: np.random.Generator, duration: float, partial: bool) -> tuple[tuple[float, float], ...]:
    if not partial:
        return ((0.0, duration),)
    count = 1 if duration < 3.5 else int(rng.integers(1, 3))
    slots = np.linspace(0.3, duration - 0.2, count + 1)
    periods = []
    for start, stop in zip(slots[:-1], slots[1:], strict=True):
        room = stop - start
        length = float(rng.uniform(min(0.6, 0.6 * room), min(1.5, room)))
        begin = float(rng.uniform(start, stop - length))
        periods.append((round(begin, 3), round(begin + length, 3)))
    return tuple(periods)


def source_identity(group: int) -> int:
    """The person recorded in scene group `group`: one per scene, never a donor."""
    return 2 * group


def donor_identity(slot: int) -> int:
    """Donor `slot` of the pool: an identity no scene is recorded with."""
    return 2 * slot + 1


def plan_corpus(
    n_videos: int, seed: int, difficulty: float, durations: tuple[float, float] = DEFAULT_DURATIONS
) -> list[ClipSpec]:
    """`n_videos` clip specs, categories balanced (groups of four, truncated at the end).

    Every third fake whose methods allow it is partial (LAV-DF style); `durations` is the (min, max)
    clip length in seconds, drawn uniformly per scene.
    """
    if n_videos < 1:
        raise ValueError(f"need at least one video, got {n_videos}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    if not 1.0 <= durations[0] <= durations[1]:
        raise ValueError(f"durations must be (min, max) seconds with 1 <= min <= max, got {durations}")
    rng = np.random.default_rng([seed, 0x5C])
    n_groups = math.ceil(n_videos / len(CATEGORIES))
    clips: list[ClipSpec] = []
    partial_candidates = 0
    for group in range(n_groups):
        scene_seed = int(rng.integers(2**31))
        scene = _scene(rng, seed=scene_seed, identity=source_identity(group), durations=durations)
        methods = {
            "RVRA": ("", ""),
            "RVFA": ("", AUDIO_METHODS[group % 2]),
            "FVRA": (VIDEO_METHODS[group % 4], ""),
            "FVFA": (VIDEO_METHODS[(group + 2) % 4], AUDIO_METHODS[(group + 1) % 2]),
        }
        for category in rng.permutation(CATEGORIES):
            if len(clips) == n_videos:
                break
            video_method, audio_method = methods[str(category)]
            fake = bool(video_method or audio_method)
            partial = False
            if fake and {video_method, audio_method} - {""} <= PARTIAL_METHODS:
                partial_candidates += 1
                partial = partial_candidates % _PARTIAL_EVERY == 1
            donor = donor_identity(int(rng.integers(DONOR_POOL))) if fake else -1
            strength = float(np.clip((1.0 - difficulty) * rng.uniform(0.8, 1.2), 0.05, 1.0))
            clips.append(
                ClipSpec(
                    name=f"{len(clips):06d}",
                    scene=scene,
                    category=str(category),
                    video_method=video_method,
                    audio_method=audio_method,
                    donor=donor,
                    fake_periods=_periods(rng, scene.duration, partial) if fake else (),
                    strength=strength,
                    difficulty=difficulty,
                    seed=int(rng.integers(2**31)),
                )
            )
    return clips
