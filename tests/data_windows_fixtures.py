"""A small synthetic corpus and its prepared cache, shared by the loader and preparation tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PrepareOptions, prepare_dataset
from avforensics.data.records import VideoRecord
from avforensics.media.mtcnn import FaceDetections
from avforensics.synth.corpus import generate_corpus

CORPUS_VIDEOS = 4  # one scene in the four categories (RVRA, RVFA, FVRA, FVFA), two partially fake
CORPUS_SEED = 3
CORPUS_DURATIONS = (1.6, 2.4)  # seconds: 2 to 3 windows of 16 frames per video, quick to prepare
#: small crops from frames downscaled to 96 px (the loaders' logic does not depend on the resolution), stored
#: exactly so windows from the cache equal windows decoded on the fly
OPTIONS = PrepareOptions(size=32, stride=4, max_side=96, encoding="exact")

_cache: dict[str, tuple[Path, list[VideoRecord], Path]] = {}


class CentreFaceDetector:
    """A stand-in for MTCNN (whose cost would dominate the tests): one confident face in the middle."""

    def detect(self, images):
        detections = []
        for image in images:
            height, width = image.shape[:2]
            box = np.array([[width * 0.3, height * 0.25, width * 0.7, height * 0.75]], np.float32)
            landmarks = np.zeros((1, 5, 2), np.float32)
            detections.append(FaceDetections(box, np.array([0.99], np.float32), landmarks))
        return detections


def synthetic_corpus(factory: pytest.TempPathFactory) -> tuple[Path, list[VideoRecord], Path]:
    """(corpus root, its records, its prepared cache) for the session, made on first use."""
    if "corpus" not in _cache:
        root = factory.mktemp("windows_corpus")
        generate_corpus(root, CORPUS_VIDEOS, CORPUS_SEED, durations=CORPUS_DURATIONS)
        records = get_adapter("synthetic").records(root)
        prepared = root / "prepared"
        prepare_dataset(records, prepared, OPTIONS, dataset="synthetic", detector_factory=CentreFaceDetector)
        _cache["corpus"] = (root, records, prepared)
    return _cache["corpus"]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tests share two cores with other jobs, and forked processes must not inherit a busy OpenMP pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
