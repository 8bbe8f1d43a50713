"""The synthetic corpus has no trivial shortcuts, every method is learnable, and MTCNN finds the faces."""

from __future__ import annotations

import numpy as np
import pytest
from synth_fixtures import shared_corpus

from avforensics.media.mtcnn import MTCNN
from avforensics.synth.audit import ORACLES, SHORTCUT_CUES, oracle_aucs, shortcut_aucs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return shared_corpus(tmp_path_factory)


def test_no_trivial_cue_separates_real_from_fake(corpus) -> None:
    root, _, clips = corpus
    aucs = shortcut_aucs(root, clips)
    assert set(aucs) == set(SHORTCUT_CUES)
    for cue, value in aucs.items():
        assert 0.4 <= value <= 0.6, (cue, aucs)


def test_every_method_is_separable_by_its_oracle_statistic(corpus) -> None:
    _, _, clips = corpus
    aucs = oracle_aucs(clips)
    assert set(aucs) == set(ORACLES)
    for method, value in aucs.items():
        assert value > 0.8, (method, aucs)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_mtcnn_finds_the_rendered_face_where_the_manifest_says(corpus) -> None:
    _, _, clips = corpus
    frames = [clip.media.frames[len(clip.media.frames) // 2] for clip in clips]
    truth = [clip.boxes[len(clip.media.frames) // 2] for clip in clips]
    detections = MTCNN().detect(frames)
    found = [bool(len(d)) and d.probs[0] > 0.9 for d in detections]
    assert np.mean(found) >= 0.95
    overlaps = [_iou(d.boxes[0], box) for d, box, ok in zip(detections, truth, found, strict=True) if ok]
    assert min(overlaps) > 0.45 and np.mean(overlaps) > 0.55
