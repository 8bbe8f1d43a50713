"""A small synthetic corpus and its prepared cache, shared by the loader and preparation tests.

Run as a script (`python data_windows_fixtures.py RECORDS.json OUT`), it prepares the records listed in
RECORDS.json into OUT with two workers: the resume test starts it as a process group it can kill.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PrepareOptions, prepare_dataset
from avforensics.data.records import VideoRecord
from avforensics.media.mtcnn import FaceDetections
from avforensics.synth.corpus import generate_corpus

CORPUS_VIDEOS = 4  # one scene in the four categories (RVRA, RVFA, FVRA, FVFA), two partially fake
CORPUS_SEED = 3
#: small crops from frames downscaled to 96 px: the loaders' logic does not depend on the resolution
OPTIONS = PrepareOptions(size=32, stride=4, max_side=96)

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
        generate_corpus(root, CORPUS_VIDEOS, CORPUS_SEED)
        records = get_adapter("synthetic").records(root)
        prepared = root / "prepared"
        prepare_dataset(records, prepared, OPTIONS, dataset="synthetic", detector_factory=CentreFaceDetector)
        _cache["corpus"] = (root, records, prepared)
    return _cache["corpus"]


def write_records(records: list[VideoRecord], path: Path) -> Path:
    path.write_text(json.dumps([record.to_dict() for record in records]), encoding="utf-8")
    return path


def _prepare_listed(records_path: str, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    records = [VideoRecord.from_dict(item) for item in json.loads(Path(records_path).read_text("utf-8"))]
    prepare_dataset(
        records, out, OPTIONS, dataset="synthetic", workers=2, detector_factory=CentreFaceDetector
    )


if __name__ == "__main__":
    _prepare_listed(*sys.argv[1:3])
