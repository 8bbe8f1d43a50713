"""The prepared cache: contents, failures recorded per video, resume after a kill, option conflicts."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import time

import data_fixtures as fx
import numpy as np
import pytest

from avforensics.data.adapters import get_adapter
from avforensics.data.cli import register
from avforensics.data.prepare import (
    PrepareConfigError,
    PreparedStore,
    PrepareOptions,
    entry_paths,
    prepare_dataset,
)
from avforensics.data.records import VideoRecord
from avforensics.media import mtcnn
from avforensics.media.mtcnn import FaceDetections

SR = 16000
OPTIONS = PrepareOptions(size=32, stride=2, max_side=None)


class CentreFaceDetector:
    """A stand-in for MTCNN: one confident face in the middle of every image."""

    def detect(self, images):
        return [FaceDetections(np.array([[8.0, 8.0, 24.0, 24.0]], np.float32), np.array([0.99], np.float32),
                               np.zeros((1, 5, 2), np.float32)) for _ in images]


def tone_after(silence: float, total: float = 0.32) -> np.ndarray:
    t = np.arange(round((total - silence) * SR)) / SR
    return np.concatenate([np.zeros(round(silence * SR), np.float32), (0.3 * np.sin(2 * np.pi * 220 * t))])


@pytest.fixture()
def dataset(tmp_path):
    rows = []
    for index in range(3):
        fx.write_tiny_video(tmp_path / f"v{index}.mp4", tone_after(0.16 if index == 2 else 0.0), frames=8)
        rows.append({"path": f"v{index}.mp4", "label": index % 2, "identity": f"p{index}"})
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 cut short")
    rows.append({"path": "broken.mp4", "label": 1, "identity": "p3"})
    fx.write_manifest(tmp_path, rows)
    return get_adapter("manifest").records(tmp_path)


def test_prepare_resumes_after_a_kill_and_never_reads_half_written_entries(dataset, tmp_path):
    out = tmp_path / "cache"
    first = prepare_dataset(dataset[:2], out, OPTIONS, detector_factory=CentreFaceDetector,
                            dataset="manifest")
    assert first == {"prepared": 2, "skipped": 0, "failed": 0, "failed_total": 0, "removed_temporaries": 0}
    # A kill between writing the arrays and the entry of v2 leaves arrays without an entry, plus a temporary.
    arrays, entry = entry_paths(out, "manifest/v2.mp4")
    arrays.parent.mkdir(parents=True, exist_ok=True)
    arrays.write_bytes(b"half written")
    (arrays.parent / "x.npz.123.partial").write_bytes(b"junk")
    assert not entry.exists()
    second = prepare_dataset(dataset, out, OPTIONS, dataset="manifest", workers=2,
                             detector_factory=CentreFaceDetector)
    assert second == {"prepared": 1, "skipped": 2, "failed": 1, "failed_total": 1, "removed_temporaries": 1}
    store = PreparedStore(out)
    assert [e["id"] for e in store.entries] == ["manifest/broken.mp4", "manifest/v0.mp4", "manifest/v1.mp4",
                                                "manifest/v2.mp4"]
    assert "broken.mp4" in store.entries[0]["error"] and store.entries[0]["status"] == "failed"
    item = store.load("manifest/v2.mp4")
    assert item.frames.shape == (8, 32, 32, 3) and item.frames.dtype == np.uint8
    assert item.audio.shape == (8 * 640,) and item.face_found.all() and item.entry["face_ratio"] == 1.0
    assert (item.record.label, item.record.identity, item.fps, item.sample_rate) == (0, "p2", 25.0, SR)
    with pytest.raises(KeyError, match="broken.mp4 is not prepared"):
        store.load("manifest/broken.mp4")
    with pytest.raises(PrepareConfigError, match="prepared with"):
        prepare_dataset(dataset, out, PrepareOptions(size=64), dataset="manifest",
                        detector_factory=CentreFaceDetector)


def test_prepare_can_trim_leading_silence_in_step(dataset, tmp_path):
    options = PrepareOptions(size=32, stride=2, max_side=None, trim_silence=True)
    prepare_dataset(dataset[2:3], tmp_path / "c", options, detector_factory=CentreFaceDetector)
    item = PreparedStore(tmp_path / "c").load("manifest/v2.mp4")
    trimmed = item.entry["seconds_trimmed"]  # 0.16 s of digital silence; AAC smears the onset ~1 frame early
    assert trimmed in (pytest.approx(0.12), pytest.approx(0.16))
    kept = 8 - round(trimmed * 25)
    assert len(item.frames) == kept and len(item.audio) == kept * 640


def test_prepare_command_with_the_real_detector_flags_faceless_videos(dataset, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["prepare", "manifest", str(tmp_path), "--out", str(out), "--size", "32"])
    assert args.run(args) == 1  # broken.mp4 failed
    assert "prepared 3" in capsys.readouterr().out
    entries = {e["id"]: e for e in PreparedStore(out).entries}
    assert entries["manifest/v0.mp4"]["no_face"] is True
    assert any("no face" in warning for warning in entries["manifest/v0.mp4"]["warnings"])
    settings = json.loads((out / "prepare.json").read_text())
    assert (settings["format"], settings["options"]["encoding"]) == (2, "compact")  # without --exact
    with np.load(entry_paths(out, "manifest/v0.mp4")[0]) as stored:
        assert {"video_h264", "audio_flac"} <= set(stored.files) and "frames" not in stored.files


class SlowCentreFaceDetector(CentreFaceDetector):
    """Slow enough that a run over several videos is still going when the test kills it."""

    def detect(self, images):
        time.sleep(0.3)
        return super().detect(images)


def prepare_in_forked_child(records, out):
    import torch

    torch.set_num_threads(1)  # a forked child must not touch the parent's OpenMP pool (it would hang)
    prepare_dataset(records, out, OPTIONS, detector_factory=SlowCentreFaceDetector)


def test_a_killed_prepare_process_resumes_without_reading_partial_entries(dataset, tmp_path):
    records = [VideoRecord.from_dict({**dataset[0].to_dict(), "id": f"manifest/copy{index}.mp4"})
               for index in range(8)]
    out = tmp_path / "killed"
    child = multiprocessing.get_context("fork").Process(target=prepare_in_forked_child, args=(records, out))
    child.start()
    deadline = time.monotonic() + 30
    while not list(out.glob("items/*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    done_before = len(list(out.glob("items/*/*.json")))
    assert 1 <= done_before < 8 and not (out / "manifest.jsonl").exists()
    counts = prepare_dataset(records, out, OPTIONS, detector_factory=CentreFaceDetector)
    assert (counts["skipped"], counts["prepared"]) == (done_before, 8 - done_before)
    store = PreparedStore(out)
    assert len(store.ok()) == 8
    assert all(store.load(entry["id"]).frames.shape == (8, 32, 32, 3) for entry in store.ok())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_face_detector_that_cannot_load_is_one_clear_error_with_any_number_of_workers(
    dataset, tmp_path, monkeypatch, capsys, workers
):
    """With worker processes the error used to surface as BrokenProcessPool, its reason lost."""
    missing = tmp_path / "no-weights"
    monkeypatch.setattr(mtcnn, "WEIGHTS_DIR", missing)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["prepare", "manifest", str(tmp_path), "--out", str(tmp_path / "cache"), "--workers", workers]
    )
    assert args.run(args) == 1
    assert capsys.readouterr().err == (
        "avforensics prepare: the face detector cannot be built: MTCNNWeightsNotFound: "
        f"{missing / 'pnet.pt'}: MTCNN weight file missing; reinstall avforensics (the weights ship inside "
        "the package)\n"
    )
