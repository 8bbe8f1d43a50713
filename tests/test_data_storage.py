"""fsspec URLs where prepare and detect read and write (memory:// standing in for s3://): the same entries,
crops and records as local paths, and the same resume."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import data_windows_fixtures as wx
import fsspec
import numpy as np
import pytest

from avforensics.cli import main
from avforensics.data.prepare import PreparedStore, prepare_dataset


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh folder of the in-memory filesystem (shared by the whole process), removed afterwards."""
    name = f"/bucket-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(name)
    yield name
    fs.rm(name, recursive=True)


def test_prepare_from_and_to_urls_equals_a_local_run(tmp_path_factory, tmp_path, bucket, one_thread) -> None:
    _, records, prepared = wx.synthetic_corpus(tmp_path_factory)
    fs = fsspec.filesystem("memory")
    remote = []
    for record in records:
        fs.pipe(f"{bucket}/videos/{Path(record.path).name}", Path(record.path).read_bytes())
        remote.append(dataclasses.replace(record, path=f"memory://{bucket}/videos/{Path(record.path).name}"))
    out = f"memory://{bucket}/prepared"
    options = {"dataset": "synthetic", "detector_factory": wx.CentreFaceDetector}
    counts = prepare_dataset(remote, out, wx.OPTIONS, **options)
    assert counts == {"prepared": 4, "skipped": 0, "failed": 0, "failed_total": 0, "removed_temporaries": 0}
    again = prepare_dataset(remote, out, wx.OPTIONS, **options)
    assert again["skipped"] == 4 and again["prepared"] == 0

    fs.get(f"{bucket}/prepared", str(tmp_path / "copy"), recursive=True)  # as a trainer syncs it down
    copy, local = PreparedStore(tmp_path / "copy"), PreparedStore(prepared)
    as_local = {ours.path: record.path for ours, record in zip(remote, records, strict=True)}
    for entry in copy.entries:
        entry["record"]["path"] = as_local[entry["record"]["path"]]
    assert copy.entries == local.entries and len(copy.entries) == 4
    for entry in local.ok():
        ours, theirs = copy.load(entry["id"]), local.load(entry["id"])
        for name in ("frames", "audio", "boxes", "face_found"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), (entry["id"], name)


def records_by_name(lines: str) -> dict[str, dict]:
    records = [json.loads(line) for line in lines.splitlines()]
    varying = ("input", "path", "timing")  # where the file was read from, and seconds
    return {Path(record["input"]).name: {key: value for key, value in record.items() if key not in varying}
            for record in records}


def test_detect_reads_inputs_and_writes_results_at_urls(trained_tiny, tmp_path, bucket, one_thread,
                                                         capsys) -> None:
    fs = fsspec.filesystem("memory")
    videos = sorted(trained_tiny["corpus"].glob("videos/*.mp4"))[:2]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(videos[0].read_bytes()[:3000])
    for path in (*videos, broken):
        fs.pipe(f"{bucket}/in/{path.name}", path.read_bytes())
    model = ["--model", str(trained_tiny["checkpoint"])]
    local = tmp_path / "local.jsonl"
    assert main(["detect", *map(str, (*videos, broken)), *model, "--jsonl", str(local)]) == 1
    results = f"memory://{bucket}/out/results.jsonl"
    assert main(["detect", f"memory://{bucket}/in/", *model, "--jsonl", results]) == 1
    written = fs.cat(f"{bucket}/out/results.jsonl").decode()
    assert records_by_name(written) == records_by_name(local.read_text())
    urls = {f"memory://{bucket}/in/{path.name}" for path in (*videos, broken)}
    parsed = [json.loads(line) for line in written.splitlines()]
    assert {record["input"] for record in parsed} == urls
    assert all(record["path"] == record["input"] for record in parsed if record["status"] == "ok")
    capsys.readouterr()
    assert main(["detect", f"memory://{bucket}/in/*.mp4", *model, "--jsonl", results]) == 1
    assert "2 scored, 1 failed (3 recorded by an earlier run)" in capsys.readouterr().out
    assert fs.cat(f"{bucket}/out/results.jsonl").decode() == written
    assert main(["detect", f"memory://{bucket}/missing/*.mp4", *model]) == 2
    assert f"no file matches memory://{bucket}/missing/*.mp4" in capsys.readouterr().err
