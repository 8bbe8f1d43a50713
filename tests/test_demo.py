"""`avforensics demo --quick` from a wheel installed in a fresh virtual environment: the package works
outside a checkout (configs and MTCNN weights ship inside it), end to end, as the CI smoke test."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from avforensics.protocols.demo import (
    EPOCH_SHARE,
    PROTOCOLS,
    QUICK,
    demo_config,
    demo_detectors,
    write_seed_means,
)

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("TORCH_SPEC", "torch==2.13.0")


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run with no PYTHONPATH: neither pip nor the command may see this checkout's sources."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding PyTorch and the wheel built from this tree (not editable, not the source)."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"), str(ROOT)])
    wheels = list((work / "dist").glob("avforensics-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(work / "venv", with_pip=True)
    python = work / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TORCH])
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheels[0])])
    return work / "venv"


@pytest.mark.slow
def test_quick_demo_from_the_installed_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    detectors, _ = demo_detectors(None)
    assert detectors, "the demo needs at least one registered detector with a small configuration"
    out = tmp_path / "demo"
    # Run outside the checkout, so nothing can be found relative to it.
    result = run([str(wheel_venv / "bin" / "avforensics"), "demo", "--out", str(out), "--quick"],
                 cwd=tmp_path)
    assert "| detector | protocol |" in result.stdout and "everything is in" in result.stdout
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
        run_dir = out / "runs" / row["detector"] / row["protocol"]
        assert (run_dir / "calibrated.ckpt").is_file()
        assert list((run_dir / "evaluation" / "plots").glob("roc_video_overall.png"))
    for name in detectors:
        records = [json.loads(line) for line in (out / "detect" / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == QUICK.detect_videos
        assert all(record["status"] == "ok" and record["calibrated"] for record in records)
        assert len(list((out / "detect" / "timelines").glob(f"{name}-*.png"))) == QUICK.detect_videos


@pytest.mark.slow
def test_the_wheel_ships_configs_by_name_and_face_detector_weights(wheel_venv: Path, tmp_path: Path) -> None:
    code = (
        "import avforensics, pathlib\n"
        "from avforensics.experiment.config import load_config\n"
        "from avforensics.media.mtcnn import MTCNN\n"
        "config = load_config('cad/paper')\n"
        "MTCNN()\n"
        "print(config.model.name, pathlib.Path(avforensics.__file__).parent.parent.name)\n"
    )
    printed = run([str(wheel_venv / "bin" / "python"), "-c", code], cwd=tmp_path).stdout.split()
    assert printed == ["cad", "site-packages"]


def test_every_protocol_has_an_epoch_share() -> None:
    assert set(EPOCH_SHARE) == set(PROTOCOLS)
    assert EPOCH_SHARE["intra"] == 1.0 and 0.0 < EPOCH_SHARE["leave-one-method-out"] <= 1.0


def test_seed_means_average_each_metric_over_the_seeds_where_it_is_defined(tmp_path: Path) -> None:
    def record(auc: float, video_auc: float | None, minutes: float) -> dict:
        others = ["ACC", "AP", "video ACC", "video AP", "audio ACC", "audio AUC", "audio AP"]
        cells = dict.fromkeys(others, 0.5)
        return {"detector": "macbdf", "protocol": "intra", "videos": 48, **cells, "AUC": auc,
                "video AUC": video_auc, "epochs": 3, "minutes": minutes}

    per_seed = {
        3: [record(0.80, 0.60, 1.0)],
        4: [record(0.90, None, 2.0)],  # a head undefined in one seed is averaged over the others
        5: [record(0.70, 0.70, 3.0), {"detector": "cad", "protocol": "intra", "error": "boom"}],
    }
    markdown = write_seed_means(per_seed, tmp_path)
    records = json.loads((tmp_path / "comparison.json").read_text())
    macbdf = next(r for r in records if r["detector"] == "macbdf")
    assert macbdf["seeds"] == 3 and macbdf["minutes"] == pytest.approx(2.0)
    assert macbdf["AUC"]["mean"] == pytest.approx(80.0) and macbdf["AUC"]["sd"] == pytest.approx(10.0)
    assert macbdf["video AUC"]["mean"] == pytest.approx(65.0)
    assert macbdf["video AUC"]["sd"] == pytest.approx(7.0710678, rel=1e-6)
    cad = next(r for r in records if r["detector"] == "cad")
    assert cad["seeds"] == 0 and cad["AUC"] == {"mean": None, "sd": None}
    assert "seeds 3, 4, 5" in markdown
    assert "| macbdf | intra | 3 | 50.0 ± 0.0 | 80.0 ± 10.0 |" in markdown
    assert "| cad | intra | 0 | - |" in markdown


def test_demo_options_reach_the_training_configuration(tmp_path: Path) -> None:
    config = demo_config("macbdf", "leave-one-method-out", tmp_path / "corpus", tmp_path / "prepared",
                         QUICK, 1, ["data.augment={flip: 0.5}"], seed=11)
    assert config.data.options["seed"] == 11
    assert config.data.augment == {"flip": 0.5}
    assert config.data.options["protocol_params"]["held_out"] == "faceswap"
