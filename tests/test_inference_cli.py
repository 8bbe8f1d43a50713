"""`avforensics detect` on good and bad inputs, a 10-minute video in bounded memory, kill and rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from inference_fixtures import talking_video

from avforensics.cli import main
from avforensics.media.encode import write_video

FIXTURES = Path(__file__).with_name("inference_fixtures.py")
LONG_SECONDS = 600
SHORT_SECONDS = 120


def detect(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `avforensics detect` run in this process (test model registered)."""
    capsys.readouterr()
    code = main(["detect", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class PeakMemory:
    """Samples this process's resident memory in a thread; `growth` is the peak above the starting level."""

    def __init__(self, interval: float = 0.01) -> None:
        self.process, self.interval = psutil.Process(), interval
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def long_video(path: Path, seconds: int, size: int = 64) -> Path:
    """A long low-resolution clip, encoded fast (MPEG-4 video and PCM audio in Matroska)."""
    frames = [np.full((size, size, 3), 20 + 6 * k, np.uint8) for k in range(25)]
    count = seconds * 25
    audio = (0.1 * np.sin(np.arange(count * 640) * (2 * np.pi * 200 / 16000))).astype(np.float32)
    return write_video(path, (frames[i % 25] for i in range(count)), 25, audio, 16000, size=(size, size),
                       video_codec="mpeg4", audio_codec="pcm_s16le")


@pytest.fixture(scope="module")
def inputs(trained_tiny, tmp_path_factory) -> dict[str, Path]:  # noqa: F811
    folder = tmp_path_factory.mktemp("detect_inputs")
    good = sorted(trained_tiny["corpus"].glob("videos/*.mp4"))[:2]
    paths = {f"good{i}": folder / f"good{i}.mp4" for i in range(2)}
    for source, target in zip(good, paths.values(), strict=True):
        target.write_bytes(source.read_bytes())
    paths["empty"] = folder / "empty.mp4"
    paths["empty"].write_bytes(b"")
    data = paths["good0"].read_bytes()
    paths["truncated"] = folder / "truncated.mp4"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["text"] = folder / "notes.mp4"
    paths["text"].write_text("this is not a video\n" * 50)
    paths["silent"] = talking_video(folder / "silent.mp4", 1.0, audio=False)
    paths["noface"] = talking_video(folder / "noface.mp4", 1.0, face=False)
    paths["oneframe"] = talking_video(folder / "oneframe.mp4", 0.04)
    return paths


def test_detect_scores_good_inputs_and_records_bad_ones(trained_tiny, inputs, tmp_path, capsys) -> None:  # noqa: F811
    out = tmp_path / "results.jsonl"
    plots = tmp_path / "plots"
    code, stdout, stderr = detect(capsys, str(inputs["good0"].parent), "--model",
                                  str(trained_tiny["checkpoint"]), "--jsonl", str(out), "--plots", str(plots))
    assert code == 1, stderr
    by_name = {Path(record["input"]).name: record for record in records(out)}
    assert len(by_name) == len(inputs)
    for name in ("good0.mp4", "good1.mp4", "silent.mp4", "noface.mp4", "oneframe.mp4"):
        assert by_name[name]["status"] == "ok", by_name[name]
        assert 0.0 <= by_name[name]["p_fake"] <= 1.0
    assert by_name["silent.mp4"]["p_audio_fake"] is None and by_name["silent.mp4"]["flags"]["no_audio"]
    assert by_name["noface.mp4"]["flags"]["no_face"] and by_name["noface.mp4"]["faces_found"] == 0.0
    assert any("no face" in warning for warning in by_name["noface.mp4"]["warnings"])
    errors = {name: (r["error"], r["reason"]) for name, r in by_name.items() if r["status"] == "error"}
    assert errors["empty.mp4"][0] == "EmptyFileError"
    assert errors["truncated.mp4"][0] == "CorruptMediaError" and "truncated" in errors["truncated.mp4"][1]
    assert errors["notes.mp4"][0] == "NotMediaError"
    oneframe_notes = by_name["oneframe.mp4"]["warnings"]
    assert any("1 frame(s) (0.04 s), shorter than one window" in note for note in oneframe_notes)
    assert len(errors) == 3
    assert sorted(p.name.split("-")[0] for p in plots.glob("*.png")) == [
        "good0", "good1", "noface", "oneframe", "silent"
    ]
    assert "5 scored, 3 failed" in stdout


def test_usage_errors_exit_2(trained_tiny, tmp_path, capsys) -> None:  # noqa: F811
    code, _, stderr = detect(capsys, str(tmp_path / "*.mp4"), "--model", str(trained_tiny["checkpoint"]))
    assert code == 2 and "no file matches" in stderr
    video = talking_video(tmp_path / "a.mp4", 0.7)
    code, _, stderr = detect(capsys, str(video), "--model", str(tmp_path / "missing.ckpt"))
    assert code == 2 and "checkpoint not found" in stderr
    code, _, stderr = detect(capsys, str(video), "--model", str(trained_tiny["checkpoint"]), "--workers", "0")
    assert code == 2 and "--workers" in stderr


def test_ten_minute_video_in_bounded_memory(trained_tiny, tmp_path, capsys) -> None:  # noqa: F811
    """Peak memory while detect scores a 10-minute 64 px video does not grow with the video's length: it
    stays within 16 MiB of the growth on a 2-minute video of the same kind (holding the 8 extra minutes'
    frames would take 141 MiB more), and under 80 MiB, where the 10 minutes' frames alone would take
    176 MiB."""
    growth = {}
    for seconds in (SHORT_SECONDS, LONG_SECONDS):
        video = long_video(tmp_path / f"long{seconds}.mkv", seconds)
        out = tmp_path / f"long{seconds}.jsonl"
        with PeakMemory() as memory:
            code, _, stderr = detect(capsys, str(video), "--model", str(trained_tiny["checkpoint"]),
                                     "--jsonl", str(out))
        assert code == 0, stderr
        report = records(out)[0]
        assert report["duration"] == pytest.approx(seconds, abs=0.33)
        assert len(report["segments"]) == seconds * 25 // 8
        growth[seconds] = memory.growth_mib
    assert growth[LONG_SECONDS] < growth[SHORT_SECONDS] + 16, growth
    assert growth[LONG_SECONDS] < 80, growth


def test_killed_detect_resumes_with_one_record_per_input(trained_tiny, tmp_path, capsys) -> None:  # noqa: F811
    videos = [talking_video(tmp_path / f"v{i:02d}.mp4", 0.7, seed=i) for i in range(10)]
    out = tmp_path / "results.jsonl"
    # The checkout's own sources first: a worktree or a fresh clone must not import an installed copy.
    path = os.pathsep.join([str(FIXTURES.parent.parent / "src"), str(FIXTURES.parent)])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [sys.executable, str(FIXTURES), "detect", str(tmp_path / "v*.mp4"), "--model",
               str(trained_tiny["checkpoint"]), "--jsonl", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not out.exists() or len(out.read_bytes().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    complete = out.read_bytes().rsplit(b"\n", 1)[0].decode().splitlines()
    done = len(complete)
    assert 3 <= done < len(videos)
    # A record torn by the kill, half written (replacing whatever partial line the kill left).
    out.write_text("\n".join(complete) + '\n{"input": "' + str(videos[done]) + '", "status": "o')
    code, stdout, stderr = detect(capsys, str(tmp_path / "v*.mp4"), "--model",
                                  str(trained_tiny["checkpoint"]), "--jsonl", str(out), "--workers", "2")
    assert code == 0, stderr
    final = records(out)
    assert sorted(record["input"] for record in final) == sorted(str(v) for v in videos)
    assert all(record["status"] == "ok" for record in final)
    assert f"({done} recorded by an earlier run)" in stdout


def test_workers_never_take_more_threads_than_cores(caplog) -> None:
    from avforensics.inference.cli import worker_threads

    assert [worker_threads(workers, 2) for workers in (1, 2)] == [2, 1]
    assert [worker_threads(workers, 16) for workers in (1, 3, 4, 16)] == [16, 5, 4, 1]
    assert not caplog.records
    assert worker_threads(3, 2) == 1
    assert "3 workers on 2 cores" in caplog.text and "--workers 2" in caplog.text
