"""The live alert state machine, driven by scripted window scores."""

from __future__ import annotations

import pytest

from avforensics.inference.alerts import AlertPolicy, AlertTracker
from avforensics.inference.calibration import Calibration, HeadCalibration


def run(policy: AlertPolicy, scores: list[float], step: float = 0.5) -> list[tuple[float, str]]:
    tracker = AlertTracker(policy)
    return [tracker.update(score, step * (k + 1)) for k, score in enumerate(scores)]


def test_levels_come_from_the_calibrated_threshold() -> None:
    calibration = Calibration({"p_fake": HeadCalibration(1.3, 0.4)})
    policy = AlertPolicy.from_calibration(calibration, hysteresis=0.1)
    assert (policy.suspicious, policy.alert, policy.hysteresis) == (0.4, 0.7, 0.1)
    assert AlertPolicy.from_calibration(Calibration()).suspicious == 0.5  # uncalibrated: 0.5


def test_states_rise_and_fall_with_hysteresis() -> None:
    policy = AlertPolicy(0.5, 0.75, hysteresis=0.05, half_life=0)  # no smoothing: states follow the scores
    scores = [0.1, 0.52, 0.48, 0.44, 0.8, 0.72, 0.69, 0.5, 0.46, 0.449, 0.9]
    states = [state for _, state in run(policy, scores)]
    assert states == ["CLEAR", "SUSPICIOUS", "SUSPICIOUS", "CLEAR", "ALERT", "ALERT", "SUSPICIOUS",
                      "SUSPICIOUS", "SUSPICIOUS", "CLEAR", "ALERT"]


def test_smoothing_halves_over_the_half_life_in_stream_time() -> None:
    policy = AlertPolicy(0.5, 0.75, half_life=2.0)
    tracker = AlertTracker(policy)
    assert tracker.update(0.0, 0.5) == (0.0, "CLEAR")
    smoothed, _ = tracker.update(1.0, 2.5)  # 2 s later: half of the way to the new score
    assert smoothed == pytest.approx(0.5)
    smoothed, _ = tracker.update(1.0, 6.5)  # 4 s later (e.g. skipped windows): three quarters of the rest
    assert smoothed == pytest.approx(0.875)


def test_a_single_fake_window_does_not_raise_an_alert_but_a_fake_half_does() -> None:
    policy = AlertPolicy(0.5, 0.75, half_life=2.0)
    blip = run(policy, [0.1] * 10 + [0.99] + [0.1] * 10, step=0.32)
    assert {state for _, state in blip} == {"CLEAR"}
    fake_second_half = run(policy, [0.1] * 20 + [0.95] * 20, step=0.32)
    states = [state for _, state in fake_second_half]
    assert states[:20] == ["CLEAR"] * 20
    first_suspicious, first_alert = states.index("SUSPICIOUS"), states.index("ALERT")
    assert 20 < first_suspicious < first_alert < 40 and states[-1] == "ALERT"


def test_bad_levels_are_rejected() -> None:
    with pytest.raises(ValueError, match="suspicious <= alert"):
        AlertPolicy(0.8, 0.6)
