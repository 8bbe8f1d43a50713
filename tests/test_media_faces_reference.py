"""Speed work on the face pipeline must not move the faces: crop squares and face-found flags on a
talking-head shot stay where the pipeline put them before that work (reference saved from commit 41286f2,
the state before the speed-ups of issue 23)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from face_fixtures import talking_head_frames

from avforensics.media.faces import FaceTrackerConfig, crop_faces, track_faces
from avforensics.media.mtcnn import MTCNN

REFERENCE = Path(__file__).with_name("talking_head_faces_reference.npz")
TOLERANCE_PX = 4.0


def test_crop_squares_and_face_flags_match_the_reference(one_thread: None) -> None:
    frames = talking_head_frames()
    config = FaceTrackerConfig()
    with torch.inference_mode():
        track = track_faces(frames, MTCNN(), config)
    crops = crop_faces(frames, track, config)
    reference = np.load(REFERENCE)
    assert np.array_equal(crops.face_found, reference["face_found"])
    assert crops.found_ratio == 1.0
    assert np.abs(crops.boxes - reference["squares"]).max() <= TOLERANCE_PX
    # The crop still shows the face: bright skin in the middle of the crop, not the dark background.
    assert crops.frames[:, 80:144, 80:144].mean() > 100
