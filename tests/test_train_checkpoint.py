"""Checkpoints rebuild their model alone: the same validation outputs, frozen weights left out but checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from train_fixtures import ENGINE_CONFIG, ToyAVDetector, toy_dataset

from avforensics.eval.metrics import compute_detection_metrics
from avforensics.experiment.checkpoint import CheckpointError, load_model_from_checkpoint
from avforensics.experiment.config import load_config
from avforensics.experiment.data import collate_windows
from avforensics.experiment.predictions import PREDICTION_COLUMNS, prediction_rows
from avforensics.train.run import train


def test_loaded_model_reproduces_the_last_validation(tmp_path: Path) -> None:
    result = train(load_config(ENGINE_CONFIG, ["optim.epochs=1"]), tmp_path / "run")
    model, config = load_model_from_checkpoint(result.last_checkpoint)
    assert not model.training and config.optim.epochs == 1 and config.model.name == "toy_av"

    stored = torch.load(result.last_checkpoint, weights_only=True)
    assert not any(name.startswith("model.backbone.") for name in stored["state_dict"])  # frozen: left out
    assert stored["avforensics"]["parameters"] == {"trainable": 1379, "total": 4467}

    dataset = toy_dataset(config.data, config.data.val_split, config.data.eval_window_policy)
    batch = collate_windows([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        outputs = model(batch)
        losses = model.losses(outputs, batch)
    weighted = sum(config.loss.weights[name] * loss for name, loss in losses.items())
    # The run validated after its last step with the same weights: loss and AUC must agree.
    assert float(weighted) == pytest.approx(result.metrics["val/loss"], abs=1e-6)
    rows = prediction_rows(batch, outputs.probabilities())
    table = {column: [row[column] for row in rows] for column in PREDICTION_COLUMNS}
    recomputed = compute_detection_metrics(table).scalars()
    for metric in ("video/overall/auc", "video/video/auc", "window/audio/ap", "video/overall/acc"):
        # Logged metrics are float32.
        assert recomputed[metric] == pytest.approx(result.metrics[f"val/{metric}"], abs=1e-6), metric


def test_changed_frozen_backbone_or_weights_are_refused(tmp_path: Path) -> None:
    result = train(load_config(ENGINE_CONFIG, ["optim.max_steps=2"]), tmp_path / "run")
    checkpoint = torch.load(result.last_checkpoint, weights_only=True)

    other_backbone = dict(checkpoint)
    other_backbone["avforensics"] = {**checkpoint["avforensics"]}
    dimensions = checkpoint["avforensics"]["model_dimensions"]
    other_backbone["avforensics"]["model_dimensions"] = {**dimensions, "backbone_seed": 1}
    torch.save(other_backbone, tmp_path / "backbone.ckpt")
    with pytest.raises(CheckpointError, match="frozen backbone weights differ.*toy_backbone"):
        load_model_from_checkpoint(tmp_path / "backbone.ckpt")

    checkpoint = torch.load(result.last_checkpoint, weights_only=True)
    del checkpoint["state_dict"]["model.fusion_head.bias"]
    torch.save(checkpoint, tmp_path / "partial.ckpt")
    with pytest.raises(CheckpointError, match=r"1 missing \['fusion_head.bias'\]"):
        load_model_from_checkpoint(tmp_path / "partial.ckpt")

    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not an avforensics training checkpoint"):
        load_model_from_checkpoint(tmp_path / "foreign.ckpt")


def test_checkpoint_outlives_a_change_of_its_named_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's dimensions are stored: editing "small" later must not break old checkpoints."""
    result = train(load_config(ENGINE_CONFIG, ["optim.max_steps=2"]), tmp_path / "run")
    trained, _ = load_model_from_checkpoint(result.last_checkpoint)
    stored = torch.load(result.last_checkpoint, weights_only=True)["avforensics"]["model_dimensions"]
    assert stored == dataclasses.asdict(ToyAVDetector.configs["small"])

    edited = dataclasses.replace(ToyAVDetector.configs["small"], hidden=32)
    monkeypatch.setitem(ToyAVDetector.configs, "small", edited)
    model, _ = load_model_from_checkpoint(result.last_checkpoint)
    assert model.backbone.out_features == 16
    expected = trained.state_dict()
    assert list(model.state_dict()) == list(expected)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
