"""Live detection: score a stream as it arrives; one JSON event per scored window, alerts, a closing summary.

    from avforensics.media.live import parse_source, chunk_source
    summary = run_live(detector, parse_source("udp://127.0.0.1:5000"), emit=print)
    summary = run_live(detector, chunk_source(websocket_chunks()), emit=send)   # bytes from any feeder

Two threads. A reader decodes the source into windows (media.live.live_windows) and puts them in a small
inbox; it never waits for scoring, so a network socket or a pipe is drained at the stream's pace. The
scorer (the calling thread) takes windows in order and scores each the causal way (inference/causal.py,
the same code as `detect --causal`), so a live window's scores equal the finished file's causal scores.
When scoring falls behind, i.e. the windows already waiting behind a window would take longer than
`max_delay` (two windows) to score at the recent scoring speed, that window is skipped. This spaces the
scored windows evenly at the rate scoring manages, tolerates bursts a fast scorer can absorb (network and
muxer buffering deliver windows in bunches), and a "skipped" event says which windows were passed over;
the inbox is bounded too, so nothing builds up. Events are emitted from the scorer thread, in stream order.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from avforensics.inference.alerts import AlertPolicy, AlertTracker
from avforensics.inference.causal import CausalWindows, check_window_stride
from avforensics.inference.detector import Detector
from avforensics.media.decode import AVWindow
from avforensics.media.live import LiveSource, SourceNote, live_windows

Emit = Callable[[dict[str, Any]], None]


@dataclass
class LiveOptions:
    """window_stride: frames from one scored window's start to the next (default: consecutive windows).
    stall_seconds: no new window for this long is reported as a stall. reconnects: reopen attempts in a
    row for network and device sources. max_delay: seconds the windows waiting behind a window may take to
    score before that window is skipped (default: two windows). inbox: windows held at most (the oldest is
    dropped beyond it). alert: levels (default: from the checkpoint's calibration)."""

    window_stride: int | None = None
    stall_seconds: float = 5.0
    reconnects: int = 3
    retry_delay: float = 1.0
    max_delay: float | None = None
    inbox: int = 16
    alert: AlertPolicy | None = None


@dataclass
class _Arrival:
    item: AVWindow | SourceNote
    ready: float  # monotonic time the reader had it


class _Inbox:
    """What the reader hands to the scorer: windows (at most `capacity`, oldest dropped) and notes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[_Arrival] = deque()
        self.dropped: list[AVWindow] = []  # windows pushed out of a full inbox, reported as skipped
        self.condition = threading.Condition()
        self.closed = False

    def put(self, item: AVWindow | SourceNote) -> None:
        with self.condition:
            self.items.append(_Arrival(item, time.monotonic()))
            windows = [a for a in self.items if isinstance(a.item, AVWindow)]
            if len(windows) > self.capacity:
                self.items.remove(windows[0])
                self.dropped.append(windows[0].item)
            self.condition.notify()

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify()

    def take(self, timeout: float) -> tuple[_Arrival | None, int, list[AVWindow]]:
        """(next arrival or None after `timeout`, windows waiting behind it, windows dropped meanwhile)."""
        with self.condition:
            if not self.items and not self.closed:
                self.condition.wait(timeout)
            dropped, self.dropped = self.dropped, []
            if not self.items:
                return None, 0, dropped
            arrival = self.items.popleft()
            waiting = sum(isinstance(a.item, AVWindow) for a in self.items)
            return arrival, waiting, dropped


@dataclass
class _Summary:
    """Running totals for the end-of-stream record."""

    scored: int = 0
    skipped: int = 0
    stalls: int = 0
    reconnects: int = 0
    stream_end: float = 0.0
    scoring_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    max_smoothed: float = 0.0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    faces: float = 0.0


def run_live(detector: Detector, source: LiveSource, emit: Emit, options: LiveOptions | None = None) -> dict:
    """Score `source` until it ends; `emit` gets every event as a dict; returns the summary record (also
    emitted last). A KeyboardInterrupt ends the run with a summary whose reason is "interrupted"."""
    return _LiveRun(detector, source, emit, options or LiveOptions()).run()


class _LiveRun:
    def __init__(self, detector: Detector, source: LiveSource, emit: Emit, options: LiveOptions) -> None:
        self.detector, self.source, self.emit, self.options = detector, source, emit, options
        prep = detector.preprocessing
        self.fps, self.window = prep.options.fps, prep.clip_frames
        self.stride = check_window_stride(options.window_stride, self.window)
        self.policy = options.alert or AlertPolicy.from_calibration(detector.calibration)
        self.alerts = AlertTracker(self.policy)
        self.causal = CausalWindows(prep, detector.face_detector, source.name)
        self.inbox = _Inbox(options.inbox)
        self.summary = _Summary()
        self.behind: list[AVWindow] = []  # windows skipped since the last scored one, not yet reported
        self.max_delay = options.max_delay if options.max_delay is not None else 2 * self.window / self.fps
        self.scoring_estimate = 0.0  # moving average of the seconds scoring one window takes
        self.started = time.monotonic()

    def run(self) -> dict:
        reader = threading.Thread(target=self._read, name="live-reader", daemon=True)
        self._event("start", source=self.source.name, model=self.detector.model_id,
                    calibrated=self.detector.calibration.calibrated, window_s=self.window / self.fps,
                    window_stride_s=self.stride / self.fps, alert_levels=self.policy.to_dict())
        reader.start()
        reason = "end of stream"
        stalled_since: float | None = None
        try:
            while True:
                arrival, waiting, dropped = self.inbox.take(self.options.stall_seconds)
                self.behind.extend(dropped)
                if arrival is None:
                    if self.inbox.closed:
                        reason = "error: the reader stopped without an end of stream"
                        break
                    if stalled_since is None and reader.is_alive():
                        stalled_since = time.monotonic() - self.options.stall_seconds
                        self.summary.stalls += 1
                        self._event("stall", stream_time=self.summary.stream_end,
                                    message=f"no new data for {self.options.stall_seconds:g} s")
                    continue
                if stalled_since is not None:
                    self._event("resumed", stream_time=self.summary.stream_end,
                                stalled_s=round(time.monotonic() - stalled_since, 3))
                    stalled_since = None
                item = arrival.item
                if isinstance(item, SourceNote):
                    self._report_skipped()
                    if item.kind == "ended":
                        reason = item.message
                        break
                    self._note(item)
                elif waiting * self.scoring_estimate > self.max_delay:
                    self.behind.append(item)
                else:
                    self._report_skipped()
                    self._score(item, arrival.ready)
        except KeyboardInterrupt:
            reason = "interrupted"
        self._report_skipped()
        return self._finish(reason)

    def _read(self) -> None:
        """The reader thread: decode the source into the inbox until it ends (the last item is "ended")."""
        options = self.detector.preprocessing.options
        try:
            for item in live_windows(self.source, self.window, self.stride, options.fps, options.sample_rate,
                                     options.max_side, reconnects=self.options.reconnects,
                                     retry_delay=self.options.retry_delay):
                self.inbox.put(item)
        except Exception as error:  # anything the decoder raises ends the stream with a reason, not a hang
            self.inbox.put(SourceNote("ended", f"error: {type(error).__name__}: {error}",
                                      self.summary.stream_end))
        finally:
            self.inbox.close()

    def _score(self, window: AVWindow, ready: float) -> None:
        tick = time.monotonic()
        chunk = self.causal.chunk(window)
        faces = float(chunk.crops.face_found.mean()) if len(chunk.crops.face_found) else 0.0
        self.summary.stream_end = window.end_time
        if not chunk.windows:
            self._event("window", index=window.index, start=window.start_time, end=window.end_time,
                        scored=False, face_found=0.0, message="no face (no-face policy 'skip')")
            return
        probabilities = self.detector.window_probabilities(chunk.windows)
        values = {head: None if p is None else float(p[0]) for head, p in probabilities.items()}
        if window.audio is None:
            values["p_audio_fake"] = None
        scoring = time.monotonic() - tick
        self.scoring_estimate = scoring if not self.summary.scored else \
            0.7 * self.scoring_estimate + 0.3 * scoring
        state_before = self.alerts.state
        smoothed, state = self.alerts.update(values["p_fake"], window.end_time)
        summary = self.summary
        summary.scored += 1
        summary.scoring_seconds += scoring
        summary.faces += faces
        summary.max_smoothed = max(summary.max_smoothed, smoothed)
        for head, value in values.items():
            if value is not None:
                summary.sums[head] = summary.sums.get(head, 0.0) + value
                summary.counts[head] = summary.counts.get(head, 0) + 1
        if state != state_before:
            summary.transitions.append({"at": window.end_time, "from": state_before, "to": state})
        latency = time.monotonic() - ready
        summary.latencies.append(latency)
        self._event("window", index=window.index, start=round(window.start_time, 6),
                    end=round(window.end_time, 6), **values, face_found=round(faces, 4),
                    smoothed=round(smoothed, 6), state=state, latency_s=round(latency, 4),
                    scoring_s=round(scoring, 4))

    def _report_skipped(self) -> None:
        """One "skipped" event for the windows passed over since the last scored one (in stream order)."""
        if not self.behind:
            return
        windows = sorted(self.behind, key=lambda w: w.start_frame)
        self.behind = []
        self.causal.skip_to(windows[-1].start_frame + len(windows[-1].frames))
        self.summary.skipped += len(windows)
        self.summary.stream_end = max(self.summary.stream_end, windows[-1].end_time)
        self._event("skipped", count=len(windows), start=round(windows[0].start_time, 6),
                    end=round(windows[-1].end_time, 6), reason="scoring is behind the stream")

    def _note(self, note: SourceNote) -> None:
        if note.kind == "reconnect":
            self.summary.reconnects += 1
        fields: dict[str, Any] = {"stream_time": round(note.stream_time, 6), "message": note.message}
        if note.kind == "partial":
            fields["frames"] = note.frames
            self.summary.stream_end = max(self.summary.stream_end, note.stream_time + note.frames / self.fps)
        self._event(note.kind, **fields)

    def _finish(self, reason: str) -> dict:
        summary = self.summary
        wall = time.monotonic() - self.started
        means = {head: round(summary.sums[head] / summary.counts[head], 6) if summary.counts.get(head)
                 else None for head in ("p_fake", "p_video_fake", "p_audio_fake")}
        latencies = sorted(summary.latencies)
        record = self._event(
            "end", reason=reason, stream_seconds=round(summary.stream_end, 6), windows_scored=summary.scored,
            windows_skipped=summary.skipped, stalls=summary.stalls, reconnects=summary.reconnects,
            **means, faces_found=round(summary.faces / summary.scored, 4) if summary.scored else 0.0,
            final_state=self.alerts.state, max_smoothed=round(summary.max_smoothed, 6),
            transitions=summary.transitions,
            latency_s={"mean": _round(sum(latencies) / len(latencies)) if latencies else None,
                       "p95": _round(latencies[math.ceil(0.95 * len(latencies)) - 1]) if latencies else None,
                       "max": _round(latencies[-1]) if latencies else None},
            scoring_s_per_window=_round(summary.scoring_seconds / summary.scored) if summary.scored else None,
            real_time_factor=_round(summary.scoring_seconds / (summary.scored * self.stride / self.fps))
            if summary.scored else None,
            wall_s=round(wall, 3),
        )
        return record

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "time": round(time.time(), 3), **fields}
        self.emit(event)
        return event


def _round(value: float) -> float:
    return round(value, 4)

