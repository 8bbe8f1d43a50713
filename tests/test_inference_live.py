"""`avforensics detect --live`: streams from a local ffmpeg (stdin pipe, TCP on loopback, a growing file),
scores equal to the finished file's causal scores, stalls, skipping when behind, bounded memory."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from data_windows_fixtures import CentreFaceDetector
from inference_fixtures import talking_video

from avforensics import Detector
from avforensics.cli import main
from avforensics.inference import live as live_module
from avforensics.inference.alerts import AlertPolicy, AlertTracker
from avforensics.inference.live import LiveOptions, run_live
from avforensics.media.decode import AVWindow
from avforensics.media.live import SourceNote, chunk_source, parse_source

FIXTURES = Path(__file__).with_name("inference_fixtures.py")
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg (scripts/test.sh installs it)")
STREAM_SECONDS = 3.0


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory) -> Path:
    """A 3-s talking clip as MPEG-TS (H.264 + AAC), the way a live encoder would send it."""
    folder = tmp_path_factory.mktemp("live")
    clip = talking_video(folder / "clip.mp4", STREAM_SECONDS, size=64)
    target = folder / "clip.ts"
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "25", "-c:a", "aac", "-f", "mpegts", str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def offline_causal(trained_tiny, stream_file, tmp_path_factory) -> dict:
    """`detect --causal` on the finished file: the scores every live run must reproduce."""
    out = tmp_path_factory.mktemp("offline") / "causal.jsonl"
    result = subprocess.run([sys.executable, str(FIXTURES), "detect", str(stream_file), "--model",
                             str(trained_tiny["checkpoint"]), "--causal", "--jsonl", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (record,) = read_events(out)
    assert record["status"] == "ok"
    return record


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def wait_for(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(encoding="utf-8")):
        assert time.monotonic() < deadline, f"{path} has no {text} after {timeout} s"
        time.sleep(0.05)


def live_command(checkpoint: Path, source: str, out: Path, *options: str) -> list[str]:
    return [sys.executable, str(FIXTURES), "detect", "--live", source, "--model", str(checkpoint),
            "--jsonl", str(out), *options]


def paced_sender(stream_file: Path, target: str, *output_options: str) -> list[str]:
    """ffmpeg sending the file at its real pace (-re), copied, as MPEG-TS to `target`."""
    return [FFMPEG, "-loglevel", "error", "-re", "-i", str(stream_file), "-c", "copy", *output_options,
            "-f", "mpegts", target]


def check_stream_events(events: list[dict], offline: dict) -> list[dict]:
    """Events in order, windows back to back from 0 covering the stream, scores equal to the offline
    causal scores of the same windows, the alert states those scores give, a clean end record."""
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("end") == 1
    assert "skipped" not in kinds
    windows = [event for event in events if event["type"] == "window"]
    assert [w["start"] for w in windows] == [round(0.32 * k, 6) for k in range(len(windows))]
    assert all(w["end"] == pytest.approx(w["start"] + 0.32) for w in windows)
    partial = [event for event in events if event["type"] == "partial"]
    covered = windows[-1]["end"] + sum(p["frames"] for p in partial) / 25
    assert covered == pytest.approx(STREAM_SECONDS, abs=0.1)
    offline_scores = {s["start"]: s for s in offline["segments"]}
    assert len(windows) == len(offline_scores)
    for window in windows:
        for head in ("p_fake", "p_video_fake", "p_audio_fake"):
            assert window[head] == offline_scores[window["start"]][head]  # exact: the same causal windows
    start = events[0]
    levels = start["alert_levels"]
    tracker = AlertTracker(AlertPolicy(levels["suspicious"], levels["alert"], levels["hysteresis"],
                                       levels["half_life_s"]))
    for window in windows:
        smoothed, state = tracker.update(window["p_fake"], window["end"])
        assert (window["smoothed"], window["state"]) == (round(smoothed, 6), state)
    end = events[-1]
    assert end["reason"] == "end of stream" and end["windows_scored"] == len(windows)
    assert end["windows_skipped"] == 0 and end["final_state"] == windows[-1]["state"]
    assert end["p_fake"] == pytest.approx(offline["p_fake"], abs=1e-6)
    assert all(w["latency_s"] >= 0 for w in windows) and end["latency_s"]["max"] < 5
    return windows


@needs_ffmpeg
@pytest.mark.slow  # a 3-s stream in real time plus a process start: 20-30 s here
def test_stdin_pipe(trained_tiny, stream_file, offline_causal, tmp_path) -> None:
    out = tmp_path / "events.jsonl"
    receiver = subprocess.Popen(live_command(trained_tiny["checkpoint"], "-", out), stdin=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    wait_for(out, '"start"')  # the sender starts once the detector is up, as a live source would
    sender = subprocess.run(paced_sender(stream_file, "pipe:1"), stdout=receiver.stdin, timeout=60)
    receiver.stdin.close()
    stderr = receiver.stderr.read()
    receiver.wait(timeout=60)
    assert sender.returncode == 0 and receiver.returncode == 0, stderr
    check_stream_events(read_events(out), offline_causal)
    assert "end of stream" in stderr


@needs_ffmpeg
@pytest.mark.slow  # a 3-s stream in real time plus a process start: 20-30 s here
def test_tcp_stream_with_reconnect(trained_tiny, stream_file, offline_causal, tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "events.jsonl"
    # The detector connects before the sender listens: the first attempt is refused, a reconnect follows.
    receiver = subprocess.Popen(live_command(trained_tiny["checkpoint"], f"tcp://127.0.0.1:{port}", out,
                                             "--reconnects", "20"), stderr=subprocess.PIPE, text=True)
    wait_for(out, '"reconnect"')
    sender = subprocess.run(paced_sender(stream_file, f"tcp://127.0.0.1:{port}?listen=1"), timeout=60)
    assert sender.returncode == 0
    _, stderr = receiver.communicate(timeout=60)
    assert receiver.returncode == 0, stderr
    events = read_events(out)
    kinds = [event["type"] for event in events]
    assert kinds.index("reconnect") < kinds.index("connected") < kinds.index("window")
    assert events[-1]["reconnects"] >= 1
    check_stream_events([e for e in events if e["type"] != "reconnect"], offline_causal)


@needs_ffmpeg
@pytest.mark.slow  # a 3-s stream in real time plus a process start: 20-30 s here
def test_growing_file_is_followed(trained_tiny, stream_file, offline_causal, tmp_path) -> None:
    growing, out = tmp_path / "growing.ts", tmp_path / "events.jsonl"
    receiver = subprocess.Popen(live_command(trained_tiny["checkpoint"], str(growing), out, "--idle-timeout",
                                             "3"), stderr=subprocess.PIPE, text=True)
    wait_for(out, '"start"')
    sender = subprocess.run(paced_sender(stream_file, str(growing)), timeout=60)
    _, stderr = receiver.communicate(timeout=60)
    assert sender.returncode == 0 and receiver.returncode == 0, stderr
    check_stream_events(read_events(out), offline_causal)


def test_usage_errors(trained_tiny, capsys) -> None:
    checkpoint = str(trained_tiny["checkpoint"])
    assert main(["detect", "--model", checkpoint]) == 2
    assert main(["detect", "clip.mp4", "--live", "-", "--model", checkpoint]) == 2
    assert main(["detect", "--live", "gopher://x", "--model", checkpoint]) == 2
    assert main(["detect", "--live", "-", "--model", checkpoint, "--window-stride", "3"]) == 2
    assert main(["detect", "--live", "-", "--model", checkpoint, "--min-face-size", "0"]) == 2
    errors = capsys.readouterr().err
    assert "give no PATH" in errors and "gopher" in errors and "shorter than a window" in errors
    assert "--min-face-size must be >= 1" in errors


def test_unreachable_stream_ends_with_an_error_record(trained_tiny, tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    out = tmp_path / "events.jsonl"
    result = subprocess.run(live_command(trained_tiny["checkpoint"], f"tcp://127.0.0.1:{port}", out,
                                         "--reconnects", "1"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    events = read_events(out)
    assert [e["type"] for e in events] == ["start", "reconnect", "end"]
    assert events[-1]["reason"].startswith("error:") and f"{port}" in events[-1]["reason"] + result.stderr


@pytest.fixture(scope="module")
def detector(trained_tiny) -> Detector:
    return Detector.from_checkpoint(trained_tiny["checkpoint"], face_detector=CentreFaceDetector(),
                                    batch_size=1)


@needs_ffmpeg
def test_stall_and_resume_in_process_chunks(detector, stream_file) -> None:
    """Bytes handed over as chunks (as a WebSocket would): a pause mid-stream is a stall, then a resume."""
    data = stream_file.read_bytes()
    half = len(data) // 2

    def chunks():
        yield data[:half]
        time.sleep(1.5)
        yield data[half:]

    events: list[dict] = []
    summary = run_live(detector, chunk_source(chunks(), "chunks"), events.append,
                       LiveOptions(stall_seconds=0.5))
    kinds = [event["type"] for event in events]
    assert kinds.count("stall") == 1 and kinds.index("stall") < kinds.index("resumed")
    assert summary["stalls"] == 1 and summary["reason"] == "end of stream"
    offline = detector.predict(stream_file, causal=True)
    assert [w["p_fake"] for w in events if w["type"] == "window"] == [s.p_fake for s in offline.segments]


def test_device_source_through_ffmpeg_input_devices(detector) -> None:
    """The device path, with FFmpeg's lavfi device (no camera here): a generated 2-s stream with sound."""
    graph = ("testsrc=size=64x64:rate=25:duration=2[out0];"
             "sine=frequency=220:sample_rate=16000:duration=2[out1]")
    events: list[dict] = []
    summary = run_live(detector, parse_source(graph, format="lavfi"), events.append)
    windows = [event for event in events if event["type"] == "window"]
    assert [w["start"] for w in windows] == [round(0.32 * k, 6) for k in range(6)]
    assert all(w["p_audio_fake"] is not None for w in windows)
    assert summary["reason"] == "end of stream" and summary["stream_seconds"] == pytest.approx(2.0)


class SlowFaces(CentreFaceDetector):
    def detect(self, images):
        time.sleep(0.03)
        return super().detect(images)


def test_falling_behind_skips_windows_evenly_and_reports_them(trained_tiny, monkeypatch) -> None:
    """Windows arrive every 20 ms, scoring one takes over 30 ms and may lag by 50 ms: about every other one
    is skipped, each window is scored or reported skipped exactly once, in order, skips spread out."""
    slow = Detector.from_checkpoint(trained_tiny["checkpoint"], face_detector=SlowFaces(), batch_size=1)
    rng = np.random.default_rng(0)
    count = 60

    def windows(*args, **kwargs):
        yield SourceNote("connected", "synthetic", 0.0)
        for index in range(count):
            frames = rng.integers(0, 255, (8, 48, 48, 3), dtype=np.uint8)
            audio = rng.normal(0, 0.1, 8 * 640).astype(np.float32)
            yield AVWindow(index, 8 * index, frames, audio, 0.32 * index, 0.32 * (index + 1), 8)
            time.sleep(0.02)
        yield SourceNote("ended", "end of stream", 0.32 * count)

    monkeypatch.setattr(live_module, "live_windows", windows)
    events: list[dict] = []
    summary = run_live(slow, chunk_source([], "synthetic"), events.append, LiveOptions(max_delay=0.05))
    accounted: list[int] = []
    for event in events:
        if event["type"] == "window":
            accounted.append(round(event["start"] / 0.32))
        elif event["type"] == "skipped":
            first = round(event["start"] / 0.32)
            accounted.extend(range(first, first + event["count"]))
            assert "behind" in event["reason"]
    assert accounted == list(range(count))
    scored = [round(e["start"] / 0.32) for e in events if e["type"] == "window"]
    assert summary["windows_skipped"] >= count // 4 and summary["windows_scored"] == len(scored)
    assert max(np.diff(scored)) <= 4  # skips are spread out, not one long hole


@needs_ffmpeg
@pytest.mark.slow
def test_ten_minute_stream_in_bounded_memory(trained_tiny, tmp_path) -> None:
    """A 10-minute 64x64 stream fed faster than real time: resident memory grows by less than 200 MB."""
    out = tmp_path / "events.jsonl"
    sender = subprocess.Popen(
        [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-f", "lavfi", "-i",
         "sine=frequency=220:sample_rate=16000", "-t", "600", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-f", "mpegts", "pipe:1"], stdout=subprocess.PIPE)
    receiver = subprocess.Popen(live_command(trained_tiny["checkpoint"], "-", out), stdin=sender.stdout,
                                stderr=subprocess.PIPE, text=True)
    sender.stdout.close()
    process = psutil.Process(receiver.pid)
    baseline = peak = None
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.append(receiver.stderr.read()), daemon=True)
    drain.start()
    while receiver.poll() is None:
        try:
            rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            break
        if baseline is None and out.exists() and '"type": "window"' in out.read_text():
            baseline = rss  # model, MTCNN and the decoder are loaded once the first window is scored
        if baseline is not None:
            peak = max(peak or rss, rss)
        time.sleep(0.1)
    drain.join(timeout=10)
    assert receiver.returncode == 0, stderr
    events = read_events(out)
    end = events[-1]
    assert end["type"] == "end" and end["reason"] == "end of stream"
    assert end["stream_seconds"] == pytest.approx(600, abs=0.5)
    assert end["windows_scored"] + end["windows_skipped"] == 600 * 25 // 8
    assert baseline is not None
    growth = (peak - baseline) / 2**20
    print(f"10-minute stream: resident memory {baseline / 2**20:.0f} MiB after the first window, peak "
          f"{peak / 2**20:.0f} MiB (+{growth:.1f}); {end['windows_scored']} windows scored, "
          f"{end['windows_skipped']} skipped, {end['wall_s']:.0f} s")
    assert growth < 200
