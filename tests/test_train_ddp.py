"""Two processes under torchrun (DDP, gloo, CPU) train and validate like one process on the global batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch
from train_fixtures import ENGINE_CONFIG

from avforensics.experiment.config import load_config
from avforensics.train.run import train

FIXTURES = Path(__file__).with_name("train_fixtures.py")
# Dropout off: each process draws its own masks, which a single process cannot reproduce.
OVERRIDES = ["model.overrides.dropout=0.0", "optim.epochs=2"]


def _validation_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv", newline="") as file:
        return [row for row in csv.DictReader(file) if row.get("val/video/overall/auc")]


def test_two_process_ddp_matches_single_process(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(FIXTURES), "train", str(ENGINE_CONFIG), "--out", str(tmp_path / "ddp"),
        *[arg for override in OVERRIDES for arg in ("--set", override)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stderr[-4000:]

    single = train(load_config(ENGINE_CONFIG, OVERRIDES), tmp_path / "single")

    ddp_rows, single_rows = _validation_rows(tmp_path / "ddp"), _validation_rows(tmp_path / "single")
    assert len(ddp_rows) == len(single_rows) == 2  # one validation per epoch
    for ddp_row, single_row in zip(ddp_rows, single_rows, strict=True):
        # Every window is scored once across the two processes, so the video AUC and accuracy agree exactly
        # up to float summation order in the gradients (measured difference in the weights: ~2e-8).
        for metric in ("video/overall/auc", "video/overall/acc", "window/video/auc", "video/audio/ap"):
            assert abs(float(ddp_row[f"val/{metric}"]) - float(single_row[f"val/{metric}"])) < 1e-6, metric
        assert abs(float(ddp_row["val/loss"]) - float(single_row["val/loss"])) < 1e-5

    ddp_state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    single_state = torch.load(single.last_checkpoint, weights_only=True)["state_dict"]
    for name, value in single_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(ddp_state[name], value, rtol=0, atol=1e-6, msg=name)
    # Each process ran the 2 epochs x 4 steps on its half of every global batch.
    assert int(ddp_state["model.steps_seen"]) == int(single_state["model.steps_seen"]) == 8
