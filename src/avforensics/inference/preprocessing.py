"""The media pipeline of training, applied to one file streamed in chunks: decode -> faces -> windows.

Bounded memory: the file is read with `iter_windows` in chunks of `chunk_seconds` (a whole number of clip
windows), each chunk is face-tracked and cropped on its own, cut into windows and scored before the next is
decoded, so a 10-minute video never sits in memory. A video no longer than one chunk is processed exactly
as `avforensics prepare` processes it (one decode, one face track), so its windows equal the training
loader's bit for bit: both cut windows with `data.windows.cut_window`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.data.prepare import PrepareOptions
from avforensics.data.silence import frame_offset, trim_clip
from avforensics.data.windows import cut_windows
from avforensics.experiment.config import ExperimentConfig
from avforensics.media.clips import samples_per_frame
from avforensics.media.decode import decode, iter_windows, probe
from avforensics.media.errors import MediaTooShortError
from avforensics.media.faces import FaceCrops, FaceDetector, crop_faces, track_faces

DEFAULT_CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class Preprocessing:
    """How a model's windows are made: what training used, so inference feeds the model the same input."""

    clip_frames: int
    image_size: int
    options: PrepareOptions

    def to_dict(self) -> dict[str, Any]:
        return {"clip_frames": self.clip_frames, "image_size": self.image_size,
                "options": dataclasses.asdict(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(int(data["clip_frames"]), int(data["image_size"]), PrepareOptions(**data["options"]))

    @classmethod
    def from_config(cls, config: ExperimentConfig) -> Preprocessing:
        """The preprocessing of a training config: its prepared cache's options when that cache is readable
        here, else the on-the-fly decoding options (`data.options.prepare_options`) the loader would use."""
        options = config.data.options
        image_size = int(options.get("image_size", 224))
        prepared = options.get("prepared")
        settings = Path(prepared) / "prepare.json" if prepared else None
        if settings is not None and settings.is_file():
            prepare = PrepareOptions(**json.loads(settings.read_text(encoding="utf-8"))["options"])
        else:
            prepare = PrepareOptions(**{"size": image_size, **(options.get("prepare_options") or {})})
        if options.get("trim_silence"):  # trimmed by the loader (data.options.trim_silence), not the cache
            prepare = dataclasses.replace(prepare, trim_silence=True)
        return cls(config.data.clip_frames, image_size, prepare)


@dataclass
class Chunk:
    """A streamed piece of a video: where it starts, its face crops and its window dicts."""

    start_frame: int
    n_frames: int
    crops: FaceCrops
    audio_present: bool
    windows: list[dict[str, Any]]
    video_present: bool = True


# iter_windows' note on the short last chunk: internal to streaming (its tail is never scored).
_CHUNK_PADDING_NOTE = "last window has "


class VideoChunks:
    """Iterate over the chunks of `path`: decoded, face-tracked and cropped per chunk, cut into windows.

    As in training: leading silence is trimmed when the model was trained on trimmed clips
    (`options.trim_silence`, measured on the first chunk: the whole video when it fits in one), and a video
    shorter than one window is scored as one window padded by repeating its last frame. A tail shorter
    than one window is not scored (the test-time protocol of the papers); `unscored_frames` counts it and
    `trimmed_frames` the leading frames cut with the silence, once iteration is over.
    """

    def __init__(
        self,
        path: str | Path,
        preprocessing: Preprocessing,
        face_detector: FaceDetector,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        decoder_threads: int = 0,
    ) -> None:
        if chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        self.path = path
        self.preprocessing = preprocessing
        self.face_detector = face_detector
        window = preprocessing.clip_frames
        self.chunk_frames = max(1, round(chunk_seconds * preprocessing.options.fps / window)) * window
        self.unscored_frames = 0
        self.trimmed_frames = 0
        self.padded_frames = 0
        self.decoder_threads = decoder_threads

    def __iter__(self) -> Iterator[Chunk]:
        options, window = self.preprocessing.options, self.preprocessing.clip_frames
        pending = _Pending(samples_per_frame(options.fps, options.sample_rate))
        scored = 0
        for frames, audio in self._pieces():
            pending.add(frames, audio)
            while len(pending) >= self.chunk_frames:
                yield self._chunk(self.trimmed_frames + scored, *pending.take(self.chunk_frames))
                scored += self.chunk_frames
        usable = len(pending) // window * window if scored or len(pending) >= window else len(pending)
        if usable:
            self.padded_frames = window - usable if usable < window else 0
            yield self._chunk(self.trimmed_frames + scored, *pending.take(usable))
        elif not scored:
            trimmed = " after trimming its leading silence (silent throughout)" if self.trimmed_frames else ""
            raise MediaTooShortError(self.path, f"no video frames left to score{trimmed}")
        self.unscored_frames = len(pending)

    def _pieces(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The decoded video in pieces of `chunk_frames` frames (the last may be shorter), its leading
        silence trimmed from the first piece when the model was trained so."""
        options = self.preprocessing.options
        spf = samples_per_frame(options.fps, options.sample_rate)
        pieces = iter_windows(
            self.path, self.chunk_frames, fps=options.fps, sample_rate=options.sample_rate,
            max_side=options.max_side, partial="keep", threads=self.decoder_threads,
        )
        for piece in pieces:
            frames = piece.frames[: piece.n_valid]
            audio = piece.audio[: piece.n_valid * spf] if piece.audio is not None else None
            if piece.index == 0 and options.trim_silence and audio is not None:
                frames, audio, seconds = trim_clip(frames, audio, options.fps, options.sample_rate)
                self.trimmed_frames = frame_offset(seconds, options.fps)
            yield frames, audio

    def _chunk(self, start_frame: int, frames: np.ndarray, audio: np.ndarray | None) -> Chunk:
        tracker = self.preprocessing.options.tracker()
        track = track_faces(frames, self.face_detector, tracker, self.path)
        crops = crop_faces(frames, track, tracker, self.path)
        windows = window_items(crops.frames, audio, self.preprocessing, str(self.path))
        return Chunk(start_frame, len(frames), crops, audio is not None, windows)

    @staticmethod
    def is_streaming_note(message: str) -> bool:
        """True for media warnings about the padding of the last chunk, which is never scored."""
        return _CHUNK_PADDING_NOTE in message


class AudioOnlyChunks(VideoChunks):
    """The chunks of an audio-only file, for a model whose audio head reads the audio alone: the sound cut
    into windows as a video's would be (trimmed and padded alike), with blank frames no head used is shown.
    """

    def _pieces(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        options = self.preprocessing.options
        spf = samples_per_frame(options.fps, options.sample_rate)
        seconds = self.chunk_frames / options.fps
        declared = probe(self.path).duration
        spans = [(k * seconds, min(seconds, declared - k * seconds))
                 for k in range(math.ceil(declared / seconds))] if declared else [(0.0, None)]
        for index, (start, duration) in enumerate(spans):
            audio = decode(self.path, options.fps, options.sample_rate, start=start, duration=duration,
                           require_video=False).audio
            audio = audio[: len(audio) // spf * spf]
            if index == 0 and options.trim_silence:
                _, audio, cut = trim_clip(None, audio, options.fps, options.sample_rate)
                self.trimmed_frames = frame_offset(cut, options.fps)
            size = self.preprocessing.image_size  # untouched pages of zeros cost no memory
            yield np.zeros((len(audio) // spf, size, size, 3), np.uint8), audio

    def _chunk(self, start_frame: int, frames: np.ndarray, audio: np.ndarray | None) -> Chunk:
        options = self.preprocessing.options
        count = len(frames)
        crops = FaceCrops(frames, np.zeros((count, 4), np.float32), np.zeros(count, bool),
                          np.zeros(count, np.int64), True, 0.0, [])
        windows = cut_windows(frames, audio, self.preprocessing.clip_frames, fps=options.fps,
                              sample_rate=options.sample_rate, image_size=self.preprocessing.image_size,
                              video_id=str(self.path))
        return Chunk(start_frame, count, crops, True, windows, video_present=False)


class _Pending:
    """Decoded frames and their audio waiting to be cut into chunks (at most about two chunks' worth)."""

    def __init__(self, samples_per_frame: int) -> None:
        self.samples_per_frame = samples_per_frame
        self.frames: list[np.ndarray] = []
        self.audio: list[np.ndarray] | None = []

    def __len__(self) -> int:
        return sum(len(frames) for frames in self.frames)

    def add(self, frames: np.ndarray, audio: np.ndarray | None) -> None:
        self.frames.append(frames)
        if audio is None:
            self.audio = None
        elif self.audio is not None:
            self.audio.append(audio)

    def take(self, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The first `count` frames (and their audio), removed from what is pending."""
        frames = np.concatenate(self.frames) if len(self.frames) > 1 else self.frames[0]
        taken, rest = frames[:count], frames[count:]
        self.frames = [rest] if len(rest) else []
        audio = None
        if self.audio is not None:
            samples = np.concatenate(self.audio) if len(self.audio) > 1 else self.audio[0]
            cut = count * self.samples_per_frame
            audio, remaining = samples[:cut], samples[cut:]
            self.audio = [remaining] if len(remaining) else []
        return taken, audio


def window_items(
    crops: np.ndarray, audio: np.ndarray | None, preprocessing: Preprocessing, name: str
) -> list[dict[str, Any]]:
    """Every consecutive window of face crops (T, S, S, 3) uint8 + audio, cut as the training loader cuts."""
    options = preprocessing.options
    return cut_windows(crops, audio, preprocessing.clip_frames, fps=options.fps,
                       sample_rate=options.sample_rate, image_size=preprocessing.image_size, video_id=name)
