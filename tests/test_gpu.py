"""Every detector on a GPU in bf16: a training step, evaluation, detection and a checkpoint that a CPU
scores the same. Marked `gpu`; skipped where CUDA is absent. AVFORENSICS_GPU_TEST_DEVICE=cpu runs them on
the CPU as a dry run of the same code (scripts/gpu-check.sh --cpu)."""

from __future__ import annotations

import math
import os

import pytest
import torch
from device_fixtures import TINY, finite_gradients, moved

from avforensics.eval.metrics import compute_detection_metrics
from avforensics.experiment.checkpoint import MODEL_PREFIX, PAYLOAD_KEY, describe, load_model_from_checkpoint
from avforensics.experiment.config import load_config
from avforensics.experiment.predictions import PREDICTION_COLUMNS, prediction_rows
from avforensics.inference.detector import Detector
from avforensics.inference.preprocessing import Preprocessing
from avforensics.models.base import DetectorModel
from avforensics.train.optim import build_optimizer

DEVICE = torch.device(os.environ.get("AVFORENSICS_GPU_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE.type == "cuda" and not torch.cuda.is_available(),
        reason="no CUDA device (AVFORENSICS_GPU_TEST_DEVICE=cpu runs these on the CPU)",
    ),
]
DETECTORS = sorted(TINY)
BF16_PROBABILITY_TOLERANCE = 0.03  # bf16 keeps 8 bits of mantissa; probabilities move by a few 1e-3


def _batch(name: str) -> dict:
    batch = TINY[name][1]()
    size = batch["frames"].shape[0]
    batch.setdefault("video_id", [f"{name}-{row}" for row in range(size)])
    batch.setdefault("window", torch.zeros(size, dtype=torch.long))
    return batch


def _trained(name: str) -> tuple[DetectorModel, dict]:
    """A tiny detector after one bf16-autocast training step on DEVICE (the step the engine takes)."""
    torch.manual_seed(0)
    model = TINY[name][0]().to(DEVICE).train()
    optimizer = build_optimizer(model.named_parameters(), load_config(f"{name}/small").optim)
    batch = moved(_batch(name), DEVICE)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        losses = model.losses(model(batch), batch)
    total = sum(losses.values())
    assert math.isfinite(float(total.detach())), losses
    total.backward()
    touched, bad = finite_gradients(model)
    assert touched > 0 and bad == []
    optimizer.step()
    assert optimizer.defaults.get("fused") is (True if DEVICE.type == "cuda" else None)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return model.eval(), batch


def _windows(batch: dict) -> list[dict]:
    size = batch["frames"].shape[0]
    return [{k: (v[row] if isinstance(v, torch.Tensor) else v[row]) for k, v in batch.items()}
            for row in range(size)]


def _detector(model: DetectorModel, name: str, device: torch.device) -> Detector:
    config = load_config(f"{name}/small")
    return Detector(model, Preprocessing.from_config(config), device=device, batch_size=4)


@pytest.mark.parametrize("name", DETECTORS)
def test_bf16_training_step_has_finite_loss_and_gradients(name):
    model, _ = _trained(name)
    assert next(model.parameters()).device.type == DEVICE.type


@pytest.mark.parametrize("name", DETECTORS)
def test_evaluate_in_bf16_gives_a_metric_table(name):
    model, batch = _trained(name)
    with torch.inference_mode(), torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        probabilities = model(batch).probabilities()
    present = batch["audio_present"].tolist()  # an audio-less clip has no audio score to rank
    rows = [row for row, keep in zip(prediction_rows(batch, probabilities), present, strict=True) if keep]
    table = {column: [row[column] for row in rows] for column in PREDICTION_COLUMNS}
    scalars = compute_detection_metrics(table).scalars()
    assert 0.0 <= scalars["video/overall/auc"] <= 1.0 and 0.0 <= scalars["window/overall/acc"] <= 1.0
    assert all(0.0 <= p <= 1.0 for p in table["p_fake"])


@pytest.mark.parametrize("name", DETECTORS)
def test_detect_on_the_device_equals_detect_on_the_cpu(name, tmp_path):
    """The inference path (`Detector`, as `detect --device` builds it) scores windows on DEVICE as on the
    CPU, and a checkpoint of the DEVICE-trained model, loaded on the CPU, scores them the same."""
    model, batch = _trained(name)
    windows = _windows({k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    on_device = _detector(model, name, DEVICE).window_probabilities(windows)

    path = tmp_path / f"{name}.ckpt"
    state = {MODEL_PREFIX + key: value for key, value in model.state_dict().items()}
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    torch.save({"state_dict": {k: v for k, v in state.items() if k[len(MODEL_PREFIX):] not in frozen},
                PAYLOAD_KEY: describe(model, load_config(f"{name}/small"))}, path)
    restored, _ = load_model_from_checkpoint(path, map_location="cpu")
    on_cpu = _detector(restored, name, torch.device("cpu")).window_probabilities(windows)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        in_bf16 = _detector(model, name, DEVICE).window_probabilities(windows)
    for head, values in on_cpu.items():
        if values is None:
            assert on_device[head] is None
            continue
        known = ~torch.isnan(values)
        assert torch.equal(known, ~torch.isnan(on_device[head]))
        assert torch.allclose(on_device[head][known], values[known], atol=1e-4), head
        assert torch.allclose(in_bf16[head][known], values[known], atol=BF16_PROBABILITY_TOLERANCE), head
