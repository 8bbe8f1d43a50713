"""Calibration: temperature and threshold fitted on validation data, stored in the checkpoint, used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_windows_fixtures import CentreFaceDetector

from avforensics import Detector
from avforensics.cli import main
from avforensics.inference.calibration import CalibrationError, fit_calibration, fit_temperature
from avforensics.inference.preprocessing import VideoChunks


def test_temperature_recovers_the_scale_of_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    assert fit_temperature(3.0 * true_logits, labels) == pytest.approx(3.0, rel=0.08)
    assert fit_temperature(0.5 * true_logits, labels) == pytest.approx(0.5, rel=0.08)
    with pytest.raises(CalibrationError, match="both classes"):
        fit_temperature(true_logits, np.ones(20000, int))


def test_calibration_per_head_threshold_on_video_scores() -> None:
    # Two videos per class; fakes score higher, so any threshold between the classes separates them.
    ids = ["r1", "r1", "r2", "f1", "f1", "f2"]
    logits = {"p_fake": np.array([-2.0, -1.0, -1.5, 1.0, 2.0, 0.5]), "p_audio_fake": np.zeros(6)}
    labels = {"p_fake": np.array([0, 0, 0, 1, 1, 1]), "p_audio_fake": np.full(6, -1)}
    calibration = fit_calibration(ids, logits, labels)
    assert set(calibration.heads) == {"p_fake"}  # the audio head has no labels: left uncalibrated
    head = calibration.head("p_fake")
    window_p = 1 / (1 + np.exp(-logits["p_fake"] / head.temperature))
    video = {v: np.mean([p for i, p in zip(ids, window_p, strict=True) if i == v]) for v in set(ids)}
    assert max(video["r1"], video["r2"]) < head.threshold <= min(video["f1"], video["f2"])
    assert calibration.fitted_on["p_fake"] == {"windows": 6, "videos": 4}
    assert calibration.head("p_audio_fake").temperature == 1.0


def test_calibrated_checkpoint_drives_predict(trained_tiny, tmp_path, capsys) -> None:  # noqa: F811
    out = tmp_path / "calibrated.ckpt"
    assert main(["calibrate", str(trained_tiny["checkpoint"]), "--out", str(out)]) == 0
    assert "p_fake: temperature" in capsys.readouterr().out
    plain = Detector.from_checkpoint(trained_tiny["checkpoint"], face_detector=CentreFaceDetector())
    calibrated = Detector.from_checkpoint(out, face_detector=CentreFaceDetector())
    head = calibrated.calibration.head("p_fake")
    assert calibrated.calibration.calibrated and head.temperature != 1.0
    assert calibrated.preprocessing == plain.preprocessing
    video = trained_tiny["records"][0].path
    report = calibrated.predict(video)
    chunks = VideoChunks(video, plain.preprocessing, CentreFaceDetector())
    windows = [window for chunk in chunks for window in chunk.windows]
    logits = plain.window_logits(windows)["p_fake"]
    expected = torch.sigmoid(logits / head.temperature)
    np.testing.assert_allclose([s.p_fake for s in report.segments], expected.numpy(), atol=1e-6)
    assert report.calibrated and report.threshold == head.threshold
    assert report.verdict == ("fake" if report.p_fake >= head.threshold else "real")
