"""`avforensics demo --quick`: the whole toolkit end to end, as the CI smoke test."""

from __future__ import annotations

import csv
import json

from avforensics.cli import main
from avforensics.protocols.demo import EPOCH_SHARE, PROTOCOLS, QUICK, demo_detectors


def test_quick_demo_trains_compares_and_detects(tmp_path, capsys) -> None:
    detectors, _ = demo_detectors(None)
    assert detectors, "the demo needs at least one registered detector with a small configuration"
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "| detector | protocol |" in printed and "everything is in" in printed
    with (out / "comparison.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["detector"], row["protocol"]) for row in rows) == sorted(
        (name, protocol) for name in detectors for protocol in PROTOCOLS
    )
    for row in rows:
        assert row["error"] == ""
        assert 0.0 <= float(row["AUC"]) <= 1.0 and 0.0 <= float(row["ACC"]) <= 1.0
        assert int(row["videos"]) >= 2
        assert int(row["epochs"]) == QUICK.epochs  # the quick budget: one epoch under either protocol
        run = out / "runs" / row["detector"] / row["protocol"]
        assert (run / "calibrated.ckpt").is_file()
        assert list((run / "evaluation" / "plots").glob("roc_video_overall.png"))
    for name in detectors:
        records = [json.loads(line) for line in (out / "detect" / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == QUICK.detect_videos
        assert all(record["status"] == "ok" and record["calibrated"] for record in records)
        assert len(list((out / "detect" / "timelines").glob(f"{name}-*.png"))) == QUICK.detect_videos


def test_every_protocol_has_an_epoch_share() -> None:
    assert set(EPOCH_SHARE) == set(PROTOCOLS)
    assert EPOCH_SHARE["intra"] == 1.0 and 0.0 < EPOCH_SHARE["leave-one-method-out"] <= 1.0
