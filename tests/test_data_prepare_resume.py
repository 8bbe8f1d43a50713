"""`prepare` with two workers killed midway and restarted ends with the cache an uninterrupted run writes."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import data_windows_fixtures as wx
import numpy as np
import pytest

from avforensics.data.prepare import PreparedStore, prepare_dataset

VIDEOS = 40
KILL_AFTER = 6  # entries written before the kill


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def forty_videos(tmp_path_factory, tmp_path):
    """40 synthetic video files: the session corpus copied under new names, the last copy cut short."""
    _, records, _ = wx.synthetic_corpus(tmp_path_factory)
    videos = []
    for copy in range(VIDEOS // len(records)):
        for record in records:
            path = tmp_path / "videos" / f"{copy}_{Path(record.path).name}"
            path.parent.mkdir(exist_ok=True)
            shutil.copyfile(record.path, path)
            videos.append(dataclasses.replace(record, id=f"synthetic/{path.name}", path=str(path)))
    cut = Path(videos[-1].path)
    cut.write_bytes(cut.read_bytes()[:3000])
    return videos


def prepare_in_own_process_group(records, out):
    os.setpgrp()  # its two workers join this group, so one killpg stops the whole run
    prepare_dataset(records, out, wx.OPTIONS, dataset="synthetic", workers=2,
                    detector_factory=wx.CentreFaceDetector)


def test_prepare_killed_midway_then_resumed_equals_an_uninterrupted_run(forty_videos, tmp_path):
    killed = tmp_path / "killed"
    run = multiprocessing.get_context("fork").Process(
        target=prepare_in_own_process_group, args=(forty_videos, killed)
    )
    run.start()
    deadline = time.monotonic() + 120
    while len(list(killed.glob("items/*/*.json"))) < KILL_AFTER and time.monotonic() < deadline:
        assert run.is_alive(), "the preparation ended before it could be killed"
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGKILL)
    run.join()
    done = len(list(killed.glob("items/*/*.json")))
    assert KILL_AFTER <= done < VIDEOS and not (killed / "manifest.jsonl").exists()

    resumed = prepare_dataset(forty_videos, killed, wx.OPTIONS, dataset="synthetic", workers=2,
                              detector_factory=wx.CentreFaceDetector)
    assert resumed["skipped"] == done and resumed["prepared"] + resumed["failed"] == VIDEOS - done
    assert resumed["failed_total"] == 1
    reference = tmp_path / "reference"
    prepare_dataset(forty_videos, reference, wx.OPTIONS, dataset="synthetic", workers=2,
                    detector_factory=wx.CentreFaceDetector)

    store, expected = PreparedStore(killed), PreparedStore(reference)
    assert store.entries == expected.entries and len(store.entries) == VIDEOS
    failed = [entry for entry in store.entries if entry["status"] != "ok"]
    assert [entry["id"] for entry in failed] == [forty_videos[-1].id]
    assert Path(forty_videos[-1].path).name in failed[0]["error"]
    for entry in store.ok():
        item, twin = store.load(entry["id"]), expected.load(entry["id"])
        for name in ("frames", "audio", "boxes", "face_found"):
            assert np.array_equal(getattr(item, name), getattr(twin, name)), (entry["id"], name)
    assert not list(killed.rglob("*.partial"))
