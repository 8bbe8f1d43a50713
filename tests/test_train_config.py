"""Experiment configs: extends, dot-path overrides, strict keys and types, the saved resolved YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from train_fixtures import ENGINE_CONFIG

from avforensics.experiment.config import ConfigError, config_to_dict, load_config, save_config

PAPER = """
model: {name: toy_av, config: small}
data: {dataset: toy_av, batch_size: 16, clip_frames: 16}
optim: {optimizer: adam, lr: 1.0e-4, schedule: multistep, milestones: [12], gamma: 0.1, epochs: 15}
loss: {weights: {fused: 1.0, video: 2.0}}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_extends_deep_merges_and_overrides_apply_last(tmp_path: Path) -> None:
    _write(tmp_path / "paper.yaml", PAPER)
    ablation = _write(tmp_path / "ablation.yaml", "extends: paper.yaml\nloss: {weights: {video: 0.0}}\n")
    config = load_config(ablation, ["optim.lr=3e-4", "optim.milestones=[5, 9]", "trainer.devices=2"])
    assert config.loss.weights == {"fused": 1.0, "video": 0.0}  # merged key by key
    assert config.optim.lr == 3e-4 and isinstance(config.optim.lr, float)
    assert config.optim.milestones == [5.0, 9.0]
    assert config.optim.epochs == 15 and config.data.batch_size == 16  # inherited
    assert config.trainer.devices == 2
    assert config.source == str(ablation)


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.yaml", PAPER + "trainer: {presicion: bf16-mixed}\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown key trainer\.presicion"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"unknown key optim\.learning_rate"):
        load_config(_write(tmp_path / "ok.yaml", PAPER), ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="unknown key modell"):
        load_config(_write(tmp_path / "top.yaml", PAPER + "modell: {}\n"))


def test_wrong_types_choices_and_missing_files_are_errors(tmp_path: Path) -> None:
    base = _write(tmp_path / "paper.yaml", PAPER)
    with pytest.raises(ConfigError, match=r"optim\.lr = 'fast' has the wrong type"):
        load_config(base, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"optim\.schedule = 'linear'; expected one of"):
        load_config(base, ["optim.schedule=linear"])
    with pytest.raises(ConfigError, match=r"data\.batch_size must be positive"):
        load_config(base, ["data.batch_size=0"])
    with pytest.raises(ConfigError, match=r"trainer\.threads must be >= 0, got -1"):
        load_config(base, ["trainer.threads=-1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(base, ["optim.lr"])
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found \(extended by"):
        load_config(_write(tmp_path / "child.yaml", "extends: missing.yaml\n"))
    loop = _write(tmp_path / "loop.yaml", "extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="`extends` cycle"):
        load_config(loop)


def test_resolved_config_round_trips_through_yaml(tmp_path: Path) -> None:
    config = load_config(ENGINE_CONFIG, ["optim.lr=0.01", "loss.combiner_options={alpha: 0.5}"])
    save_config(config, tmp_path / "run" / "config.yaml")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert "extends" not in saved and "source" not in saved
    assert saved["optim"]["lr"] == 0.01 and saved["optim"]["betas"] == [0.9, 0.999]
    assert saved["loss"]["combiner_options"] == {"alpha": 0.5}
    again = load_config(tmp_path / "run" / "config.yaml")
    assert config_to_dict(again) == config_to_dict(config)
