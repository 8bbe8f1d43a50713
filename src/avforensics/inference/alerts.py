"""The alert state of a live stream: CLEAR / SUSPICIOUS / ALERT from a smoothed p_fake, with hysteresis.

Window scores are noisy (a 0.16-0.64 s window sees little), so the state follows an exponential moving
average of the calibrated window p_fake over stream time (half-life `half_life` seconds; skipped windows
simply make the step longer). The levels come from the checkpoint's calibration: the validated video
threshold t of the overall head (a video is called fake when its mean window p_fake >= t) is where
SUSPICIOUS starts; ALERT starts halfway from t to 1. A state is left only when the smoothed score falls
`hysteresis` below the level that entered it, so a score hovering at a level does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avforensics.inference.calibration import Calibration

State = Literal["CLEAR", "SUSPICIOUS", "ALERT"]
STATES: tuple[State, ...] = ("CLEAR", "SUSPICIOUS", "ALERT")


@dataclass(frozen=True)
class AlertPolicy:
    """suspicious, alert: smoothed p_fake entering those states; hysteresis: how far below a level the
    score must fall to leave it; half_life: seconds of stream time for the moving average to halve."""

    suspicious: float
    alert: float
    hysteresis: float = 0.05
    half_life: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.suspicious <= self.alert <= 1:
            raise ValueError(f"need 0 < suspicious <= alert <= 1, got {self.suspicious}, {self.alert}")
        if self.hysteresis < 0 or self.half_life < 0:
            raise ValueError(f"hysteresis and half_life must be >= 0: {self}")

    @classmethod
    def from_calibration(cls, calibration: Calibration, **options: float) -> AlertPolicy:
        threshold = calibration.head("p_fake").threshold
        threshold = min(max(threshold, 1e-6), 1.0)
        return cls(threshold, (threshold + 1.0) / 2, **options)

    def to_dict(self) -> dict[str, float]:
        return {"suspicious": self.suspicious, "alert": self.alert, "hysteresis": self.hysteresis,
                "half_life_s": self.half_life}


class AlertTracker:
    """Feeds window scores in stream order; `update` returns the smoothed score and the state after it."""

    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy
        self.state: State = "CLEAR"
        self.smoothed: float | None = None
        self._last_end: float | None = None

    def update(self, p_fake: float, end_time: float) -> tuple[float, State]:
        """Add the score of the window ending at `end_time` (stream seconds)."""
        policy = self.policy
        if self.smoothed is None or policy.half_life == 0:
            self.smoothed = p_fake
        else:
            elapsed = max(0.0, end_time - (self._last_end or 0.0))
            keep = 0.5 ** (elapsed / policy.half_life)
            self.smoothed = keep * self.smoothed + (1 - keep) * p_fake
        self._last_end = end_time
        self.state = self._next_state(self.smoothed)
        return self.smoothed, self.state

    def _next_state(self, score: float) -> State:
        policy = self.policy
        if score >= policy.alert:
            return "ALERT"
        if self.state == "ALERT" and score >= policy.alert - policy.hysteresis:
            return "ALERT"
        if score >= policy.suspicious:
            return "SUSPICIOUS"
        if self.state != "CLEAR" and score >= policy.suspicious - policy.hysteresis:
            return "SUSPICIOUS"
        return "CLEAR"
