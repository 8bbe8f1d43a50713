"""Face detection (MTCNN), tracking and cropping on real-photo frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from face_fixtures import (
    ASTRONAUT_FACE_BOX,
    ScriptedDetector,
    astronaut,
    box_iou,
    pan_zoom_cameras,
    two_face_frames,
)

from avforensics.media.boxcrop import crop_resize
from avforensics.media.boxes import nms
from avforensics.media.decode import decode
from avforensics.media.encode import write_video
from avforensics.media.faces import (
    FaceTrack,
    FaceTrackerConfig,
    crop_faces,
    detection_frames,
    extract_faces,
    track_faces,
)
from avforensics.media.mtcnn import MTCNN


@pytest.fixture(scope="module", autouse=True)
def one_intra_op_thread() -> Iterator[None]:
    """Many test processes share two cores here: with one thread per op, torch never spin-waits for a
    descheduled OpenMP worker (measured 10-20x faster under that load; same results)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN()


@pytest.fixture(scope="module")
def video_detector() -> MTCNN:
    """Faces in the test videos are at least 45 px: a 40 px smallest face keeps the pyramid short."""
    return MTCNN(min_face_size=40)


def test_detector_finds_astronaut_face(detector: MTCNN) -> None:
    found = detector.detect(astronaut()[None])[0]
    best = int(np.argmax(found.probs))
    assert found.probs[best] > 0.99
    assert box_iou(found.boxes[best], ASTRONAUT_FACE_BOX) >= 0.7
    x1, y1, x2, y2 = found.boxes[best]
    points = found.landmarks[best]
    assert np.all((points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert found.boxes.dtype == np.float32 and found.landmarks.shape == (len(found), 5, 2)


def test_detector_batch_matches_single_frames(video_detector: MTCNN) -> None:
    image = astronaut()
    flipped = np.ascontiguousarray(image[:, ::-1])
    batch = video_detector.detect(np.stack([image, flipped]))
    single = video_detector.detect([flipped])[0]
    np.testing.assert_allclose(batch[1].boxes, single.boxes, atol=1e-3)
    # The mirrored face is found at the mirrored place.
    best = batch[1].boxes[np.argmax(batch[1].probs)]
    mirrored = np.array([512 - best[2], best[1], 512 - best[0], best[3]])
    assert box_iou(mirrored, ASTRONAUT_FACE_BOX) >= 0.7


def test_detector_rejects_bad_input(detector: MTCNN) -> None:
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((1, 64, 64, 3), dtype=np.float32))
    assert len(detector.detect(np.zeros((1, 10, 10, 3), dtype=np.uint8))[0]) == 0


def _brute_force_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        overlaps = []
        for j in kept:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            union = min(area_i, area_j) if mode == "min" else area_i + area_j - w * h
            overlaps.append(w * h / union)
        if all(value <= threshold for value in overlaps):
            kept.append(i)
    return kept


@pytest.mark.parametrize(("threshold", "mode"), [(0.3, "union"), (0.7, "union"), (0.5, "min")])
def test_nms_equals_brute_force(threshold: float, mode: str) -> None:
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 100, size=(300, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, size=(300, 2))], axis=1)
    scores = rng.uniform(size=300)
    kept = nms(torch.tensor(boxes), torch.tensor(scores), threshold, mode=mode).tolist()
    assert kept == _brute_force_nms(boxes, scores, threshold, mode)
    assert 0 < len(kept) < 300


def test_nms_groups_never_suppress_each_other() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, groups=torch.tensor([0, 1, 1])).tolist() == [0, 1]


# ---------------------------------------------------------------- tracking and cropping
def test_detection_frames_include_the_last_frame() -> None:
    assert detection_frames(11, 5).tolist() == [0, 5, 10]
    assert detection_frames(12, 5).tolist() == [0, 5, 10, 11]
    assert detection_frames(3, 1).tolist() == [0, 1, 2]


def test_pan_zoom_video_is_tracked_and_cropped_on_the_face(tmp_path, video_detector: MTCNN) -> None:
    cameras = pan_zoom_cameras(50)
    image = astronaut()
    rendered = np.stack([camera.render(image) for camera in cameras])
    silence = np.zeros(2 * 16000, dtype=np.float32)
    path = write_video(tmp_path / "pan_zoom.mp4", rendered, fps=25, audio=silence, sample_rate=16000)
    frames = decode(path).frames
    assert frames.shape == (50, 240, 320, 3)
    config = FaceTrackerConfig()
    crops = extract_faces(frames, video_detector, config, source=path)
    assert crops.frames.shape == (50, 224, 224, 3) and crops.frames.dtype == np.uint8
    assert crops.found_ratio >= 0.95 and crops.face_found.mean() >= 0.95 and not crops.no_face
    assert crops.warnings == []
    reference = np.stack([camera.map_box(ASTRONAUT_FACE_BOX) for camera in cameras])
    face_side = reference[:, 2] - reference[:, 0]
    centre_error = np.linalg.norm(
        (crops.boxes[:, :2] + crops.boxes[:, 2:]) / 2 - (reference[:, :2] + reference[:, 2:]) / 2, axis=1
    )
    assert np.all(centre_error <= 0.15 * face_side)
    crop_side = crops.boxes[:, 2] - crops.boxes[:, 0]
    # The face box is about 1.3x as tall as the eye-judged reference is wide, times the 1.3 margin.
    assert np.all((crop_side > 1.4 * face_side) & (crop_side < 2.0 * face_side))
    # End to end: the detector finds one face in the middle of the crops, at a similar size in each.
    for found in video_detector.detect(crops.frames[::12]):
        best = found.boxes[np.argmax(found.probs)]
        assert found.probs.max() > 0.99
        assert np.abs((best[:2] + best[2:]) / 2 - 112).max() < 20
        assert 120 < best[2] - best[0] < 190


def test_main_track_stays_on_the_same_face_with_two_faces(video_detector: MTCNN) -> None:
    frames, big_boxes, small_boxes = two_face_frames(24)
    track = track_faces(frames, video_detector, FaceTrackerConfig(stride=3), source="two.mp4")
    assert track.track_count == 2
    assert track.face_counts.tolist() == [2] * 24
    assert track.face_found.all()
    assert min(box_iou(box, big) for box, big in zip(track.boxes, big_boxes, strict=True)) >= 0.6
    assert max(box_iou(box, small) for box, small in zip(track.boxes, small_boxes, strict=True)) == 0.0
    assert track.warnings == [
        "two.mp4: 2 faces in view at 100% of detection frames; using the largest, most persistent one"
    ]


def _moving_face(frame: int) -> list[float]:
    return [10.0 + frame, 10.0, 50.0 + frame, 50.0]


def test_tracking_prefers_persistent_face_and_flags_missed_detections() -> None:
    # Face A (40 px) moves right in all 20 frames but is missed at frame 8; face B is bigger (50 px) but
    # only in frames 5-15: A wins on size x persistence and is kept throughout. A 0.5-probability box is
    # noise.
    script = []
    for frame in range(20):
        faces = [] if frame == 8 else [(_moving_face(frame), 0.99)]
        if 5 <= frame <= 15:
            faces.append(([60.0, 40.0, 110.0, 90.0], 0.95))
        faces.append(([0.0, 80.0, 15.0, 95.0], 0.5))
        script.append(faces)
    frames = np.zeros((20, 120, 120, 3), dtype=np.uint8)
    track = track_faces(frames, ScriptedDetector(script), FaceTrackerConfig(stride=1, smoothing=1))
    assert track.track_count == 2
    np.testing.assert_allclose(track.boxes, np.array([_moving_face(f) for f in range(20)]), atol=1e-4)
    assert np.flatnonzero(~track.face_found).tolist() == [8]
    assert track.face_counts.tolist() == [1] * 5 + [2] * 3 + [1] + [2] * 7 + [1] * 4
    assert track.found_ratio == pytest.approx(0.95)


def test_stride_interpolates_and_smoothing_removes_jitter() -> None:
    # Detections every 4th frame of a face moving 2 px/frame, with +-3 px jitter on alternate detections.
    script = []
    for step in range(6):
        left = 8.0 * step + (3.0 if step % 2 == 0 else -3.0)
        script.append([([left, 20.0, left + 40, 60.0], 0.99)])
    frames = np.zeros((21, 80, 120, 3), dtype=np.uint8)
    rough = track_faces(frames, ScriptedDetector(script), FaceTrackerConfig(stride=4, smoothing=1))
    smooth = track_faces(frames, ScriptedDetector(script), FaceTrackerConfig(stride=4, smoothing=9))
    truth = 2.0 * np.arange(21)
    assert rough.detected.tolist() == [f % 4 == 0 for f in range(21)]
    assert rough.boxes[2, 0] == pytest.approx((3.0 + 8 - 3) / 2)  # halfway between frames 0 and 4
    inner = slice(4, 17)  # away from the ends, where the padded average is pulled toward the edge value
    rough_error = np.abs(rough.boxes[inner, 0] - truth[inner]).max()
    assert np.abs(smooth.boxes[inner, 0] - truth[inner]).max() < 0.5 * rough_error


@pytest.mark.parametrize("kind", ["noise", "flat"])
def test_no_face_is_flagged_and_policies_apply(kind: str, video_detector: MTCNN) -> None:
    rng = np.random.default_rng(3)
    shape = (6, 120, 160, 3)
    frames = rng.integers(0, 256, shape, dtype=np.uint8) if kind == "noise" else np.full(shape, 90, np.uint8)
    track = track_faces(frames, video_detector, FaceTrackerConfig(stride=2), source="empty.mp4")
    assert track.found_ratio == 0.0 and track.track_count == 0 and np.isnan(track.boxes).all()
    assert track.warnings == ["empty.mp4: no face found in any of 6 frames"]

    centred = crop_faces(frames, track, FaceTrackerConfig(no_face="center"), source="empty.mp4")
    assert centred.no_face and centred.frames.shape == (6, 224, 224, 3) and not centred.face_found.any()
    np.testing.assert_allclose(centred.boxes, np.tile([20.0, 0.0, 140.0, 120.0], (6, 1)))
    assert centred.warnings[-1] == "empty.mp4: no face, centre crops instead (no-face policy 'center')"
    if kind == "flat":
        assert np.all(centred.frames == 90)

    skipped = crop_faces(frames, track, FaceTrackerConfig(no_face="skip"), source="empty.mp4")
    assert skipped.no_face and skipped.frames.shape == (0, 224, 224, 3) and skipped.boxes.shape == (0, 4)
    assert skipped.warnings == [
        "empty.mp4: no face found in any of 6 frames",
        "empty.mp4: no face, no crops (no-face policy 'skip')",
    ]


def test_crop_pads_past_the_border_and_keeps_the_face_centred() -> None:
    frames = np.full((1, 100, 100, 3), 200, dtype=np.uint8)
    track = FaceTrack(
        boxes=np.array([[0.0, 0.0, 40.0, 40.0]], np.float32),
        face_found=np.array([True]),
        face_counts=np.array([1]),
        detected=np.array([True]),
        track_count=1,
    )
    crops = crop_faces(frames, track, FaceTrackerConfig(margin=1.0, size=80))
    np.testing.assert_allclose(crops.boxes, [[-20.0, -20.0, 60.0, 60.0]])
    crop = crops.frames[0]
    assert np.all(crop[:19] == 0) and np.all(crop[:, :19] == 0)  # the part outside the image is black
    assert np.all(crop[21:, 21:] == 200)


def test_invalid_config_and_empty_video_raise() -> None:
    with pytest.raises(ValueError, match="no_face"):
        FaceTrackerConfig(no_face="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride"):
        FaceTrackerConfig(stride=0)
    with pytest.raises(ValueError, match="clip.mp4: no frames"):
        track_faces(np.zeros((0, 10, 10, 3), np.uint8), ScriptedDetector([]), source="clip.mp4")
    with pytest.raises(ValueError, match="clip.mp4: frames must be RGB uint8"):
        track_faces(np.zeros((2, 10, 10), np.uint8), ScriptedDetector([]), source="clip.mp4")


@pytest.mark.parametrize(
    ("box", "size"),
    [((10, 5, 74, 69), 32), ((10, 5, 74, 69), 64), ((10, 5, 138, 69), 16), ((3.5, 5, 13.5, 15), 40)],
)
def test_crop_resize_samples_exact_positions(box: tuple[float, ...], size: int) -> None:
    # On a horizontal ramp (value = x at each pixel centre) every output pixel must read the x of its own
    # centre, whether the box is enlarged, kept or shrunk through one or three mip levels.
    ramp = (torch.arange(161, dtype=torch.float32) + 0.5).expand(3, 100, 161).contiguous()
    crop = crop_resize(ramp, torch.tensor([box]), size)[0]
    expected = box[0] + (torch.arange(size) + 0.5) * (box[2] - box[0]) / size
    np.testing.assert_allclose(crop[1, size // 2].numpy(), expected.numpy(), atol=1e-4)
    assert torch.equal(crop[0], crop[2])


def test_large_frames_are_detected_shrunk_and_boxes_mapped_back() -> None:
    """Frames above `detect_side` reach the detector shrunk; its boxes come back in the frames' pixels."""
    seen: list[tuple[int, ...]] = []

    class Recording(ScriptedDetector):
        def detect(self, images):
            seen.extend(image.shape for image in images)
            return super().detect(images)

    frames = np.zeros((6, 720, 1280, 3), np.uint8)
    box = [80.0, 40.0, 240.0, 200.0]  # in the 640x360 image the detector sees
    track = track_faces(frames, Recording([[(box, 0.99)]] * 2), FaceTrackerConfig(stride=5, smoothing=1))
    assert set(seen) == {(360, 640, 3)}
    np.testing.assert_allclose(track.boxes[0], [160.0, 80.0, 480.0, 400.0], atol=1e-4)
    full = track_faces(frames, Recording([[(box, 0.99)]] * 2), FaceTrackerConfig(stride=5, detect_side=None))
    assert seen[-1] == (720, 1280, 3) and np.allclose(full.boxes[0], box)
