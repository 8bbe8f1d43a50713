"""Exact resume: a run stopped after N steps and resumed to M ends where an uninterrupted M-step run ends."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_fixtures import ENGINE_CONFIG, KILL_AFTER_LAST_CHECKPOINT

from avforensics.experiment.config import load_config
from avforensics.train.run import LAST_CHECKPOINT, RunResult, train

# 32 training videos / batch 8 = 4 steps per epoch, 4 epochs = 16 steps; the lr drops x0.1 after epoch 3.
TOTAL_STEPS = 16
# One loader worker: batches prefetched by the worker process must not count as consumed.
OVERRIDES = ["data.workers=1"]
FIXTURES = Path(__file__).with_name("train_fixtures.py")


def _final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / LAST_CHECKPOINT, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The uninterrupted run every resumed run must end at."""
    return train(load_config(ENGINE_CONFIG, OVERRIDES), tmp_path_factory.mktemp("full"))


def assert_resumed_like_full(resumed: RunResult, full: RunResult) -> None:
    """Same weights, optimiser moments, schedule position and validation metrics as the uninterrupted run."""
    assert full.global_step == resumed.global_step == TOTAL_STEPS
    expected, actual = _final_state(full.run_dir), _final_state(resumed.run_dir)
    assert expected["state_dict"].keys() == actual["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        torch.testing.assert_close(actual["state_dict"][name], value, rtol=0, atol=1e-6, msg=name)
    # The buffer counts training forward passes: no batch was replayed or skipped.
    assert int(actual["state_dict"]["model.steps_seen"]) == TOTAL_STEPS
    adam_expected = expected["optimizer_states"][0]["state"]
    adam_actual = actual["optimizer_states"][0]["state"]
    for index, moments in adam_expected.items():
        torch.testing.assert_close(adam_actual[index]["exp_avg"], moments["exp_avg"], rtol=0, atol=1e-6)
    assert actual["lr_schedulers"][0]["last_epoch"] == TOTAL_STEPS
    assert abs(resumed.metrics["val/video/overall/auc"] - full.metrics["val/video/overall/auc"]) < 1e-9
    assert abs(resumed.metrics["val/loss"] - full.metrics["val/loss"]) < 1e-6


def test_mid_epoch_resume_matches_uninterrupted_run(tmp_path: Path, full_run: RunResult) -> None:
    # "Killed" after 6 steps: mid-epoch 2 (of 4 steps each), right after the step-6 checkpoint.
    stopped = train(load_config(ENGINE_CONFIG, [*OVERRIDES, "optim.max_steps=6"]), tmp_path / "resumed")
    assert stopped.global_step == 6
    resumed = train(load_config(ENGINE_CONFIG, OVERRIDES), tmp_path / "resumed", resume=True)
    assert_resumed_like_full(resumed, full_run)


def _saved_step(run_dir: Path) -> int | None:
    """The step of the run's last checkpoint; Lightning writes it to a temporary file and renames it into
    place, so whenever the file exists it is complete."""
    last = run_dir / LAST_CHECKPOINT
    return int(_final_state(run_dir)["global_step"]) if last.is_file() else None


def _train_and_kill(run_dir: Path, min_step: int, log: Path, timeout: float = 120.0) -> int:
    """`avforensics train` in a subprocess, SIGKILLed with its loader worker (its own process group) once
    its last checkpoint holds step `min_step` or later, as an out-of-memory kill or a lost node would
    stop it: nothing runs after the signal. Returns the step of the checkpoint the kill left behind."""
    command = [sys.executable, str(FIXTURES), "train", str(ENGINE_CONFIG), "--out", str(run_dir)]
    command += [arg for override in OVERRIDES for arg in ("--set", override)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    try:
        while (step := _saved_step(run_dir)) is None or step < min_step:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no step-{min_step} checkpoint (exit {process.returncode}): {log.read_text()}")
            time.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"training finished before the kill: {log.read_text()}"
    saved = _saved_step(run_dir)  # re-read: one more checkpoint may have landed before the signal did
    assert saved is not None
    return saved


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_weights(
    tmp_path: Path, full_run: RunResult
) -> None:
    run_dir = tmp_path / "killed"
    # Checkpoints come every 2 steps; killed once the step-6 one (mid-epoch 2) exists, or a later one.
    killed_at = _train_and_kill(run_dir, min_step=6, log=tmp_path / "train.log")
    assert 6 <= killed_at < TOTAL_STEPS
    resumed = train(load_config(ENGINE_CONFIG, OVERRIDES), run_dir, resume=True)
    assert_resumed_like_full(resumed, full_run)


def test_resume_refuses_missing_or_existing_runs(tmp_path: Path) -> None:
    config = load_config(ENGINE_CONFIG, ["optim.max_steps=2"])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config, tmp_path / "nothing", resume=True)
    train(config, tmp_path / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "run")


def validation_rows(run_dir: Path) -> list[dict[str, float]]:
    """The rows of every session's metrics.csv that carry validation metrics (val/*, epoch, step)."""
    rows = []
    for path in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        with path.open() as handle:
            for row in csv.DictReader(handle):
                if row.get("val/loss"):
                    rows.append({
                        key: float(value) for key, value in row.items()
                        if value != "" and (key.startswith("val/") or key in ("epoch", "step"))
                    })
    return rows


@pytest.mark.slow
def test_a_run_killed_right_after_an_end_of_epoch_checkpoint_resumes_with_that_epochs_validation(
    tmp_path: Path, full_run: RunResult
) -> None:
    """4 steps per epoch, checkpoints every 2 steps: step 8 is epoch 1's last batch. The process group is
    SIGKILLed right after last.ckpt holds step 8; the resumed run must still validate epoch 1."""
    run_dir = tmp_path / "killed"
    command = [sys.executable, str(FIXTURES), "train", str(ENGINE_CONFIG), "--out", str(run_dir)]
    command += [arg for override in OVERRIDES for arg in ("--set", override)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_AFTER_LAST_CHECKPOINT: "8",
           "PYTHONPATH": os.pathsep.join([str(FIXTURES.parent), str(FIXTURES.parents[1] / "src")])}
    killed = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _saved_step(run_dir) == 8
    resumed = train(load_config(ENGINE_CONFIG, OVERRIDES), run_dir, resume=True)
    assert_resumed_like_full(resumed, full_run)
    expected, actual = validation_rows(full_run.run_dir), validation_rows(run_dir)
    assert [row["epoch"] for row in expected] == [0, 1, 2, 3]
    assert [row.keys() for row in actual] == [row.keys() for row in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert resumed.best_checkpoint is not None and full_run.best_checkpoint is not None
    assert resumed.best_checkpoint.name == full_run.best_checkpoint.name
    assert resumed.best_score == pytest.approx(full_run.best_score, abs=1e-9)
