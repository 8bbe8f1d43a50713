"""Causal face tracking: the main face's boxes for a stream, window by window, from the past only.

`track_faces` (faces.py) sees a whole clip: it picks one main track over all of it and smooths boxes with a
centred average, so a box depends on frames up to half a clip ahead. A live stream cannot wait for that.
`CausalFaceTracker.track(frames)` takes one window of a stream at a time and gives that window's boxes using
only the window itself and what came before it (look-ahead: at most the rest of the window, never past it):

1. the detector runs on the window's frames at `stride`, plus the window's last frame (`detection_frames`),
   so every frame lies between two detection frames of its own window;
2. detections are linked into tracks across windows by the same gates as `track_faces` (IoU or centre
   shift, greedy best pairs first); a track ends after `max_missed` detection steps without a match;
3. the main track is sticky: it stays main while it is alive, and when it ends the heaviest live track
   (sum of box sides so far: size x persistence) takes over, so the crop does not flip between people;
4. its boxes are interpolated between its detections (from its last detection before the window, if any)
   and smoothed by a centred moving average whose left half reaches into the previous window and whose
   right edge holds the window's last box (no look-ahead);
5. `face_found` and `face_counts` follow `track_faces`' rules within the window.

Live detection and `detect --causal` both feed windows through this class, so a window scored live gets
the same crops as the same window of the finished file. Memory stays bounded: ended tracks are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avforensics.media.boxes import box_area, box_overlap
from avforensics.media.faces import FaceDetector, FaceTrack, FaceTrackerConfig, Frames, detection_frames

_Hits = dict[int, list[tuple[int, np.ndarray]]]  # track number -> its (stream frame, box) detections


@dataclass
class _LiveTrack:
    """A track's state: its last detection (global frame and step) and its weight so far."""

    number: int
    last_step: int
    last_frame: int
    last_box: np.ndarray
    weight: float


def match_detections(
    last_boxes: np.ndarray, candidates: np.ndarray, config: FaceTrackerConfig
) -> list[tuple[int, int]]:
    """(track, detection) pairs: within the IoU or centre-shift gate, best (IoU - shift) first, greedily."""
    pairs = []
    others = torch.from_numpy(candidates)
    for track_index, box in enumerate(last_boxes):
        last = torch.from_numpy(box)
        overlaps = box_overlap(last, others).tolist()
        side = float(box_area(last[None])[0].clamp(min=1e-9).sqrt())
        centre_shift = ((others[:, :2] + others[:, 2:]) - (last[:2] + last[2:])) / 2
        shifts = (centre_shift.norm(dim=1) / side).tolist()
        for box_index in range(len(candidates)):
            if overlaps[box_index] >= config.link_iou or shifts[box_index] <= config.link_distance:
                pairs.append((overlaps[box_index] - shifts[box_index], track_index, box_index))
    used_tracks, used_boxes, matched = set(), set(), []
    for _, track_index, box_index in sorted(pairs, reverse=True):
        if track_index not in used_tracks and box_index not in used_boxes:
            used_tracks.add(track_index)
            used_boxes.add(box_index)
            matched.append((track_index, box_index))
    return matched


class CausalFaceTracker:
    """Tracks the main face of a stream one window at a time (see the module docstring).

    Call `track(frames)` with consecutive windows; call `skip(n)` for `n` frames of the stream that are not
    tracked (windows not scored), so tracks age as if those frames had been seen without a face.
    """

    def __init__(
        self,
        detector: FaceDetector,
        config: FaceTrackerConfig | None = None,
        source: str | Path | None = None,
    ) -> None:
        self.detector = detector
        self.config = config or FaceTrackerConfig()
        self.name = str(source) if source is not None else "stream"
        self.frame = 0  # stream index of the next frame
        self.step = 0  # index of the next detection step
        self.tracks: list[_LiveTrack] = []
        self.tracks_seen = 0
        self.main: int | None = None  # number of the main track
        self.tail: np.ndarray | None = None  # the previous window's last unsmoothed boxes (left context)

    def skip(self, frames: int) -> None:
        """`frames` frames pass untracked: the detection steps they would have had count as misses."""
        if frames <= 0:
            return
        self.frame += frames
        self.step += -(-frames // self.config.stride)
        self.tail = None
        self._drop_ended()

    def track(self, frames: Frames) -> FaceTrack:
        """Boxes, found flags and face counts for the window `frames` (T, H, W, 3) RGB uint8."""
        config, length = self.config, len(frames)
        if length == 0:
            raise ValueError(f"{self.name}: no frames to track faces in")
        local_steps = detection_frames(length, config.stride)
        found = self.detector.detect([frames[i] for i in local_steps])
        detections = [result.boxes[result.probs >= config.min_prob] for result in found]
        anchors_before = {t.number: (t.last_frame, t.last_box) for t in self.tracks}
        hits: _Hits = {}
        for offset, boxes in zip(local_steps.tolist(), detections, strict=True):
            self._link(boxes.astype(np.float32), self.frame + offset, hits)
        counts = np.array([len(boxes) for boxes in detections], dtype=np.int64)
        previous_step = np.searchsorted(local_steps, np.arange(length), side="right") - 1
        next_step = previous_step + (local_steps[previous_step] != np.arange(length))
        detected = np.zeros(length, dtype=bool)
        detected[local_steps] = True
        self._choose_main()
        track = FaceTrack(
            boxes=np.full((length, 4), np.nan, dtype=np.float32),
            face_found=np.zeros(length, dtype=bool),
            face_counts=counts[previous_step],
            detected=detected,
            track_count=len({n for n, h in hits.items() if h}),
        )
        main_hits = hits.get(self.main, []) if self.main is not None else []
        anchor = anchors_before.get(self.main) if self.main is not None else None
        if self.main is not None and (main_hits or anchor is not None):
            raw = self._interpolate(([anchor] if anchor is not None else []) + main_hits, length)
            track.boxes = self._smooth(raw)
            hit = np.isin(self.frame + local_steps, [frame for frame, _ in main_hits])
            track.face_found = hit[previous_step] & hit[next_step]
        else:
            self.tail = None
        if not track.face_found.any():
            track.warnings.append(f"{self.name}: no face found in this window of {length} frames")
        self.frame += length
        self._drop_ended()
        return track

    def _link(self, boxes: np.ndarray, frame: int, hits: _Hits) -> None:
        """Continue live tracks with this detection step's boxes; unmatched boxes start new tracks."""
        step = self.step
        self.step += 1
        alive = [t for t in self.tracks if step - t.last_step <= self.config.max_missed + 1]
        last_boxes = np.stack([t.last_box for t in alive]) if alive else np.zeros((0, 4), np.float32)
        matched = match_detections(last_boxes, boxes, self.config) if len(boxes) else []
        used = set()
        for track_index, box_index in matched:
            self._extend(alive[track_index], step, frame, boxes[box_index], hits)
            used.add(box_index)
        for box_index in range(len(boxes)):
            if box_index not in used:
                track = _LiveTrack(self.tracks_seen, step, frame, boxes[box_index], 0.0)
                self.tracks_seen += 1
                self.tracks.append(track)
                self._extend(track, step, frame, boxes[box_index], hits)

    @staticmethod
    def _extend(
        track: _LiveTrack, step: int, frame: int, box: np.ndarray, hits: _Hits
    ) -> None:
        track.last_step, track.last_frame, track.last_box = step, frame, box
        track.weight += float(np.sqrt(max(0.0, (box[2] - box[0]) * (box[3] - box[1]))))
        hits.setdefault(track.number, []).append((frame, box))

    def _alive(self) -> list[_LiveTrack]:
        return [t for t in self.tracks if self.step - 1 - t.last_step <= self.config.max_missed]

    def _choose_main(self) -> None:
        alive = self._alive()
        if self.main is not None and any(t.number == self.main for t in alive):
            return
        self.main = max(alive, key=lambda t: t.weight).number if alive else None
        self.tail = None  # a new main face: no left context from another face

    def _drop_ended(self) -> None:
        alive = self._alive()
        if self.main is not None and not any(t.number == self.main for t in alive):
            self.main = None
        self.tracks = alive

    def _interpolate(self, anchors: list[tuple[int, np.ndarray]], length: int) -> np.ndarray:
        """The main track's boxes on the window's frames: linear between anchors, held beyond them."""
        at = np.array([frame for frame, _ in anchors], dtype=np.float64)
        boxes = np.stack([box for _, box in anchors]).astype(np.float64)
        frames = np.arange(self.frame, self.frame + length, dtype=np.float64)
        return np.stack([np.interp(frames, at, boxes[:, k]) for k in range(4)], 1)

    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        """Centred moving average over `smoothing` frames; the left half reaches into the previous window
        (its unsmoothed boxes), the right edge repeats the window's last box. Keeps `tail` for the next."""
        half = self.config.smoothing // 2
        if half == 0:
            self.tail = raw[-1:]
            return raw.astype(np.float32)
        before = self.tail if self.tail is not None else raw[:1]
        before = np.concatenate([np.repeat(before[:1], max(0, half - len(before)), 0), before[-half:]])
        padded = np.concatenate([before, raw, np.repeat(raw[-1:], half, 0)])
        sums = np.cumsum(np.concatenate([np.zeros_like(padded[:1]), padded]), axis=0)
        self.tail = raw[-half:]
        return ((sums[2 * half + 1 :] - sums[: -2 * half - 1]) / (2 * half + 1)).astype(np.float32)
