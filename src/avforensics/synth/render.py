"""Render one `ClipSpec` into an .mp4 (H.264 + AAC) and describe it as a `SynthVideo`.

Randomness is split by purpose: the scene generator (shared by the four clips of a group) draws the
background, motion, blinks, words and room noise; the clip generator draws only what the manipulation
needs. So a fake differs from its real source exactly by its manipulation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avforensics.media.encode import write_video
from avforensics.synth.audio_fakes import cloned_speech, converted_voice, splice_audio
from avforensics.synth.face import HEAD_ROOM, FaceSprite
from avforensics.synth.identity import Identity, make_identity
from avforensics.synth.manifest import SynthVideo
from avforensics.synth.phonemes import PhonemeTrack, random_utterance, splice
from avforensics.synth.plan import ClipSpec, SceneSpec
from avforensics.synth.scene import blink_curve, composite, head_offsets, lip_curves, make_background
from avforensics.synth.speech import synthesize
from avforensics.synth.video_fakes import FaceSwap, GanUpsampling, LipSync, Pose

SpriteEdit = Callable[[np.ndarray, Pose, int], np.ndarray]
_DONOR_METHODS = frozenset({"faceswap", "vocoder_tts", "voice_conversion"})
_NOISE_BANK = 4
_AUDIO_TAIL = 2048  # samples
_CRF_WITHOUT_MBTREE = 3.5  # keeps the corpus at its size with mbtree on (demo corpus: 14.02 MB)


class _Scene:
    """The real recording shared by a group: who, what is said, and how the camera sees it."""

    def __init__(self, spec: SceneSpec, corpus_seed: int) -> None:
        self.spec = spec
        rng = np.random.default_rng([corpus_seed, spec.seed])
        self.person = make_identity(corpus_seed, spec.identity)
        self.n_frames = int(round(spec.duration * spec.fps))
        self.times = np.arange(self.n_frames) / spec.fps
        self.track = random_utterance(rng, spec.duration, spec.lead_silence, spec.speaking_rate)
        self.background = make_background(rng, spec.size)
        self.offsets = head_offsets(rng, self.times, spec.motion_px)
        self.blinks = blink_curve(rng, self.times)
        margin = 8
        noise_shape = (_NOISE_BANK, spec.size + margin, spec.size + margin, 3)
        self.noise = rng.standard_normal(noise_shape, dtype=np.float32) * np.float32(spec.pixel_noise)
        self.noise_shifts = rng.integers(0, margin, (self.n_frames, 2))
        self.voice_seed = int(rng.integers(2**31))
        self.room_seed = int(rng.integers(2**31))
        self.half_width = spec.face_scale * spec.size
        self.centre_x = spec.size / 2 + rng.uniform(-0.05, 0.05) * spec.size
        self.centre_y = spec.size * rng.uniform(0.44, 0.5)

    def sprite(self, person: Identity, centre_y: float | None = None) -> FaceSprite:
        """`person`'s head sized for this scene, tall enough to reach below the frame at any head offset."""
        tallest_face = 1.45  # above any identity's aspect
        reach = (
            HEAD_ROOM * self.half_width * tallest_face
            + self.spec.size
            - self.centre_y
            + 2 * self.spec.motion_px
        )
        return FaceSprite(
            person.face,
            self.half_width,
            int(reach) + 4,
            texture_seed=self.spec.seed + person.index,
            centre_y=centre_y,
        )


@dataclass
class ComposedClip:
    """A clip before encoding: its frames (streamed), soundtrack and manifest row."""

    frames: Iterator[np.ndarray]
    audio: np.ndarray
    video: SynthVideo


def compose_clip(clip: ClipSpec, corpus_seed: int) -> ComposedClip:
    """Everything `render_clip` encodes, computed exactly (bit for bit) from the seeds.

    `render_clip` then encodes them reproducibly, so the same seeds give the same .mp4 bytes too.
    """
    scene = _Scene(clip.scene, corpus_seed)
    spec = scene.spec
    rng = np.random.default_rng([corpus_seed, clip.seed])
    uses_donor = bool({clip.video_method, clip.audio_method} & _DONOR_METHODS)
    donor = make_identity(corpus_seed, clip.donor) if uses_donor else None
    fake_track = _fake_track(scene, clip, rng)
    audio = _audio(scene, clip, fake_track, donor, rng)
    sprite = scene.sprite(scene.person)
    edit = _sprite_edit(scene, clip, sprite, donor, fake_track, rng)
    opening, width = _lip_motion(scene, clip, rng)
    tops = np.round(scene.centre_y - sprite.layout.centre_y).astype(int) + scene.offsets[:, 1]
    lefts = np.round(scene.centre_x - sprite.layout.centre_x).astype(int) + scene.offsets[:, 0]
    edited = (
        _in_periods(scene.times, clip.fake_periods) if edit is not None else np.zeros(scene.n_frames, bool)
    )
    frames = _frames(scene, sprite, edit, edited, opening, width, tops, lefts)
    x1, y1, x2, y2 = sprite.layout.face_box()
    seconds = np.arange(0, scene.n_frames, spec.fps)
    boxes = [
        [round(x1 + lefts[i], 1), round(y1 + tops[i], 1), round(x2 + lefts[i], 1), round(y2 + tops[i], 1)]
        for i in seconds
    ]
    video_label, audio_label = int(bool(clip.video_method)), int(bool(clip.audio_method))
    video = SynthVideo(
        path=(Path("videos") / f"{clip.name}.mp4").as_posix(),
        label=int(video_label or audio_label),
        video_label=video_label,
        audio_label=audio_label,
        category=clip.category,
        methods=clip.methods,
        identity=scene.person.name,
        donor=donor.name if donor is not None else "",
        duration=spec.duration,
        n_frames=scene.n_frames,
        fps=spec.fps,
        width=spec.size,
        height=spec.size,
        sample_rate=spec.sample_rate,
        channels=spec.channels,
        fake_periods=[[float(a), float(b)] for a, b in clip.fake_periods],
        difficulty=clip.difficulty,
        seed=clip.seed,
        face_boxes=boxes,
    )
    return ComposedClip(frames, audio, video)


def render_clip(clip: ClipSpec, corpus_seed: int, out_dir: str | Path) -> SynthVideo:
    """Write `out_dir`/videos/<name>.mp4 for `clip` and return its manifest row."""
    composed = compose_clip(clip, corpus_seed)
    spec = clip.scene
    path = Path(out_dir) / composed.video.path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Reproducible x264 (one thread, no macroblock tree): the same seed renders the same bytes, so a demo
    # table is the same on every run. Without the tree x264 spends more bits at one CRF; +3.5 keeps the
    # corpus at the size it had before.
    write_video(
        path,
        composed.frames,
        spec.fps,
        composed.audio,
        spec.sample_rate,
        size=(spec.size, spec.size),
        crf=spec.crf + _CRF_WITHOUT_MBTREE,
        reproducible=True,
    )
    return composed.video


def _required(donor: Identity | None, clip: ClipSpec) -> Identity:
    if donor is None:
        raise ValueError(f"clip {clip.name}: method {clip.methods} needs a donor identity")
    return donor


def _in_periods(times: np.ndarray, periods: tuple[tuple[float, float], ...]) -> np.ndarray:
    inside = np.zeros(times.shape, dtype=bool)
    for start, end in periods:
        inside |= (times >= start) & (times < end)
    return inside


def _fake_track(scene: _Scene, clip: ClipSpec, rng: np.random.Generator) -> PhonemeTrack:
    """The other words a lip-sync or TTS fake says: whole clip, or only inside the fake periods."""
    spec = scene.spec
    other = random_utterance(rng, spec.duration, spec.lead_silence, spec.speaking_rate)
    whole = clip.fake_periods == ((0.0, spec.duration),)
    return other if whole else splice(scene.track, other, list(clip.fake_periods))


def _audio(
    scene: _Scene, clip: ClipSpec, fake_track: PhonemeTrack, donor: Identity | None, rng: np.random.Generator
) -> np.ndarray:
    """The soundtrack: real or manipulated speech at the scene's loudness, over the scene's room noise."""
    spec = scene.spec
    voice = scene.person.voice
    speech = synthesize(scene.track, voice, spec.sample_rate, np.random.default_rng(scene.voice_seed))
    if clip.audio_method:
        donor = _required(donor, clip)
        if clip.audio_method == "vocoder_tts":
            fake = cloned_speech(fake_track, voice, donor.voice, spec.sample_rate, rng, clip.strength)
        else:
            fake = converted_voice(scene.track, voice, donor.voice, spec.sample_rate, rng, clip.strength)
        speech = splice_audio(
            speech, _match_loudness(fake, _active_rms(speech)), list(clip.fake_periods), spec.sample_rate
        )
    speech = _match_loudness(speech, 10 ** (spec.loudness_db / 20))
    # Room tone runs on past the last frame, so AAC's final partial frame never ends the audio early.
    speech = np.concatenate([speech, np.zeros(_AUDIO_TAIL)])
    room = np.random.default_rng(scene.room_seed).standard_normal(speech.shape)
    speech = speech + room * 10 ** (spec.noise_floor_db / 20)
    if spec.channels == 2:
        return np.stack([speech * 0.97, speech]).astype(np.float32)
    return speech.astype(np.float32)


def _active_rms(signal: np.ndarray) -> float:
    """RMS over the samples above 1 % of the peak: loudness of the speech, not of the pauses."""
    level = np.abs(signal)
    active = level > 0.01 * level.max()
    return float(np.sqrt(np.mean(signal[active] ** 2))) if active.any() else 1.0


def _match_loudness(audio: np.ndarray, wanted_rms: float) -> np.ndarray:
    return audio * (wanted_rms / _active_rms(audio))


def _lip_motion(scene: _Scene, clip: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lip curves of the real track; for desync, shifted by 0.12-0.52 s (earlier or later)."""
    times = scene.times
    if clip.video_method == "desync":
        times = times - rng.choice([-1.0, 1.0]) * (0.12 + 0.4 * clip.strength)
    return lip_curves(scene.track, times)


def _sprite_edit(
    scene: _Scene,
    clip: ClipSpec,
    sprite: FaceSprite,
    donor: Identity | None,
    fake_track: PhonemeTrack,
    rng: np.random.Generator,
) -> SpriteEdit | None:
    if clip.video_method == "faceswap":
        return FaceSwap(
            sprite, scene.sprite(_required(donor, clip), centre_y=sprite.layout.centre_y), clip.strength
        )
    if clip.video_method == "gan_upsampling":
        return GanUpsampling(sprite, clip.strength, rng)
    if clip.video_method == "lipsync":
        opening, width = lip_curves(fake_track, scene.times)
        return LipSync(sprite, opening, width, clip.strength)
    return None


def _frames(
    scene: _Scene,
    sprite: FaceSprite,
    edit: SpriteEdit | None,
    edited: np.ndarray,
    opening: np.ndarray,
    width: np.ndarray,
    tops: np.ndarray,
    lefts: np.ndarray,
) -> Iterator[np.ndarray]:
    size = scene.spec.size
    for index in range(scene.n_frames):
        pose = Pose(float(opening[index]), float(width[index]), float(scene.blinks[index]))
        image = sprite.frame(pose.mouth_open, pose.mouth_width, pose.blink)
        if edit is not None and edited[index]:
            image = edit(image, pose, index)
        frame = composite(scene.background, image, sprite.alpha, int(tops[index]), int(lefts[index]))
        dy, dx = scene.noise_shifts[index]
        frame += scene.noise[index % _NOISE_BANK, dy : dy + size, dx : dx + size]
        yield (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
