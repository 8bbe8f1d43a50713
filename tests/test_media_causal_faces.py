"""Causal face tracking: boxes from the past and the window only, sticky main face, bounded state."""

from __future__ import annotations

import numpy as np

from avforensics.media.causal_faces import CausalFaceTracker
from avforensics.media.faces import FaceTrackerConfig
from avforensics.media.mtcnn import FaceDetections

SIZE, WINDOW = 96, 16


class SquareDetector:
    """Finds pure red and pure green squares (two "faces") by colour; records how many images it saw."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, images):
        results = []
        for image in images:
            self.calls += 1
            boxes = []
            for channel in (0, 1):
                mask = (image[..., channel] > 200) & (image[..., 2] < 50) & (image[..., 1 - channel] < 50)
                if mask.any():
                    ys, xs = np.nonzero(mask)
                    boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            boxes = np.array(boxes, np.float32).reshape(-1, 4)
            results.append(FaceDetections(boxes, np.full(len(boxes), 0.99, np.float32),
                                          np.zeros((len(boxes), 5, 2), np.float32)))
        return results


def frames_with(squares_per_frame: list[list[tuple[int, int, int, int]]]) -> np.ndarray:
    """Frames with a red square (first) and a green square (second) at (x, y, side, channel)."""
    frames = np.full((len(squares_per_frame), SIZE, SIZE, 3), 30, np.uint8)
    for frame, squares in zip(frames, squares_per_frame, strict=True):
        for x, y, side, channel in squares:
            frame[y : y + side, x : x + side] = 0
            frame[y : y + side, x : x + side, channel] = 255
    return frames


def moving(count: int, start: int = 10, speed: float = 0.5, side: int = 24) -> list[list[tuple]]:
    return [[(int(start + speed * k), 30, side, 0)] for k in range(count)]


def track_windows(tracker: CausalFaceTracker, frames: np.ndarray) -> list:
    return [tracker.track(frames[k : k + WINDOW]) for k in range(0, len(frames), WINDOW)]


def test_boxes_do_not_depend_on_later_frames() -> None:
    steady = frames_with(moving(64))
    changed = steady.copy()
    changed[40:] = frames_with([[(60, 50, 30, 0)]] * 24)  # the face jumps in the third window
    first = track_windows(CausalFaceTracker(SquareDetector(), FaceTrackerConfig()), steady)
    second = track_windows(CausalFaceTracker(SquareDetector(), FaceTrackerConfig()), changed)
    for window in (0, 1):
        np.testing.assert_array_equal(first[window].boxes, second[window].boxes)
        np.testing.assert_array_equal(first[window].face_found, second[window].face_found)
    assert not np.array_equal(first[2].boxes, second[2].boxes)


def test_moving_face_is_followed_without_lag_beyond_the_smoothing() -> None:
    tracks = track_windows(CausalFaceTracker(SquareDetector(), FaceTrackerConfig()), frames_with(moving(64)))
    boxes = np.concatenate([t.boxes for t in tracks])
    truth_x0 = 10 + 0.5 * np.arange(64)
    # interior frames: interpolation between detections is exact up to the integer square positions
    assert np.abs(boxes[:, 0] - truth_x0).max() <= 2.0
    assert all(t.face_found.all() for t in tracks)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 24, atol=1.0)


def test_detector_runs_at_the_stride_plus_each_window_end() -> None:
    detector = SquareDetector()
    tracker = CausalFaceTracker(detector, FaceTrackerConfig(stride=5))
    tracks = track_windows(tracker, frames_with(moving(48)))
    assert detector.calls == 3 * 4  # frames 0, 5, 10, 15 of each 16-frame window
    assert [np.flatnonzero(t.detected).tolist() for t in tracks] == [[0, 5, 10, 15]] * 3


def test_main_face_is_sticky_until_it_leaves() -> None:
    small_red = (10, 10, 16, 0)
    big_green = (50, 40, 40, 1)
    script = [[small_red]] * 32 + [[small_red, big_green]] * 32 + [[big_green]] * 64
    tracker = CausalFaceTracker(SquareDetector(), FaceTrackerConfig(max_missed=2))
    tracks = track_windows(tracker, frames_with(script))
    widths = [float(np.median(t.boxes[:, 2] - t.boxes[:, 0])) for t in tracks]
    assert widths[:4] == [16.0] * 4  # the bigger face appearing does not take the crop
    assert widths[-2:] == [40.0, 40.0]  # once the first face is gone, the other one is followed
    assert tracks[3].face_counts.max() == 2


def test_skipped_frames_age_tracks_and_state_stays_bounded() -> None:
    tracker = CausalFaceTracker(SquareDetector(), FaceTrackerConfig(max_missed=2))
    rng = np.random.default_rng(0)
    for _ in range(40):  # a face at a new place in every window: each one a new track
        x, y = rng.integers(0, SIZE - 20, 2)
        tracker.track(frames_with([[(int(x), int(y), 16, 0)]] * WINDOW))
        assert len(tracker.tracks) <= 4
    before = tracker.main
    tracker.skip(5 * WINDOW)
    assert tracker.main is None and tracker.tracks == []
    track = tracker.track(frames_with(moving(WINDOW)))
    assert track.face_found.all() and tracker.main != before
