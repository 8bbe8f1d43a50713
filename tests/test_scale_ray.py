"""`--engine ray` on a local Ray (127.0.0.1, 2 CPUs, no dashboard, no usage statistics): prepare gives the
local engine's manifest and crops, a killed run resumes without redoing finished items, detect gives the
local records, and failing items become error records while the job goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import data_fixtures as dx
import data_windows_fixtures as wx
import numpy as np
import pytest

from avforensics.cli import main
from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PreparedStore, prepare_dataset

TESTS = Path(__file__).resolve().parent
# Ray workers are fresh processes: they find this checkout's package and the test fixtures on this path.
WORKER_PATH = os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])
# No usage statistics; and Ray, read when it is first imported, takes this machine for a one-node cluster
# that listens on the loopback address only.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def register_test_model() -> None:
    """Run in every Ray worker: importing the fixture module registers the test detector "tiny_av"."""
    import inference_fixtures  # noqa: F401


@pytest.fixture(scope="module")
def ray_address():
    """A private Ray for this module (2 CPUs, no dashboard) bound to 127.0.0.1; yields the address other
    processes join."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**RAY_ENVIRONMENT, "PYTHONPATH": WORKER_PATH}.items():
            patch.setenv(name, value)
        import ray

        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 runtime_env={"worker_process_setup_hook": register_test_model})
        try:
            address = ray.get_runtime_context().gcs_address
            assert address.startswith("127.0.0.1:"), address
            yield address
        finally:
            ray.shutdown()


def arrays(store: PreparedStore, record_id: str) -> dict[str, np.ndarray]:
    item = store.load(record_id)
    return {name: getattr(item, name) for name in ("frames", "audio", "boxes", "face_found")}


def test_prepare_on_ray_gives_the_manifest_and_crops_of_the_local_engine(ray_address, tmp_path) -> None:
    from avforensics.scale.ray_map import RayMap

    every = get_adapter("fakeavceleb").records(dx.write_fakeavceleb(tmp_path / "fakeavceleb"))
    records = every[::5] + [r for r in every if r.path.endswith(dx.DAMAGED_FAKEAVCELEB)]  # all kinds, quick
    outputs = {"local": tmp_path / "local", "ray": tmp_path / "ray"}
    counts = {
        engine: prepare_dataset(records, out, wx.OPTIONS, dataset="fakeavceleb", workers=2,
                                detector_factory=wx.CentreFaceDetector,
                                **({"item_map": RayMap()} if engine == "ray" else {}))
        for engine, out in outputs.items()
    }
    # The damaged clip is a failed entry on both engines, not a failed job.
    assert counts["ray"] == counts["local"] == {"prepared": len(records) - 1, "skipped": 0, "failed": 1,
                                                "failed_total": 1, "removed_temporaries": 0}
    manifests = {engine: (out / "manifest.jsonl").read_text() for engine, out in outputs.items()}
    assert manifests["ray"] == manifests["local"]
    local, on_ray = PreparedStore(outputs["local"]), PreparedStore(outputs["ray"])
    failed = [entry for entry in on_ray.entries if entry["status"] == "failed"]
    assert [Path(entry["record"]["path"]).name for entry in failed] == [Path(dx.DAMAGED_FAKEAVCELEB).name]
    assert len(on_ray.ok()) == len(records) - 1 >= 16
    for entry in on_ray.ok():
        ours, theirs = arrays(on_ray, entry["id"]), arrays(local, entry["id"])
        for name, values in ours.items():
            assert np.array_equal(values, theirs[name]), (entry["id"], name)


def entry_files(out: Path) -> dict[Path, int]:
    """Written files of finished items and their modification times."""
    return {path: path.stat().st_mtime_ns for path in out.glob("items/*/*")
            if not path.name.endswith(".partial")}


@pytest.mark.slow
def test_a_killed_ray_prepare_resumes_without_redoing_finished_items(ray_address, tmp_path, capsys) -> None:
    root = dx.write_dfdc(tmp_path / "dfdc")
    total = len(get_adapter("dfdc").records(root))
    out = tmp_path / "prepared"
    command = ["prepare", "dfdc", str(root), "--out", str(out), "--size", "32", "--stride", "25",
               "--engine", "ray", "--workers", "2"]
    # The first run is the command line in its own process, joining this module's Ray, killed midway.
    process = subprocess.Popen([sys.executable, "-m", "avforensics.cli", *command, "--address", ray_address],
                               env={**os.environ, **RAY_ENVIRONMENT, "PYTHONPATH": WORKER_PATH},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("items/*/*.json"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.kill()
    process.wait()
    process.stderr.close()
    settled = entry_files(out)
    while time.monotonic() < deadline:  # Ray stops a dead driver's workers; one may finish its video first
        time.sleep(2)
        settled, before = entry_files(out), settled
        if settled == before:
            break
    done = sum(path.suffix == ".json" for path in settled)
    assert 2 <= done < total and not (out / "manifest.jsonl").exists()

    capsys.readouterr()
    assert main(command) == 0
    assert f"prepared {total - done}, skipped {done}, failed 0" in capsys.readouterr().out
    assert {path: entry_files(out)[path] for path in settled} == settled  # finished items not rewritten
    entries = PreparedStore(out).entries
    assert len(entries) == total and all(entry["status"] == "ok" for entry in entries)


def detect_records(path: Path) -> dict[str, dict]:
    """Records by input, without their timing (seconds differ from run to run)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["input"]: {k: v for k, v in record.items() if k != "timing"} for record in records}


def test_detect_on_ray_gives_the_records_of_local_detect(ray_address, trained_tiny, tmp_path, one_thread,
                                                         capsys) -> None:
    videos = sorted(trained_tiny["corpus"].glob("videos/*.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(videos[0].read_bytes()[:3000])
    arguments = ["detect", *map(str, videos), str(broken), "--model", str(trained_tiny["checkpoint"])]
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main([*arguments, "--jsonl", str(local)]) == 1
    assert main([*arguments, "--jsonl", str(on_ray), "--engine", "ray", "--workers", "2"]) == 1
    assert "4 scored, 1 failed" in capsys.readouterr().out
    records = detect_records(on_ray)
    assert records == detect_records(local) and len(records) == 5
    assert records[str(broken)]["status"] == "error" and records[str(broken)]["error"] == "CorruptMediaError"
    assert all(records[str(video)]["status"] == "ok" for video in videos)


def test_engine_options_are_checked_in_command_line_words(capsys) -> None:
    assert main(["detect", "x.mp4", "--model", "m.pt", "--address", "auto"]) == 2
    assert "--address: only with --engine ray" in capsys.readouterr().err
    assert main(["prepare", "dfdc", "root", "--out", "o", "--engine", "ray", "--address", "auto",
                 "--num-cpus", "2"]) == 2
    assert "--num-cpus sizes a private Ray" in capsys.readouterr().err
    assert main(["detect", "--live", "-", "--model", "m.pt", "--engine", "ray"]) == 2
    assert "--live scores one stream in this process" in capsys.readouterr().err
