"""Detector: a trained checkpoint -> a Report for a video file or stream.

    from avforensics import Detector
    detector = Detector.from_checkpoint("runs/x/checkpoints/calibrated.ckpt")
    report = detector.predict("clip.mp4")
    report.p_fake, report.verdict, report.segments

The video is streamed in chunks (preprocessing.py), windows are scored in batches, window probabilities
are calibrated and averaged into the video's scores (DESIGN.md: mean over windows).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from avforensics.experiment.data import collate_windows
from avforensics.inference.calibration import Calibration
from avforensics.inference.causal import CausalChunks
from avforensics.inference.checkpoint import load_checkpoint
from avforensics.inference.preprocessing import (
    DEFAULT_CHUNK_SECONDS,
    AudioOnlyChunks,
    Chunk,
    Preprocessing,
    VideoChunks,
)
from avforensics.inference.report import HEADS, Report, Segment
from avforensics.media.errors import MediaWarning, NoVideoStreamError
from avforensics.media.faces import FaceDetector
from avforensics.models.base import DetectorModel

Source = str | Path | IO[bytes]
FRAMES_PER_BATCH = 128
_HEAD_LOGITS = {"p_fake": "logits", "p_video_fake": "video_logits", "p_audio_fake": "audio_logits"}


class Detector:
    """Scores videos with one detector; build it with `from_checkpoint`.

    face_detector: MTCNN (loaded on first use) unless given; use the one the model was trained with.
    batch_size: windows per forward pass; by default as many as hold `FRAMES_PER_BATCH` frames together
        (32 windows of a 4-frame small model, 8 of a 16-frame paper one): per-call overheads shrink with
        the batch while memory stays that of a fixed number of frames.
    chunk_seconds: video decoded and face-tracked at once (memory).
    decoder_threads: FFmpeg's decoding threads (0: one per core); processes sharing the cores set their
        share, as `detect --workers` does.
    """

    def __init__(
        self,
        model: DetectorModel,
        preprocessing: Preprocessing,
        calibration: Calibration | None = None,
        *,
        model_id: str = "",
        face_detector: FaceDetector | None = None,
        batch_size: int | None = None,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        device: str | torch.device = "cpu",
        decoder_threads: int = 0,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessing = preprocessing
        self.calibration = calibration or Calibration()
        self.model_id = model_id or model.name
        self.batch_size = batch_size or max(1, FRAMES_PER_BATCH // preprocessing.clip_frames)
        self.chunk_seconds = chunk_seconds
        self._face_detector = face_detector
        self.decoder_threads = decoder_threads

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> Detector:
        """Rebuild the model from the checkpoint alone, with its stored preprocessing and calibration."""
        loaded = load_checkpoint(path, options.get("device", "cpu"))
        return cls(
            loaded.model, loaded.preprocessing, loaded.calibration, model_id=loaded.model_id, **options
        )

    @property
    def face_detector(self) -> FaceDetector:
        if self._face_detector is None:
            from avforensics.media.mtcnn import MTCNN

            self._face_detector = MTCNN()
        return self._face_detector

    def predict(self, source: Source, *, causal: bool = False, window_stride: int | None = None) -> Report:
        """Score one video (a path, or a binary stream such as an upload). Raises MediaError subclasses
        naming the file and the reason when it cannot be scored.

        causal: make each window as a live stream would (inference/causal.py: faces from the past only,
        one window at a time, every `window_stride` frames), so the segments equal `detect --live` on the
        same stream; slower than the default, which tracks faces over whole chunks with look-ahead.
        """
        if isinstance(source, str | Path):
            return self._predict_path(Path(source), str(source), causal, window_stride)
        name = str(getattr(source, "name", "<stream>"))
        with tempfile.NamedTemporaryFile(suffix=Path(name).suffix or ".bin") as spooled:
            shutil.copyfileobj(source, spooled)
            spooled.flush()
            return self._predict_path(Path(spooled.name), name, causal, window_stride)

    def window_probabilities(self, windows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor | None]:
        """Calibrated probabilities of each head for a list of window dicts (None where a head is missing)."""
        return self._calibrated(self.window_logits(windows))

    def window_logits(self, windows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor | None]:
        """Raw (uncalibrated) logits of each head for a list of window dicts, in batches."""
        parts: dict[str, list[torch.Tensor]] = {head: [] for head in HEADS}
        missing: set[str] = set()
        with torch.inference_mode():
            for start in range(0, len(windows), self.batch_size):
                batch = _to_device(collate_windows(windows[start : start + self.batch_size]), self.device)
                outputs = self.model(batch)
                for head, attribute in _HEAD_LOGITS.items():
                    logits = getattr(outputs, attribute)
                    if logits is None:
                        missing.add(head)
                    else:
                        parts[head].append(logits.detach().float().reshape(-1).cpu())
        return {
            head: None if head in missing or not parts[head] else torch.cat(parts[head]) for head in HEADS
        }

    def _predict_path(self, path: Path, name: str, causal: bool, window_stride: int | None) -> Report:
        if causal:
            chunks = CausalChunks(path, self.preprocessing, self.face_detector, window_stride)
            return self._score(chunks, name, causal=True)
        try:
            return self._score(VideoChunks(path, self.preprocessing, self.face_detector, self.chunk_seconds,
                                           self.decoder_threads),
                               name)
        except NoVideoStreamError:
            if not self.model.audio_head_ignores_video:
                raise NoVideoStreamError(
                    path, f"no video stream (an audio-only file), and {self.model_id} cannot score sound "
                    "alone: it has no audio head, or its audio head also reads the pictures"
                ) from None
        return self._score(AudioOnlyChunks(path, self.preprocessing, self.face_detector, self.chunk_seconds),
                           name)

    def _score(self, chunks: VideoChunks | CausalChunks, name: str, causal: bool = False) -> Report:
        started = time.perf_counter()
        model_seconds = 0.0
        tally = _Tally(self.preprocessing.options.fps, self.preprocessing.clip_frames)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MediaWarning)
            for chunk in chunks:
                if not chunk.windows:
                    continue  # a causal window without a face under the no-face policy "skip"
                tick = time.perf_counter()
                probabilities = self.window_probabilities(chunk.windows)
                model_seconds += time.perf_counter() - tick
                tally.add(chunk, probabilities)
        media_notes = [str(w.message) for w in caught if issubclass(w.category, MediaWarning)]
        notes = [n for n in media_notes if not VideoChunks.is_streaming_note(n)]
        notes += tally.causal_face_notes(name) if causal else tally.face_notes()
        if not tally.audio_present:
            notes.append(f"{name}: no audio track; scored from the video alone, p_audio_fake is null")
        if not tally.video_present:
            notes.append(f"{name}: no video track; scored from the audio head alone: p_fake is its "
                         "p_audio_fake, p_video_fake is null")
        if trimmed := chunks.trimmed_frames:
            notes.append(f"{name}: {trimmed / tally.fps:.2f} s of leading silence trimmed before scoring, as "
                         "the model was trained; segment times are in the untrimmed file")
        if padded := chunks.padded_frames:
            window = self.preprocessing.clip_frames
            length = window - padded
            notes.append(f"{name}: {length} frame(s) ({length / tally.fps:.2f} s), shorter than one window "
                         f"of {window} frames; scored as one window padded by repeating the last frame, "
                         "with silence, as in training")
        if unscored := chunks.unscored_frames:
            notes.append(f"{name}: last {unscored} frame(s) ({unscored / tally.fps:.2f} s) are shorter "
                         "than a window and not scored")
        head = self.calibration.head("p_fake" if tally.video_present else "p_audio_fake")
        scores = {h: _mean([getattr(s, h) for s in tally.segments]) for h in HEADS}
        total = time.perf_counter() - started
        duration = tally.segments[-1].end if tally.segments else 0.0
        return Report(
            path=name,
            model=self.model_id,
            p_fake=float(scores["p_fake"]),
            p_video_fake=scores["p_video_fake"],
            p_audio_fake=scores["p_audio_fake"],
            verdict="fake" if scores["p_fake"] >= head.threshold else "real",
            threshold=head.threshold,
            calibrated=self.calibration.calibrated,
            duration=duration,
            segments=tally.segments,
            faces_found=tally.found / tally.frames if tally.frames else 0.0,
            flags={"no_audio": not tally.audio_present, "no_face": tally.no_face,
                   "no_video": not tally.video_present},
            warnings=list(dict.fromkeys(notes)),
            timing={
                "decode_and_faces_s": round(total - model_seconds, 4),
                "model_s": round(model_seconds, 4),
                "total_s": round(total, 4),
                "video_seconds_per_second": round(duration / total, 3) if total > 0 else 0.0,
            },
        )

    def _calibrated(self, logits: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
        return {
            head: None if values is None else self.calibration.probabilities(head, values)
            for head, values in logits.items()
        }


class _Tally:
    """What a video's chunks add up to: the timeline, face statistics, audio presence, face warnings."""

    def __init__(self, fps: float, clip_frames: int) -> None:
        self.fps, self.window_seconds = fps, clip_frames / fps
        self.segments: list[Segment] = []
        self.found = self.frames = 0
        self.no_face = self.audio_present = self.video_present = True
        self.chunk_notes: list[tuple[int, int, list[str]]] = []  # (start frame, frames, warnings)

    def add(self, chunk: Chunk, probabilities: dict[str, torch.Tensor | None]) -> None:
        for index, item in enumerate(chunk.windows):
            start = (chunk.start_frame + item["start_frame"]) / self.fps
            values = {h: None if p is None else float(p[index]) for h, p in probabilities.items()}
            if not chunk.audio_present:
                values["p_audio_fake"] = None
            if not chunk.video_present:  # blank frames: only the audio head's answer is about this file
                values["p_video_fake"], values["p_fake"] = None, values["p_audio_fake"]
            seconds = self.window_seconds - item.get("padded_frames", 0) / self.fps  # real frames only
            self.segments.append(Segment(round(start, 6), round(start + seconds, 6), **values))
        self.found += int(chunk.crops.face_found.sum())
        self.frames += chunk.n_frames
        self.no_face &= chunk.crops.no_face
        self.audio_present &= chunk.audio_present
        self.video_present &= chunk.video_present
        self.chunk_notes.append((chunk.start_frame, chunk.n_frames, chunk.crops.warnings))

    def causal_face_notes(self, name: str) -> list[str]:
        """Causal windows carry no tracker notes of their own (one per window would flood the report)."""
        if self.no_face:
            return [f"{name}: no face found in any scored window; centre crops were scored"]
        if self.frames and self.found / self.frames < 0.5:
            return [f"{name}: face found in only {self.found / self.frames:.0%} of the scored frames"]
        return []

    def face_notes(self) -> list[str]:
        """The face tracker's warnings, each with its chunk's time span when the video had several."""
        if len(self.chunk_notes) == 1:
            return list(self.chunk_notes[0][2])
        return [
            f"[{start / self.fps:.1f}-{(start + count) / self.fps:.1f} s] {note}"
            for start, count, notes in self.chunk_notes
            for note in notes
        ]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    if not known or len(known) < len(values):
        return None
    return float(np.mean(known))


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
