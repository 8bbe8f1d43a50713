"""Exact resume: a run stopped after N steps and resumed to M ends where an uninterrupted M-step run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_fixtures import ENGINE_CONFIG

from avforensics.train.config import load_config
from avforensics.train.run import train

# 32 training videos / batch 8 = 4 steps per epoch, 4 epochs = 16 steps; the lr drops x0.1 after epoch 3.
TOTAL_STEPS = 16


def _final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_mid_epoch_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    # One loader worker: batches prefetched by the worker process must not count as consumed.
    overrides = ["data.workers=1"]
    full = train(load_config(ENGINE_CONFIG, overrides), tmp_path / "full")

    # "Killed" after 6 steps: mid-epoch 2 (of 4 steps each), right after the step-6 checkpoint.
    stopped = train(load_config(ENGINE_CONFIG, [*overrides, "optim.max_steps=6"]), tmp_path / "resumed")
    assert stopped.global_step == 6
    resumed = train(load_config(ENGINE_CONFIG, overrides), tmp_path / "resumed", resume=True)

    assert full.global_step == resumed.global_step == TOTAL_STEPS
    expected, actual = _final_state(tmp_path / "full"), _final_state(tmp_path / "resumed")
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


def test_resume_refuses_missing_or_existing_runs(tmp_path: Path) -> None:
    config = load_config(ENGINE_CONFIG, ["optim.max_steps=2"])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config, tmp_path / "nothing", resume=True)
    train(config, tmp_path / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "run")
