"""Face tracking and cropping for a video: one steady, square, 224 px crop of the main speaker per frame.

Detection runs every `stride` frames (faces move little in 0.2 s, and MTCNN is the expensive step);
detections are linked into tracks by overlap and centre distance; ONE main track is chosen for the whole
video (largest and most persistent), so the crop never flips between people; its boxes are interpolated
to every frame and smoothed with a centred moving average. A video without any face is never silent: it
is flagged, warned about by name, and handled by the configured policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from avforensics.media.boxcrop import crop_resize_frame
from avforensics.media.boxes import box_area, box_overlap
from avforensics.media.mtcnn import MTCNN, FaceDetections

NoFacePolicy = Literal["center", "skip"]
Frames = np.ndarray | Sequence[np.ndarray]


class FaceDetector(Protocol):
    """What tracking needs from a detector (MTCNN here): faces per RGB uint8 image."""

    def detect(self, images: Sequence[np.ndarray]) -> list[FaceDetections]: ...


@dataclass(frozen=True)
class FaceTrackerConfig:
    """How faces are found, followed and cut out.

    stride: run the detector on every `stride`-th frame (and the last); 1 = every frame.
    min_prob: detections below this MTCNN probability are ignored.
    smoothing: centred moving-average window in frames (1 = off; an even value acts as the next odd one,
        so the window stays centred). Centred rather than a one-pole filter
        because the whole clip is available: a causal filter lags a moving face and pushes it off-centre,
        a centred window removes detector jitter with zero lag.
    margin: the square crop's side is (1 + margin) x the longer side of the face box.
    size: output crop side in pixels.
    no_face: when no face is found anywhere: "center" keeps centre crops (flagged), "skip" returns none.
    link_iou, link_distance: a detection continues a track when its IoU with the track's last box is at
        least `link_iou`, or its centre moved at most `link_distance` x that box's side.
    max_missed: detection steps a track may go unmatched before it ends.
    warn_below: warn when the face is found in less than this fraction of frames.
    detect_side: frames whose longer side is larger are shrunk to it (area-averaged) for detection only,
        boxes mapped back: a face the crop can use is far above MTCNN's 20 px at that size, and at full
        720p the pyramid costs four times as much (None: detect at full size). Decoding for `detect` and
        `prepare` already bounds frames to this size, so there it changes nothing.
    """

    stride: int = 5
    min_prob: float = 0.9
    smoothing: int = 7
    margin: float = 0.3
    size: int = 224
    no_face: NoFacePolicy = "center"
    link_iou: float = 0.3
    link_distance: float = 0.5
    max_missed: int = 2
    warn_below: float = 0.5
    detect_side: int | None = 640

    def __post_init__(self) -> None:
        if self.stride < 1 or self.smoothing < 1 or self.size < 1 or self.max_missed < 0:
            raise ValueError(f"stride, smoothing and size must be >= 1 and max_missed >= 0: {self}")
        if self.margin < 0 or not 0 <= self.min_prob <= 1:
            raise ValueError(f"margin must be >= 0 and min_prob in [0, 1]: {self}")
        if self.no_face not in ("center", "skip"):
            raise ValueError(f"no_face must be 'center' or 'skip', got {self.no_face!r}")


@dataclass
class FaceTrack:
    """The main face of a video, frame by frame.

    boxes: (T, 4) xyxy float32 face box per frame (interpolated, smoothed); held constant before the
        track's first and after its last detection; all NaN when no face was found at all.
    face_found: (T,) bool, the face was detected at the detection frames on both sides of this frame.
    face_counts: (T,) int, faces detected at the most recent detection frame.
    detected: (T,) bool, frames the detector ran on.
    track_count: distinct faces (tracks) seen in the video.
    """

    boxes: np.ndarray
    face_found: np.ndarray
    face_counts: np.ndarray
    detected: np.ndarray
    track_count: int
    warnings: list[str] = field(default_factory=list)

    @property
    def found_ratio(self) -> float:
        return float(self.face_found.mean()) if len(self.face_found) else 0.0


@dataclass
class FaceCrops:
    """Square face crops: frames (T, size, size, 3) uint8 and the crop squares `boxes` (T, 4) in source
    pixels. `no_face` flags a video without any face (then T = 0 under the "skip" policy)."""

    frames: np.ndarray
    boxes: np.ndarray
    face_found: np.ndarray
    face_counts: np.ndarray
    no_face: bool
    found_ratio: float
    warnings: list[str]


@dataclass
class _Track:
    steps: list[int]  # detection step indices
    boxes: list[np.ndarray]

    @property
    def weight(self) -> float:
        """Size x persistence: the sum over detections of the box side."""
        return float(box_area(torch.from_numpy(np.stack(self.boxes))).sqrt().sum())


def _name(source: str | Path | None) -> str:
    return str(source) if source is not None else "video"


def detection_frames(length: int, stride: int) -> np.ndarray:
    """Frames the detector runs on: every `stride`-th, plus the last so no tail is extrapolated."""
    frames = np.arange(0, length, stride)
    return np.append(frames, length - 1) if frames[-1] != length - 1 else frames


def _link(detections: list[np.ndarray], config: FaceTrackerConfig) -> list[_Track]:
    """Greedy frame-to-frame association: best (IoU - centre shift) pairs first, within the gates."""
    tracks: list[_Track] = []
    for step, boxes in enumerate(detections):
        active = [t for t in tracks if step - t.steps[-1] <= config.max_missed + 1]
        pairs = []
        candidates = torch.from_numpy(boxes)
        for track_index, track in enumerate(active):
            last = torch.from_numpy(track.boxes[-1])
            overlaps = box_overlap(last, candidates).tolist()
            side = float(box_area(last[None])[0].clamp(min=1e-9).sqrt())
            centre_shift = ((candidates[:, :2] + candidates[:, 2:]) - (last[:2] + last[2:])) / 2
            shifts = (centre_shift.norm(dim=1) / side).tolist()
            for box_index in range(len(boxes)):
                if overlaps[box_index] >= config.link_iou or shifts[box_index] <= config.link_distance:
                    pairs.append((overlaps[box_index] - shifts[box_index], track_index, box_index))
        used_tracks, used_boxes = set(), set()
        for _, track_index, box_index in sorted(pairs, reverse=True):
            if track_index not in used_tracks and box_index not in used_boxes:
                used_tracks.add(track_index)
                used_boxes.add(box_index)
                active[track_index].steps.append(step)
                active[track_index].boxes.append(boxes[box_index])
        tracks += [_Track([step], [boxes[i]]) for i in range(len(boxes)) if i not in used_boxes]
    return tracks


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0, edges padded with their own value (no pull toward zero)."""
    if window <= 1 or len(values) < 2:
        return values
    half = window // 2
    padded = np.concatenate([np.repeat(values[:1], half, 0), values, np.repeat(values[-1:], half, 0)])
    sums = np.cumsum(np.concatenate([np.zeros_like(values[:1]), padded]), axis=0)
    return (sums[2 * half + 1 :] - sums[: -2 * half - 1]) / (2 * half + 1)


def _check_frames(frames: Frames, name: str) -> None:
    if len(frames) == 0:
        raise ValueError(f"{name}: no frames to track faces in")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"{name}: frames must be RGB uint8 (H, W, 3), got {first.dtype} {first.shape}")


def _boxes_every_frame(track: _Track, steps: np.ndarray, length: int, smoothing: int) -> np.ndarray:
    """The track's boxes on all `length` frames: linear between its detections (held constant before the
    first and after the last), then smoothed so the crop does not jitter with the detector's noise."""
    detected_at, boxes = steps[track.steps], np.stack(track.boxes)
    every_frame = np.arange(length)
    interpolated = np.stack([np.interp(every_frame, detected_at, boxes[:, k]) for k in range(4)], 1)
    return _moving_average(interpolated, smoothing).astype(np.float32)


def _detect_shrunk(
    detector: FaceDetector, images: list[np.ndarray], side: int | None
) -> list[FaceDetections]:
    """`detector.detect(images)`, run on copies shrunk so the longer side is at most `side`, boxes and
    landmarks scaled back to the frames' pixels."""
    height, width = images[0].shape[:2]
    if side is None or max(height, width) <= side:
        return detector.detect(images)
    scale = side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    shrunk = [
        F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float(), size=size, mode="area")[0]
        .round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        for image in images
    ]
    back = np.array([width / size[1], height / size[0]], np.float32)
    return [
        FaceDetections(found.boxes * np.tile(back, 2), found.probs, found.landmarks * back)
        for found in detector.detect(shrunk)
    ]


def track_faces(
    frames: Frames,
    detector: FaceDetector,
    config: FaceTrackerConfig | None = None,
    source: str | Path | None = None,
) -> FaceTrack:
    """Detect, link and choose the main face of `frames` (T, H, W, 3) RGB uint8; `source` names warnings."""
    config = config or FaceTrackerConfig()
    length = len(frames)
    name = _name(source)
    _check_frames(frames, name)
    steps = detection_frames(length, config.stride)
    found = _detect_shrunk(detector, [np.asarray(frames[i]) for i in steps], config.detect_side)
    detections = [result.boxes[result.probs >= config.min_prob] for result in found]
    counts_at_steps = np.array([len(boxes) for boxes in detections], dtype=np.int64)
    previous_step = np.searchsorted(steps, np.arange(length), side="right") - 1
    # The last frame is always a detection frame, so a frame between two has a next one.
    next_step = previous_step + (steps[previous_step] != np.arange(length))
    detected = np.zeros(length, dtype=bool)
    detected[steps] = True
    tracks = _link(detections, config)
    track = FaceTrack(
        boxes=np.full((length, 4), np.nan, dtype=np.float32),
        face_found=np.zeros(length, dtype=bool),
        face_counts=counts_at_steps[previous_step],
        detected=detected,
        track_count=len(tracks),
    )
    if not tracks:
        track.warnings.append(f"{name}: no face found in any of {length} frames")
        return track
    main = max(tracks, key=lambda t: t.weight)
    track.boxes = _boxes_every_frame(main, steps, length, config.smoothing)
    hit = np.zeros(len(steps), dtype=bool)
    hit[main.steps] = True
    track.face_found = hit[previous_step] & hit[next_step]
    if track.found_ratio < config.warn_below:
        track.warnings.append(f"{name}: face found in only {track.found_ratio:.0%} of {length} frames")
    several = counts_at_steps > 1
    if several.any():
        track.warnings.append(
            f"{name}: {counts_at_steps.max()} faces in view at {several.mean():.0%} of detection frames; "
            "using the largest, most persistent one"
        )
    return track


def _crop_squares(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Square around each face box's centre, side (1 + margin) x its longer side."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True) * (1 + margin) / 2
    return np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)


def _centre_squares(length: int, height: int, width: int) -> np.ndarray:
    side = min(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return np.tile(np.array([[x0, y0, x0 + side, y0 + side]], dtype=np.float32), (length, 1))


def crop_faces(
    frames: Frames,
    track: FaceTrack,
    config: FaceTrackerConfig | None = None,
    source: str | Path | None = None,
) -> FaceCrops:
    """Cut the tracked face out of every frame as a square of side `config.size`.

    Squares reaching past the image border are padded with black rather than shifted inside: the face
    then keeps the same place and scale in every crop, which is what the detectors downstream learn from.
    """
    config = config or FaceTrackerConfig()
    length = len(frames)
    warnings = list(track.warnings)
    no_face = not track.face_found.any()
    if no_face and config.no_face == "skip":
        warnings.append(f"{_name(source)}: no face, no crops (no-face policy 'skip')")
        return FaceCrops(
            frames=np.zeros((0, config.size, config.size, 3), dtype=np.uint8),
            boxes=np.zeros((0, 4), dtype=np.float32),
            face_found=np.zeros(0, dtype=bool),
            face_counts=np.zeros(0, dtype=np.int64),
            no_face=True,
            found_ratio=0.0,
            warnings=warnings,
        )
    if no_face:
        squares = _centre_squares(length, *frames[0].shape[:2])
        warnings.append(f"{_name(source)}: no face, centre crops instead (no-face policy 'center')")
    else:
        squares = _crop_squares(track.boxes, config.margin)
    crops = np.zeros((length, config.size, config.size, 3), dtype=np.uint8)
    for index in range(length):
        crops[index] = crop_resize_frame(np.asarray(frames[index]), squares[index], config.size)
    return FaceCrops(
        frames=crops,
        boxes=squares,
        face_found=track.face_found.copy(),
        face_counts=track.face_counts.copy(),
        no_face=no_face,
        found_ratio=track.found_ratio,
        warnings=warnings,
    )


def extract_faces(
    frames: Frames,
    detector: FaceDetector | None = None,
    config: FaceTrackerConfig | None = None,
    source: str | Path | None = None,
) -> FaceCrops:
    """Track and crop in one call (loads MTCNN when no detector is given)."""
    config = config or FaceTrackerConfig()
    track = track_faces(frames, detector or MTCNN(), config, source)
    return crop_faces(frames, track, config, source)
