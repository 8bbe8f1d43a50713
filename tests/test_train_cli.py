"""The `avforensics models` and `avforensics train` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from train_fixtures import ENGINE_CONFIG

from avforensics.cli import main


def test_models_lists_configurations_with_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "config", "trainable", "total"]
    assert ["toy_av", "small", "1,379", "4,467"] in [line.split() for line in lines]


def test_train_command_writes_resolved_config_checkpoints_and_logs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        assert main(["train", str(ENGINE_CONFIG), "--out", str(out), "--set", "optim.max_steps=3",
                     "--set", "optim.lr=5e-3", "--set", "trainer.threads=1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.005 and saved["optim"]["max_steps"] == 3
    assert saved["trainer"]["threads"] == 1
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "csv" / "version_0" / "metrics.csv").read_text().startswith("epoch,step,")
    assert any((out / "tensorboard").glob("events.out.tfevents.*"))
    resume = ["train", str(ENGINE_CONFIG), "--out", str(out), "--set", "optim.max_steps=5", "--resume"]
    assert main(resume) == 0
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5
    assert (out / "csv" / "version_1" / "metrics.csv").is_file()  # a resumed session keeps the first log
