"""The assembled MACB-DF detector: outputs, clips without audio, running state, resume, ablation configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from macbdf_fixtures import TINY, tiny_batch, tiny_model

from avforensics.experiment.config import load_config, shipped_configs
from avforensics.models.registry import build_model, model_class
from avforensics.train.gradients import build_combiner

CONFIGS = shipped_configs() / "macbdf"
ALL_LOSSES = {"fused", "video", "audio", "video_frame", "audio_frame", "contrast_cross", "contrast_intra"}


def _train_step(
    model: torch.nn.Module, batch: dict, combiner: str = "om_pareto", weights: dict | None = None
) -> tuple[dict, dict]:
    """One optimisation step through the engine's gradient combiner; returns (losses, diagnostics)."""
    model.train()
    outputs = model(batch)
    losses = model.losses(outputs, batch)
    weights = {name: 1.0 for name in losses} | (weights or {})
    weights = {name: weights[name] for name in losses}
    trainable = [p for p in model.parameters() if p.requires_grad]
    diagnostics = build_combiner(combiner).backward(losses, weights, model.gradient_groups(), trainable)
    with torch.no_grad():
        for p in trainable:
            if p.grad is not None:
                p -= 1e-2 * p.grad
    return losses, diagnostics


def test_registered_with_paper_and_small_configurations() -> None:
    assert set(model_class("macbdf").configs) >= {"paper", "small"}
    with torch.device("meta"):
        paper = build_model("macbdf", "paper")
    trainable, total = paper.parameter_counts()
    assert trainable == total > 50_000_000  # ViT-B-sized video encoder, Whisper-base-sized audio encoder


def test_forward_shapes_and_clips_without_audio() -> None:
    model = tiny_model().eval()
    batch = tiny_batch()
    with torch.no_grad():
        outputs = model(batch)
    assert outputs.logits.shape == outputs.video_logits.shape == outputs.audio_logits.shape == (6,)
    assert outputs.frame_logits.shape == (6, 4)
    assert torch.isfinite(outputs.logits).all() and torch.isfinite(outputs.frame_logits).all()
    assert torch.isnan(outputs.audio_logits[5]) and torch.isfinite(outputs.audio_logits[:5]).all()
    assert outputs.extras["w_audio"][5].item() == 0.0 and outputs.extras["w_video"][5].item() == 1.0
    torch.testing.assert_close(outputs.extras["w_video"] + outputs.extras["w_audio"], torch.ones(6))
    # Without audio, the audio signal has no influence on the fused or video outputs.
    changed = dict(batch, audio=batch["audio"].clone())
    changed["audio"][5] = torch.randn(changed["audio"].shape[1])
    with torch.no_grad():
        again = model(changed)
    torch.testing.assert_close(again.logits[5], outputs.logits[5])
    torch.testing.assert_close(again.frame_logits[5], outputs.frame_logits[5])
    # ... whereas it does move the fused output of a clip with audio.
    changed["audio"][0] = torch.randn(changed["audio"].shape[1])
    with torch.no_grad():
        assert (model(changed).logits[0] - outputs.logits[0]).abs() > 1e-6


def test_losses_names_values_and_gradient_groups() -> None:
    model = tiny_model().eval()
    batch = tiny_batch()
    with torch.no_grad():
        outputs = model(batch)
        losses = model.losses(outputs, batch)
    assert set(losses) == ALL_LOSSES
    assert all(math.isfinite(v.item()) for v in losses.values())
    expected_audio = torch.nn.functional.binary_cross_entropy_with_logits(
        outputs.audio_logits[:5], batch["audio_label"][:5].float()
    )
    assert losses["audio"].item() == pytest.approx(expected_audio.item(), rel=1e-5)
    groups = {g.name: g for g in model.gradient_groups()}
    assert set(groups) == {"video_encoder", "audio_encoder"}
    assert {id(p) for p in groups["video_encoder"].parameters} == {
        id(p) for p in model.video_encoder.parameters()
    }
    for group in groups.values():
        assert set(group.unimodal_losses) | set(group.multimodal_losses) == ALL_LOSSES
    assert (
        "video" in groups["video_encoder"].unimodal_losses
        and "fused" in groups["audio_encoder"].multimodal_losses
    )


def test_training_updates_state_eval_does_not() -> None:
    model = tiny_model()
    batch = tiny_batch()
    model.eval()
    with torch.no_grad():
        model.losses(model(batch), batch)
    assert model.queue.pointer.item() == 0 and model.fusion_weights.clusters["video"].count == 0
    losses, diagnostics = _train_step(model, batch)
    assert model.queue.pointer.item() == 6 % 8 and int(model.queue.filled.sum()) == 6
    assert model.queue.has_audio.tolist()[:6] == [True] * 5 + [False]
    assert (
        model.fusion_weights.clusters["video"].count >= 1
        and model.fusion_weights.clusters["audio"].count >= 1
    )
    assert model.temperature.previous_gradient.item() != 0.0  # dL_C/dtau recorded for Eq. 5
    assert math.isfinite(model.temperature.previous_tau.item())
    assert {"ompareto/video_encoder/cos", "ompareto/audio_encoder/alpha_m"} <= set(diagnostics)
    assert all(math.isfinite(v) for v in diagnostics.values())


def test_state_dict_resume_continues_exactly() -> None:
    first = tiny_model()
    for seed in range(2):
        _train_step(first, tiny_batch(seed))
    state = {k: v.clone() for k, v in first.state_dict().items()}
    for key in (
        "queue.video",
        "queue.pointer",
        "temperature.previous_tau",
        "temperature.history",
        "fusion_weights.clusters.audio.centres",
        "fusion_weights.clusters.video.covariance",
    ):
        assert key in state
    second = tiny_model(queue_size=8)
    second.load_state_dict(state)
    for model in (first, second):
        torch.manual_seed(5)
        _train_step(model, tiny_batch(7))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_fixed_temperature_and_uniform_weights() -> None:
    model = tiny_model(temperature=0.07, adaptive_weights=False).eval()
    assert model.temperature is None and model.fusion_weights is None
    batch = tiny_batch()
    with torch.no_grad():
        outputs = model(batch)
    assert outputs.extras["w_video"].tolist() == [0.5] * 5 + [1.0]
    assert set(model.losses(outputs, batch)) == ALL_LOSSES


@pytest.mark.parametrize("config_path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_builds_and_takes_training_steps(config_path: Path) -> None:
    """Smoke run of each paper / ablation config: its overrides on the tiny sizes, two optimiser steps."""
    config = load_config(config_path)
    assert config.model.name == "macbdf"
    model = tiny_model(**config.model.overrides)
    combiner = config.loss.combiner
    for seed in range(2):
        losses, diagnostics = _train_step(model, tiny_batch(seed), combiner, config.loss.weights)
        assert all(math.isfinite(v.item()) for v in losses.values())
    overrides = config.model.overrides
    contrast = {
        "contrast_cross": overrides.get("cross_modal_contrast", True),
        "contrast_intra": overrides.get("intra_modal_contrast", True),
    }
    assert set(losses) == (ALL_LOSSES - {name for name, on in contrast.items() if not on})
    assert len(model.levels) == overrides.get("depth", TINY["depth"])
    assert bool(diagnostics) == (combiner == "om_pareto")


def test_noisy_or_readout_combines_the_fused_video_and_audio_heads() -> None:
    batch = tiny_batch()
    with torch.no_grad():
        plain = tiny_model(fused_readout="classifier").eval()(batch)
        noisy_or = tiny_model(fused_readout="noisy_or").eval()(batch)
    present = batch["audio_present"].to(torch.bool)
    p_audio = torch.where(present, torch.sigmoid(plain.audio_logits), torch.zeros(6))
    expected = 1 - (1 - torch.sigmoid(plain.logits)) * (1 - torch.sigmoid(plain.video_logits)) * (1 - p_audio)
    torch.testing.assert_close(torch.sigmoid(noisy_or.logits), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(noisy_or.video_logits, plain.video_logits)
    assert torch.isnan(noisy_or.audio_logits[5]) and torch.isfinite(noisy_or.logits).all()
    with pytest.raises(ValueError, match="fused_readout"):
        tiny_model(fused_readout="max")


def test_doc_claims_gradient_groups_are_the_encoders_and_noisy_or_trains_the_unimodal_heads() -> None:
    """docs/engine.md and docs/models/macbdf.md: the OM-Pareto groups hold the two encoders' parameters
    and nothing else; under `noisy_or` the fused BCE is on the noisy-or logit, so it reaches the heads."""
    model = tiny_model()
    groups = {g.name: {id(p) for p in g.parameters} for g in model.gradient_groups()}
    encoders = {"video_encoder": model.video_encoder, "audio_encoder": model.audio_encoder}
    assert groups == {name: {id(p) for p in enc.parameters()} for name, enc in encoders.items()}
    grouped = groups["video_encoder"] | groups["audio_encoder"]
    outside = [n for n, p in model.named_parameters() if id(p) not in grouped]
    assert outside and all(not n.startswith(("video_encoder.", "audio_encoder.")) for n in outside)
    assert any("fusion" in n for n in outside)

    batch = tiny_batch()
    for readout, reaches_heads in (("classifier", False), ("noisy_or", True)):
        torch.manual_seed(0)
        model = tiny_model(fused_readout=readout).eval()
        outputs = model(batch)
        fused = model.losses(outputs, batch)["fused"]
        known = batch["label"] >= 0
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            outputs.logits[known], batch["label"][known].float()
        )
        assert fused.item() == pytest.approx(expected.item(), rel=1e-5)
        head_params = list(model.video_head.parameters())
        grads = torch.autograd.grad(fused, head_params, allow_unused=True)
        touched = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
        assert touched == reaches_heads, readout
