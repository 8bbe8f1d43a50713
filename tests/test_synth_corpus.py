"""The synthetic corpus: playable files that match their manifest, balanced labels, determinism."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from synth_fixtures import CORPUS_DURATIONS, CORPUS_SEED, CORPUS_VIDEOS, shared_corpus

from avforensics.cli import main
from avforensics.data.adapters.synthetic import SyntheticAdapter
from avforensics.media.decode import probe
from avforensics.synth.audit import FACE_REGION, MOUTH_REGION, face_region
from avforensics.synth.corpus import generate_corpus, summarise
from avforensics.synth.manifest import MANIFEST_CSV, MANIFEST_JSON, read_manifest
from avforensics.synth.plan import AUDIO_METHODS, CATEGORIES, VIDEO_METHODS, plan_corpus
from avforensics.synth.render import compose_clip

_CATEGORY_LABELS = {"RVRA": (0, 0), "RVFA": (0, 1), "FVRA": (1, 0), "FVFA": (1, 1)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return shared_corpus(tmp_path_factory)


def test_every_file_decodes_with_the_declared_properties(corpus) -> None:
    root, videos, clips = corpus
    assert len(videos) == CORPUS_VIDEOS == len(list((root / "videos").glob("*.mp4")))
    for video, clip in zip(videos, clips, strict=True):
        info = probe(root / video.path)
        assert (info.width, info.height) == (video.width, video.height)
        assert info.fps == pytest.approx(video.fps, abs=0.01)
        assert (info.sample_rate, info.channels) == (video.sample_rate, video.channels)
        assert len(clip.media.frames) == pytest.approx(video.duration * 25, abs=1)
        assert clip.media.audio_present and np.abs(clip.media.audio).max() > 0.01
    assert {v.fps for v in videos} >= {25} and len({(v.sample_rate, v.channels) for v in videos}) == 2


def test_labels_categories_methods_and_periods_agree(corpus) -> None:
    _, videos, _ = corpus
    counts = Counter(v.category for v in videos)
    assert set(counts) == set(CATEGORIES) and max(counts.values()) - min(counts.values()) <= 1
    methods = Counter(m for v in videos for m in v.methods.split("+"))
    assert set(methods) == {*VIDEO_METHODS, *AUDIO_METHODS, "real"}
    for video in videos:
        assert (video.video_label, video.audio_label) == _CATEGORY_LABELS[video.category]
        assert video.label == max(video.video_label, video.audio_label)
        has_video_method = any(m in VIDEO_METHODS for m in video.methods.split("+"))
        has_audio_method = any(m in AUDIO_METHODS for m in video.methods.split("+"))
        assert (has_video_method, has_audio_method) == (bool(video.video_label), bool(video.audio_label))
        if video.label == 0:
            assert video.fake_periods == [] and video.methods == "real" and video.donor == ""
        else:
            assert video.fake_periods, video
            for start, end in video.fake_periods:
                assert 0.0 <= start < end <= video.duration
        assert video.donor != video.identity
        assert len(video.face_boxes) == int(np.ceil(video.n_frames / video.fps))
        for x1, y1, x2, y2 in video.face_boxes:
            assert 0 <= x1 < x2 <= video.width and 0 <= y1 < y2 <= video.height
    assert any(v.fake_periods and v.fake_periods != [[0.0, v.duration]] for v in videos)  # partial fakes
    # one person per scene (its four renders), and no donor ever appears as a source
    sources = Counter(video.identity for video in videos)
    assert len(sources) == CORPUS_VIDEOS // 4 and set(sources.values()) == {4}
    assert not set(sources) & {video.donor for video in videos}


def _inside_and_outside(times: np.ndarray, periods: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Masks well inside the fake periods, and well away from them (margins absorb smoothing and fades)."""
    inside, outside = np.zeros(len(times), bool), np.ones(len(times), bool)
    for start, end in periods:
        inside |= (times >= start + 0.1) & (times < end - 0.1)
        outside &= (times < start - 0.2) | (times >= end + 0.2)
    return inside, outside


def test_partial_fakes_differ_from_their_source_only_inside_the_fake_periods(corpus) -> None:
    _, videos, clips = corpus
    sources = {(v.identity, v.duration, v.fps): c for v, c in zip(videos, clips, strict=True) if v.label == 0}
    checked = Counter()
    for video, clip in zip(videos, clips, strict=True):
        if video.label == 0 or video.fake_periods == [[0.0, video.duration]]:
            continue
        real = sources[(video.identity, video.duration, video.fps)]
        if video.video_label:
            # Compare the manipulated region only: H.264 drift spreads small differences over the frame.
            region = MOUTH_REGION if "lipsync" in video.methods else FACE_REGION
            difference = np.array(
                [
                    np.abs(
                        face_region(a.astype(float), box, region) - face_region(b.astype(float), box, region)
                    ).mean()
                    for a, b, box in zip(clip.media.frames, real.media.frames, clip.boxes, strict=True)
                ]
            )
            inside, outside = _inside_and_outside(np.arange(len(difference)) / 25, video.fake_periods)
            assert difference[inside].mean() > 2 * difference[outside].mean(), video
            checked["video"] += 1
        if video.audio_label:
            difference = np.abs(clip.media.audio - real.media.audio).reshape(-1, 640).mean(axis=1)
            inside, outside = _inside_and_outside(np.arange(len(difference)) / 25, video.fake_periods)
            assert difference[inside].mean() > 5 * difference[outside].mean(), video
            checked["audio"] += 1
    assert checked["video"] >= 1 and checked["audio"] >= 1


def test_manifest_reads_back_and_loads_as_a_dataset(corpus) -> None:
    root, videos, _ = corpus
    assert read_manifest(root) == videos
    records = SyntheticAdapter().records(root)
    assert sorted((Path(r.path).name, r.label, r.category) for r in records) == sorted(
        (Path(v.path).name, v.label, v.category) for v in videos
    )
    assert json.loads((root / MANIFEST_JSON).read_text())[0]["path"] == videos[0].path
    summary = summarise(videos).splitlines()
    assert summary[0].startswith(f"{CORPUS_VIDEOS} videos, ") and summary[0].endswith("4 partially fake")
    assert summary[1] == "categories: FVFA 6, FVRA 6, RVFA 6, RVRA 6"


def test_same_seed_gives_identical_manifest_and_media(corpus, tmp_path) -> None:
    root, videos, _ = corpus
    # A shorter plan with the same seed is a prefix of the longer one; rendered here in this process,
    # it must reproduce the session corpus (rendered by two worker processes) byte for byte.
    again = generate_corpus(tmp_path / "again", 3, seed=CORPUS_SEED, workers=1, durations=CORPUS_DURATIONS)
    assert again == videos[:3]
    planned = plan_corpus(3, CORPUS_SEED, 0.5, CORPUS_DURATIONS)
    for video, spec in zip(again, planned, strict=True):
        assert (tmp_path / "again" / video.path).read_bytes() == (root / video.path).read_bytes()
        first, second = compose_clip(spec, CORPUS_SEED), compose_clip(spec, CORPUS_SEED)
        assert first.video == video and np.array_equal(first.audio, second.audio)
        assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames, strict=True))
    other = plan_corpus(3, seed=CORPUS_SEED + 1, difficulty=0.5, durations=CORPUS_DURATIONS)
    assert [c.scene for c in other] != [c.scene for c in plan_corpus(3, CORPUS_SEED, 0.5, CORPUS_DURATIONS)]
    with pytest.warns(UserWarning, match="1 .mp4 files of an earlier run"):
        generate_corpus(tmp_path / "again", 2, seed=CORPUS_SEED, workers=1, durations=CORPUS_DURATIONS)
    assert read_manifest(tmp_path / "again") == videos[:2]


@pytest.mark.parametrize(("n_videos", "difficulty"), [(0, 0.5), (4, 1.5), (4, -0.1)])
def test_plan_rejects_bad_arguments(n_videos: int, difficulty: float) -> None:
    with pytest.raises(ValueError, match="difficulty|at least one"):
        plan_corpus(n_videos, seed=0, difficulty=difficulty)


def test_command_line_writes_a_corpus_and_reports_it(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["synth", str(out), "--videos", "1", "--seed", "3", "--durations", "1.2", "1.4", "--workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 videos, ") and f"manifest {out / MANIFEST_CSV}" in printed
    assert [v.path for v in read_manifest(out)] == ["videos/000000.mp4"]
    with pytest.raises(SystemExit, match="difficulty must be in"):
        main(["synth", str(out), "--videos", "2", "--difficulty", "2"])
