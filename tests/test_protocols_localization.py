"""Localisation of an evaluated part: scores placed on each video's timeline, proposals, AP@IoU / AR@N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import CLIP_FPS, write_lavdf

from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PrepareOptions
from avforensics.data.windows import DecodedVideos, WindowDataset
from avforensics.protocols.localization import localize, metadata_file


def test_scripted_frame_scores_on_lavdf_give_exact_proposals_and_metrics(tmp_path: Path) -> None:
    """LAV-DF fixture, test split: 4 clips of 50 frames, 3 fakes with the fake period [1.0, 1.4) s. Frames
    inside it score 0.9, all others 0.1, so each fake gets the exact segment at 0.9 and the run of all its
    scored frames (0-1.92 s, 48 frames in 12 windows of 4) at their mean; a real clip gets that run at 0.1."""
    records = [r for r in get_adapter("lavdf").records(write_lavdf(tmp_path)) if r.split == "test"]
    dataset = WindowDataset(DecodedVideos(records, PrepareOptions(size=8)), "all", 4, 8)
    table: dict[str, list] = {"video_id": [], "window": [], "p_fake": [], "p_frame_fake": []}
    for position, number, window in dataset.windows:
        record = dataset.record(position)
        times = [(window.start_frame + k) / CLIP_FPS for k in range(4)]
        frames = [0.9 if record.label == 1 and 1.0 <= t < 1.4 else 0.1 for t in times]
        table["video_id"].append(record.id)
        table["window"].append(number)
        table["p_fake"].append(max(frames))
        table["p_frame_fake"].append(frames)
    result = localize(table, dataset, tmp_path / "out")
    assert result is not None
    fake_mean = (10 * 0.9 + 38 * 0.1) / 48
    for record in records:
        proposals = [value for proposal in result.proposals[metadata_file(record)] for value in proposal]
        expected = [0.9, 1.0, 1.4, fake_mean, 0.0, 1.92] if record.label == 1 else [0.1, 0.0, 1.92]
        assert proposals == pytest.approx(expected), record.id
    # 3 true positives ranked first, then 4 false positives: AP = 1 - 1/3 (the package leaves out the
    # span below the first recall point); every segment is among each file's first 5 proposals.
    assert result.metrics == pytest.approx({
        "ap@0.5": 2 / 3, "ap@0.75": 2 / 3, "ap@0.9": 2 / 3, "ap@0.95": 2 / 3,
        "ar@50": 1.0, "ar@30": 1.0, "ar@20": 1.0, "ar@10": 1.0, "ar@5": 1.0,
    })
    written = json.loads((tmp_path / "out" / "proposals.json").read_text())
    assert sum(written["test/000009.mp4"], []) == pytest.approx([0.9, 1.0, 1.4, fake_mean, 0.0, 1.92])
    assert "| 0.6667 | 0.6667 | 0.6667 | 0.6667 |" in (tmp_path / "out" / "localization.md").read_text()


def test_parts_without_fake_periods_are_not_localised(tmp_path: Path) -> None:
    records = [r for r in get_adapter("lavdf").records(write_lavdf(tmp_path)) if r.label == 0]
    dataset = WindowDataset(DecodedVideos(records, PrepareOptions(size=8)), "all", 4, 8)
    table = {"video_id": [dataset.record(0).id], "window": [0], "p_fake": [0.2]}
    assert localize(table, dataset, tmp_path / "out") is None
    assert not (tmp_path / "out").exists()
