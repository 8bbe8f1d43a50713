"""What `avforensics detect` does with the inputs a first user brings: the verdict's threshold in the table,
audio-only files, leading silence the model was trained without, videos shorter than one window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_fixtures import FPS, SAMPLE_RATE, TinyAVDetector, talking_video

from avforensics.cli import main
from avforensics.experiment.checkpoint import PAYLOAD_KEY
from avforensics.inference.cli import summary_table
from avforensics.inference.detector import Detector
from avforensics.media.decode import decode
from avforensics.media.encode import write_video


def test_the_table_shows_the_threshold_each_verdict_was_decided_by() -> None:
    records = [
        {"input": "in/a.mp4", "status": "ok", "verdict": "real", "p_fake": 0.702, "threshold": 0.81,
         "calibrated": True, "p_video_fake": 0.6, "p_audio_fake": None, "faces_found": 0.97},
        {"input": "in/b.mp4", "status": "ok", "verdict": "fake", "p_fake": 0.702, "threshold": 0.5,
         "calibrated": False, "p_video_fake": 0.65, "p_audio_fake": 0.125, "faces_found": 1.0},
        {"input": "in/c.mp4", "status": "error", "error": "EmptyFileError", "reason": "file is empty"},
    ]
    assert summary_table(records, skipped=1).splitlines() == [
        "verdict  p_fake  threshold           video  audio  faces  file",
        "real     0.702   0.810 calibrated    0.600  -      97%    a.mp4",
        "fake     0.702   0.500 uncalibrated  0.650  0.125  100%   b.mp4",
        "ERROR                                                     c.mp4: EmptyFileError: file is empty",
        "2 scored, 1 failed (1 recorded by an earlier run)",
    ]


def detect(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `avforensics detect` run in this process."""
    capsys.readouterr()
    code = main(["detect", *arguments])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_audio_only_file_is_scored_by_the_audio_head_alone(trained_tiny, tmp_path):
    """tiny_av's audio head reads the audio alone: the file's p_audio_fake is what it is inside a video."""
    decoded = decode(talking_video(tmp_path / "talk.mp4", 1.0))
    video = lossless_clip(tmp_path / "talk.mkv", decoded.frames, decoded.audio)
    voice = write_video(tmp_path / "voice.wav", None, audio=decoded.audio, sample_rate=SAMPLE_RATE,
                        audio_codec="pcm_s16le")
    detector = Detector.from_checkpoint(trained_tiny["checkpoint"])
    report, with_pictures = detector.predict(voice), detector.predict(video)
    assert report.p_video_fake is None and report.p_fake == report.p_audio_fake
    assert report.p_audio_fake == pytest.approx(with_pictures.p_audio_fake, abs=1e-6)
    assert [s.start for s in report.segments] == [s.start for s in with_pictures.segments]
    assert all(s.p_video_fake is None and s.p_fake == s.p_audio_fake for s in report.segments)
    assert report.flags == {"no_audio": False, "no_face": True, "no_video": True}
    assert report.threshold == detector.calibration.head("p_audio_fake").threshold
    assert f"{voice}: no video track; scored from the audio head alone: p_fake is its p_audio_fake, " \
        "p_video_fake is null" in report.warnings


def test_an_audio_only_file_a_model_cannot_score_is_refused_in_command_line_words(
    trained_tiny, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(TinyAVDetector, "audio_head_ignores_video", property(lambda self: False))
    tone = 0.3 * np.sin(np.arange(SAMPLE_RATE) / 5)
    voice = write_video(tmp_path / "voice.m4a", None, audio=tone, sample_rate=SAMPLE_RATE)
    out = tmp_path / "results.jsonl"
    model = str(trained_tiny["checkpoint"])
    code, printed = detect(capsys, str(voice), "--model", model, "--jsonl", str(out))
    assert code == 1
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["status"], record["error"]) == ("error", "NoVideoStreamError")
    assert record["reason"].startswith("no video stream (an audio-only file), and tiny_av/small@")
    assert record["reason"].endswith(
        "cannot score sound alone: it has no audio head, or its audio head also reads the pictures"
    )
    assert f"voice.m4a: NoVideoStreamError: {record['reason']}" in printed
    assert "require_video" not in printed


def lossless_clip(path: Path, frames: np.ndarray, audio: np.ndarray) -> Path:
    """Lossless picture and sound, so a file and its trimmed copy decode to exactly the same samples."""
    return write_video(path, frames, FPS, audio, SAMPLE_RATE, crf=0, audio_codec="pcm_s16le")


def test_a_model_trained_on_trimmed_audio_trims_leading_silence_at_inference(trained_tiny, tmp_path):
    checkpoint = torch.load(trained_tiny["checkpoint"], map_location="cpu", weights_only=True)
    checkpoint[PAYLOAD_KEY]["config"]["data"]["options"]["trim_silence"] = True  # as trained with it
    trimming = tmp_path / "trimmed-training.ckpt"
    torch.save(checkpoint, trimming)
    source = tmp_path / "source.mkv"
    talking_video(source, 2.0)
    decoded = decode(source)
    silence = 10  # frames: 0.4 s of digital silence before the voice starts
    audio = decoded.audio.copy()
    audio[: silence * 640] = 0
    untrimmed = lossless_clip(tmp_path / "untrimmed.mkv", decoded.frames, audio)
    trimmed = lossless_clip(tmp_path / "trimmed.mkv", decoded.frames[silence:], audio[silence * 640 :])

    detector = Detector.from_checkpoint(trimming)
    assert detector.preprocessing.options.trim_silence
    report, reference = detector.predict(untrimmed), detector.predict(trimmed)
    for head in ("p_fake", "p_video_fake", "p_audio_fake"):
        assert getattr(report, head) == pytest.approx(getattr(reference, head), abs=1e-6)
    # The same windows, placed on the untrimmed file's timeline.
    assert [s.start for s in report.segments] == pytest.approx([0.4 + s.start for s in reference.segments])
    assert [s.p_fake for s in report.segments] == pytest.approx([s.p_fake for s in reference.segments])
    assert any("0.40 s of leading silence trimmed before scoring" in note for note in report.warnings)
    # A model trained on untrimmed audio scores the silence, and the file differently.
    plain = Detector.from_checkpoint(trained_tiny["checkpoint"]).predict(untrimmed)
    assert abs(plain.p_audio_fake - report.p_audio_fake) > 1e-3


def test_a_video_shorter_than_one_window_is_padded_and_scored_with_a_warning(trained_tiny, tmp_path):
    """tiny_av reads 8-frame windows; the clip has 5 frames, padded as the training loader pads."""
    short = talking_video(tmp_path / "short.mp4", 0.2)
    report = Detector.from_checkpoint(trained_tiny["checkpoint"]).predict(short)
    assert 0.0 <= report.p_fake <= 1.0 and report.p_audio_fake is not None
    assert [(s.start, s.end) for s in report.segments] == [(0.0, 0.2)]
    assert report.duration == 0.2
    assert (
        f"{short}: 5 frame(s) (0.20 s), shorter than one window of 8 frames; scored as one window padded by "
        "repeating the last frame, with silence, as in training"
    ) in report.warnings
