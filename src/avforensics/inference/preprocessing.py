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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avforensics.data.prepare import PrepareOptions
from avforensics.data.windows import cut_windows
from avforensics.experiment.config import ExperimentConfig
from avforensics.media.clips import samples_per_frame
from avforensics.media.decode import iter_windows
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
        return cls(config.data.clip_frames, image_size, prepare)


@dataclass
class Chunk:
    """A streamed piece of a video: where it starts, its face crops and its window dicts."""

    start_frame: int
    n_frames: int
    crops: FaceCrops
    audio_present: bool
    windows: list[dict[str, Any]]


# iter_windows' note on the padded last chunk: the padding is internal to streaming (it is never scored).
_CHUNK_PADDING_NOTE = "last window has "


class VideoChunks:
    """Iterate over the chunks of `path`: decoded, face-tracked and cropped per chunk, cut into windows.

    A tail shorter than one window is not scored (the test-time protocol of the papers); `unscored_frames`
    counts it once iteration is over. A video must hold at least one whole window: a shorter one raises
    MediaTooShortError naming the file.
    """

    def __init__(
        self,
        path: str | Path,
        preprocessing: Preprocessing,
        face_detector: FaceDetector,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    ) -> None:
        if chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        self.path = path
        self.preprocessing = preprocessing
        self.face_detector = face_detector
        window = preprocessing.clip_frames
        self.chunk_frames = max(1, round(chunk_seconds * preprocessing.options.fps / window)) * window
        self.unscored_frames = 0

    def __iter__(self) -> Iterator[Chunk]:
        options, window = self.preprocessing.options, self.preprocessing.clip_frames
        spf = samples_per_frame(options.fps, options.sample_rate)
        tracker = options.tracker()
        pieces = iter_windows(
            self.path, self.chunk_frames, fps=options.fps, sample_rate=options.sample_rate,
            max_side=options.max_side, partial="pad",
        )
        for piece in pieces:
            self.unscored_frames += piece.n_valid % window
            if piece.n_valid < window:
                if piece.index == 0:
                    raise MediaTooShortError(
                        self.path,
                        f"video has {piece.n_valid} frame(s) ({piece.n_valid / options.fps:.2f} s), shorter "
                        f"than one window of {window} frames ({window / options.fps:.2f} s)",
                    )
                continue
            frames = piece.frames[: piece.n_valid]
            audio = piece.audio[: piece.n_valid * spf] if piece.audio is not None else None
            track = track_faces(frames, self.face_detector, tracker, self.path)
            crops = crop_faces(frames, track, tracker, self.path)
            windows = window_items(crops.frames, audio, self.preprocessing, str(self.path))
            yield Chunk(piece.start_frame, piece.n_valid, crops, audio is not None, windows)

    @staticmethod
    def is_streaming_note(message: str) -> bool:
        """True for media warnings about the padding of the last chunk, which is never scored."""
        return _CHUNK_PADDING_NOTE in message


def window_items(
    crops: np.ndarray, audio: np.ndarray | None, preprocessing: Preprocessing, name: str
) -> list[dict[str, Any]]:
    """Every consecutive window of face crops (T, S, S, 3) uint8 + audio, cut as the training loader cuts."""
    options = preprocessing.options
    return cut_windows(crops, audio, preprocessing.clip_frames, fps=options.fps,
                       sample_rate=options.sample_rate, image_size=preprocessing.image_size, video_id=name)
