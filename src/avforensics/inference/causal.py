"""Causal mode: windows made from the past only, one at a time, shared by live detection and
`detect --causal`, so a window scored live equals the same window of the finished file scored causally.

Each window is face-tracked by `media.causal_faces.CausalFaceTracker` (the window and what came before it,
never later frames), cropped, and turned into the training loader's window dict (`window_items`); it is
scored alone (a batch of one), since batch composition changes a model's floats in the last bits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avforensics.inference.preprocessing import Chunk, Preprocessing, window_items
from avforensics.media.causal_faces import CausalFaceTracker
from avforensics.media.decode import AVWindow, iter_windows
from avforensics.media.errors import MediaTooShortError
from avforensics.media.faces import FaceDetector, crop_faces


class CausalWindows:
    """Turns a stream's windows, in order (gaps allowed: windows not scored), into one-window Chunks."""

    def __init__(self, preprocessing: Preprocessing, face_detector: FaceDetector, name: str) -> None:
        self.preprocessing, self.name = preprocessing, name
        self.tracker_config = preprocessing.options.tracker()
        self.tracker = CausalFaceTracker(face_detector, self.tracker_config, name)
        self.next_frame = 0

    def skip_to(self, frame: int) -> None:
        """Frames before `frame` not yet seen are passed over (not tracked, not scored)."""
        self.tracker.skip(frame - self.next_frame)
        self.next_frame = max(self.next_frame, frame)

    def chunk(self, window: AVWindow) -> Chunk:
        """The window's face crops and its window dict (none under the no-face policy "skip" when the
        window has no face). The window must start at or after the end of the previous one."""
        if window.start_frame < self.next_frame:
            raise ValueError(f"{self.name}: window at frame {window.start_frame} overlaps the previous one "
                             f"(ends at {self.next_frame}); causal windows must not overlap")
        if window.n_valid < len(window.frames):
            raise ValueError(f"{self.name}: window at frame {window.start_frame} is padded; only whole "
                             "windows are scored")
        self.skip_to(window.start_frame)
        frames = window.frames
        track = self.tracker.track(frames)
        crops = crop_faces(frames, track, self.tracker_config, self.name)
        crops.warnings = []  # per-window notes would flood a stream's report; face_found says it per window
        items = window_items(crops.frames, window.audio, self.preprocessing, self.name) if len(crops.frames) \
            else []
        self.next_frame = window.start_frame + len(frames)
        return Chunk(window.start_frame, len(frames), crops, window.audio is not None, items)


class CausalChunks:
    """A file's windows in causal mode, every `window_stride` frames (default: consecutive windows).

    Same interface as `VideoChunks`: iterate Chunks, then read `unscored_frames` (a last window cut
    short by the end of the file). Unlike `VideoChunks` nothing is trimmed or padded, as a live stream cannot
    wait to know its leading silence: a file shorter than one window raises MediaTooShortError.
    """

    def __init__(
        self,
        path: str | Path,
        preprocessing: Preprocessing,
        face_detector: FaceDetector,
        window_stride: int | None = None,
    ) -> None:
        self.path, self.preprocessing, self.face_detector = path, preprocessing, face_detector
        self.window_stride = check_window_stride(window_stride, preprocessing.clip_frames)
        self.unscored_frames = 0
        self.trimmed_frames = self.padded_frames = 0  # a stream is never trimmed or padded (VideoChunks' are)

    def __iter__(self) -> Iterator[Chunk]:
        options, window = self.preprocessing.options, self.preprocessing.clip_frames
        causal = CausalWindows(self.preprocessing, self.face_detector, str(self.path))
        pieces = iter_windows(self.path, window, self.window_stride, options.fps, options.sample_rate,
                              options.max_side, partial="pad")
        for piece in pieces:
            if piece.n_valid < window:
                if piece.index == 0:
                    raise MediaTooShortError(
                        self.path, f"video has {piece.n_valid} frame(s), shorter than one window of {window}"
                    )
                self.unscored_frames = piece.n_valid
                continue
            yield causal.chunk(piece)


def check_window_stride(window_stride: int | None, clip_frames: int) -> int:
    """Frames from one window's start to the next: at least a window (causal windows do not overlap)."""
    stride = window_stride or clip_frames
    if stride < clip_frames:
        raise ValueError(
            f"window stride {stride} is shorter than a window of {clip_frames} frames; causal windows must "
            "not overlap"
        )
    return stride
