"""One synthetic corpus per test session, shared by the synth tests (generating it is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avforensics.synth.audit import DecodedClip, load_clip
from avforensics.synth.corpus import generate_corpus
from avforensics.synth.manifest import SynthVideo

CORPUS_VIDEOS = 24  # 6 scenes x 4 categories: each video method 3 times, each audio method 6 times
CORPUS_SEED = 11
CORPUS_DURATIONS = (1.6, 2.6)  # short clips keep the session fixture cheap; the real range is 2-5 s

_cache: dict[str, tuple[Path, list[SynthVideo], list[DecodedClip]]] = {}


def shared_corpus(factory: pytest.TempPathFactory) -> tuple[Path, list[SynthVideo], list[DecodedClip]]:
    """(root, manifest rows, decoded clips) of the session corpus, generated on first use."""
    if "corpus" not in _cache:
        root = factory.mktemp("synth_corpus")
        videos = generate_corpus(root, CORPUS_VIDEOS, CORPUS_SEED, workers=2, durations=CORPUS_DURATIONS)
        _cache["corpus"] = (root, videos, [load_clip(root, video) for video in videos])
    return _cache["corpus"]
