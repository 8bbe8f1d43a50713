"""Face detection (MTCNN), tracking and cropping on real-photo frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from face_fixtures import ASTRONAUT_FACE_BOX, astronaut, box_iou

from avforensics.media.mtcnn import MTCNN, nms


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN()


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


def test_detector_batch_matches_single_frames(detector: MTCNN) -> None:
    image = astronaut()
    flipped = np.ascontiguousarray(image[:, ::-1])
    batch = detector.detect(np.stack([image, flipped]))
    single = detector.detect([flipped])[0]
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
