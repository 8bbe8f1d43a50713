"""Every detector follows its inputs' device and dtype: nothing inside forward is made on the default
device or in the default dtype. A GPU run shows such a tensor as a device mismatch; here the meta device
(no CPU copy possible) and bf16 weights (a stray float32 tensor meets a bf16 matmul) show it on a CPU."""

from __future__ import annotations

import pytest
import torch
from device_fixtures import TINY, finite_gradients, moved

from avforensics.models.registry import random_backbone_overrides

DETECTORS = sorted(TINY)


@pytest.mark.parametrize("name", DETECTORS)
def test_training_step_under_bf16_autocast_has_finite_loss_and_gradients(name):
    build, make_batch = TINY[name]
    torch.manual_seed(0)
    model = build().train()
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(batch)
        losses = model.losses(outputs, batch)
    assert outputs.logits.dtype == torch.bfloat16  # autocast ran the heads' matmuls in bf16
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    touched, bad = finite_gradients(model)
    assert touched > 0 and bad == []
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", DETECTORS)
def test_bf16_weights_and_inputs_stay_bf16(name):
    """bf16-true: a tensor created inside forward in float32 would promote the outputs or fail a matmul."""
    build, make_batch = TINY[name]
    torch.manual_seed(0)
    model = build().to(torch.bfloat16).train()
    batch = moved(make_batch(), "cpu", torch.bfloat16)
    outputs = model(batch)
    for head in ("logits", "video_logits", "audio_logits"):
        logits = getattr(outputs, head)
        if logits is not None:
            assert logits.dtype == torch.bfloat16, head
            assert bool(torch.isfinite(logits[~torch.isnan(logits)]).all()), head
    total = sum(model.losses(outputs, batch).values())
    total.backward()
    touched, bad = finite_gradients(model)
    assert touched > 0 and bad == []


@pytest.mark.parametrize("name", ["avprompt", "cad"])  # macbdf's cluster state decides on values: not on meta
def test_forward_on_the_meta_device(name):
    """Built and run on "meta", every output is on "meta": a tensor made on the CPU inside forward (or one
    copied to the CPU, as the CAD cache did) fails here."""
    build, make_batch = TINY[name]
    with torch.device("meta"):
        model = build()
    outputs = model(moved(make_batch(), "meta"))
    tensors = [outputs.logits, outputs.video_logits, outputs.audio_logits, *outputs.embeddings.values()]
    assert [t.device.type for t in tensors if t is not None] == ["meta"] * sum(t is not None for t in tensors)
    assert outputs.logits.shape == (make_batch()["frames"].shape[0],)


def test_random_backbone_overrides_name_every_checkpoint_setting():
    """What benchmarks and GPU checks pass so that paper configs build without weights on disk."""
    assert random_backbone_overrides("avprompt", "paper") == {"clip_weights": None, "whisper_weights": None}
    assert random_backbone_overrides("cad", "paper") == {"clip_weights": None, "whisper_weights": None}
    assert random_backbone_overrides("cad", "small") == {"whisper_weights": None}
    assert random_backbone_overrides("macbdf", "paper") == {}  # trained from scratch; adaptive_weights stays
