"""What `avforensics detect` does with the inputs a first user brings: the verdict's threshold in the table,
audio-only files, leading silence the model was trained without, videos shorter than one window."""

from __future__ import annotations

from avforensics.inference.cli import summary_table


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
