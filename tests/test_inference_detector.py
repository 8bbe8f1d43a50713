"""Detector API: a checkpoint saved by `train` scores clips exactly as the in-training evaluation did."""

from __future__ import annotations

import io

import numpy as np
import pytest
from data_windows_fixtures import CentreFaceDetector
from inference_fixtures import talking_video

from avforensics import Detector
from avforensics.media.errors import EmptyFileError


@pytest.fixture(scope="module")
def detector(trained_tiny) -> Detector:  # noqa: F811
    return Detector.from_checkpoint(trained_tiny["checkpoint"], face_detector=CentreFaceDetector())


def test_checkpoint_scores_equal_in_training_evaluation(trained_tiny, detector) -> None:  # noqa: F811
    table = trained_tiny["table"]
    paths = {record.id: record.path for record in trained_tiny["records"]}
    videos = sorted(set(table["video_id"]))
    assert len(videos) >= 2
    for video in videos:
        engine = [p for v, p in sorted(
            (w, p) for vid, w, p in zip(table["video_id"], table["window"], table["p_fake"], strict=True)
            if vid == video
        )]
        report = detector.predict(paths[video])
        assert len(report.segments) == len(engine)
        np.testing.assert_allclose([s.p_fake for s in report.segments], engine, rtol=0, atol=1e-6)
        assert report.p_fake == pytest.approx(float(np.mean(engine)), abs=1e-6)


def test_report_fields_and_stream_input(trained_tiny, detector, tmp_path) -> None:  # noqa: F811
    path = talking_video(tmp_path / "clip.mp4", 1.0)
    report = detector.predict(path)
    assert [(s.start, s.end) for s in report.segments] == [(0.0, 0.32), (0.32, 0.64), (0.64, 0.96)]
    assert report.duration == pytest.approx(0.96)
    assert report.faces_found == 1.0
    assert report.flags == {"no_audio": False, "no_face": False, "no_video": False}
    assert report.calibrated is False and report.threshold == 0.5
    assert report.verdict == ("fake" if report.p_fake >= 0.5 else "real")
    assert report.model.startswith("tiny_av/small@")
    assert any("last 1 frame(s)" in warning for warning in report.warnings)
    with path.open("rb") as handle:
        streamed = detector.predict(io.BytesIO(handle.read()))
    assert streamed.path == "<stream>"
    assert streamed.p_fake == pytest.approx(report.p_fake, abs=1e-7)


def test_no_audio_track_gives_null_audio_probability(detector, tmp_path) -> None:
    report = detector.predict(talking_video(tmp_path / "silent.mp4", 0.7, audio=False))
    assert report.p_audio_fake is None
    assert all(segment.p_audio_fake is None for segment in report.segments)
    assert report.flags["no_audio"] is True
    assert any("no audio track" in warning for warning in report.warnings)


def test_unscorable_inputs_raise_typed_errors(detector, tmp_path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError):
        detector.predict(empty)


def test_chunked_streaming_covers_the_whole_video(trained_tiny, tmp_path) -> None:  # noqa: F811
    chunked = Detector.from_checkpoint(
        trained_tiny["checkpoint"], face_detector=CentreFaceDetector(), chunk_seconds=0.64
    )
    report = chunked.predict(talking_video(tmp_path / "long.mp4", 3.0))
    starts = [segment.start for segment in report.segments]
    assert starts == pytest.approx([0.32 * k for k in range(9)])
