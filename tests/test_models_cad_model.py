"""CAD end to end on tiny random towers: outputs, losses, audio-less clips, configs, checkpoint contract."""

from __future__ import annotations

import math

import pytest
import torch
from cad_fixtures import FRAMES, tiny_batch, tiny_cad

from avforensics.experiment.checkpoint import saved_state_keys
from avforensics.models.registry import build_model, model_class


def test_registered_with_paper_and_small_configurations():
    assert model_class("cad").name == "cad"
    assert {"paper", "small"} <= set(model_class("cad").configs)


def test_paper_configuration_builds_and_reports_parameters():
    """ViT-B/16 + Whisper-small + StA + LoRA r=8, built on the meta device (no weight file is read)."""
    with torch.device("meta"):
        model = build_model("cad", "paper")
    trainable, total = model.parameter_counts()
    assert model.clip.config.patch_size == 16 and model.clip.hidden_size == 768
    assert model.whisper.hidden_size == 768 and model.whisper.num_layers == 12  # whisper-small
    lora = sum(p.numel() for n, p in model.audio_encoder.named_parameters() if "lora_" in n)
    assert lora == 12 * 2 * 8 * (768 + 768)  # every layer's q_proj and v_proj, r = 8
    assert model.pad_audio_to_30s
    assert (trainable, total) == (27_924_739, 290_032_387)


def test_forward_outputs_and_named_losses():
    model = tiny_cad()
    batch = tiny_batch(3)
    outputs = model(batch)
    assert outputs.logits.shape == outputs.video_logits.shape == outputs.audio_logits.shape == (3,)
    assert outputs.embeddings["integrated"].shape == (3, 2 * 16 + 2 * 16)
    assert outputs.embeddings["x_v2a"].shape == outputs.embeddings["x_a2v"].shape == (3, FRAMES, 16)
    assert outputs.extras["alignment_kl"].shape == (3, FRAMES)
    losses = model.losses(outputs, batch)
    assert set(losses) == {"fused", "video", "audio", "kl", "kd"}
    assert all(torch.isfinite(value) for value in losses.values())
    assert -1.0 <= losses["kd"].item() <= 1.0  # a mean of negative cosines


def test_audio_less_clips_are_scored_and_skip_the_audio_terms():
    model = tiny_cad()
    batch = tiny_batch(3, audio_present=[True, False, False])
    outputs = model(batch)
    assert torch.isfinite(outputs.logits).all() and torch.isfinite(outputs.video_logits).all()
    assert math.isnan(outputs.audio_logits[1].item()) and math.isnan(outputs.audio_logits[2].item())
    assert math.isfinite(outputs.audio_logits[0].item())
    losses = model.losses(outputs, batch)
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # whatever a loader puts in an audio-less row, the clip's score is that of silence
    noisy = dict(batch, audio=batch["audio"].clone())
    noisy["audio"][1] = torch.randn_like(noisy["audio"][1])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(batch).logits, model(noisy).logits)
    # an all-silent batch has no alignment / distillation signal: both terms are exactly zero
    silent = tiny_batch(2, audio_present=[False, False])
    silent_losses = model.losses(model(silent), silent)
    assert silent_losses["kl"].item() == 0.0 and silent_losses["kd"].item() == 0.0


def test_audio_less_rows_do_not_change_the_losses_of_the_others():
    model = tiny_cad().eval()
    with_audio = tiny_batch(2, audio_present=[True, True])
    with torch.no_grad():
        first = {key: value[:1] for key, value in with_audio.items()}
        alone = model.losses(model(first), first)
        mixed_batch = dict(with_audio, audio_present=torch.tensor([True, False]))
        mixed_batch["audio_label"] = torch.tensor([0, -1])
        mixed = model.losses(model(mixed_batch), mixed_batch)
    for name in ("kl", "kd", "audio"):
        assert mixed[name].item() == pytest.approx(alone[name].item(), abs=1e-5), name


def test_probe_heads_do_not_train_the_encoders_and_joint_heads_do():
    batch = tiny_batch(2)
    for heads, reaches in (("probe", False), ("joint", True)):
        model = tiny_cad(unimodal_heads=heads)
        outputs = model(batch)
        model.losses(outputs, batch)["video"].backward()
        # `up` (the last layer) receives gradient at once; `down` starts cut off by the zero-initialised `up`
        adapter_grad = model.video_encoder.adapters.adapters.adapters[0].up.weight.grad
        assert (adapter_grad is not None and adapter_grad.abs().sum().item() > 0) == reaches, heads
        assert bool(model.gradient_groups()) == reaches


def test_gradient_groups_hold_trainable_encoder_parameters():
    model = tiny_cad(unimodal_heads="joint")
    groups = {group.name: group for group in model.gradient_groups()}
    assert set(groups) == {"video_encoder", "audio_encoder"}
    assert groups["audio_encoder"].unimodal_losses == ("audio",)
    assert groups["video_encoder"].multimodal_losses == ("fused", "kd")
    lora = {id(p) for n, p in model.audio_encoder.named_parameters() if "lora_" in n}
    assert lora <= {id(p) for p in groups["audio_encoder"].parameters}
    assert all(p.requires_grad for group in groups.values() for p in group.parameters)


def test_checkpoint_holds_no_frozen_backbone_and_frozen_ids_survive_training():
    model = tiny_cad()
    ids_before = model.frozen_backbone_ids()
    assert set(ids_before) == {"clip", "whisper", "audio_whisper"}
    saved = saved_state_keys(model)
    assert not any(key.startswith(("clip.", "whisper.")) for key in saved)
    assert any("lora_" in key for key in saved) and any(key.startswith("video_encoder.") for key in saved)
    batch = tiny_batch(2)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(model.losses(model(batch), batch).values()).backward()
    optimizer.step()
    assert model.frozen_backbone_ids() == ids_before  # LoRA moved, the frozen weights did not
    assert tiny_cad().frozen_backbone_ids() == ids_before  # rebuilt from the config alone: same ids


def test_wrong_clip_length_and_bad_switches_are_refused():
    model = tiny_cad()
    batch = tiny_batch(1)
    batch["frames"] = batch["frames"][:, :2]
    with pytest.raises(ValueError, match=r"expects frames \(B, 4"):
        model(batch)
    with pytest.raises(ValueError, match="distillation must be one of"):
        tiny_cad(distillation="mse")


def test_noisy_or_readout_never_scores_below_a_unimodal_head():
    torch.manual_seed(0)
    model = tiny_cad(fused_readout="noisy_or").eval()
    batch = tiny_batch(4, audio_present=[True, True, False, True])
    with torch.no_grad():
        outputs = model(batch)
    fused = torch.sigmoid(outputs.logits)
    p_video = torch.sigmoid(outputs.video_logits)
    p_audio = torch.sigmoid(outputs.audio_logits)
    present = batch["audio_present"]
    assert (fused >= p_video - 1e-6).all()
    assert (fused[present] >= p_audio[present] - 1e-6).all()
    assert torch.isnan(outputs.audio_logits[2]) and torch.isfinite(outputs.logits).all()
    classifier = tiny_cad().eval()
    classifier.load_state_dict(model.state_dict())
    with torch.no_grad():
        plain = classifier(batch)
    # Row by row: 1 - (1 - p_classifier)(1 - p_video)(1 - p_audio, where there is audio).
    p_plain = torch.sigmoid(plain.logits)
    keep_audio = torch.where(present, p_audio, torch.zeros_like(p_audio))
    expected = 1 - (1 - p_plain) * (1 - p_video) * (1 - keep_audio)
    assert fused == pytest.approx(expected, abs=1e-5)


def test_shared_branch_reads_the_specific_encoder_when_asked():
    """"specific": L_KL trains the video encoder and its tower; "frozen" (paper): it cannot reach them."""
    batch = tiny_batch(2)
    for shared_video, reaches in (("frozen", False), ("specific", True)):
        torch.manual_seed(0)
        model = tiny_cad(shared_video=shared_video, train_video_backbone=True)
        model.losses(model(batch), batch)["kl"].backward()
        stem_grad = model.video_clip.embeddings.patch_embedding.weight.grad
        assert (stem_grad is not None and stem_grad.abs().sum().item() > 0) == reaches, shared_video
    # No frozen CLIP is left to run: the trained tower is the only one, and the checkpoint holds it.
    assert model.clip is None and set(model.frozen_backbone_ids()) == {"whisper", "audio_whisper"}
    assert any(key.startswith("video_clip.") for key in saved_state_keys(model))
    with pytest.raises(ValueError, match="shared_video must be one of"):
        tiny_cad(shared_video="clip")


def test_specific_shared_video_caches_whisper_features_whatever_the_frames():
    """Only Whisper's features are frozen then: a clip with other frames and the same audio hits."""
    model = tiny_cad(shared_video="specific", train_video_backbone=True).eval()
    batch = tiny_batch(2)
    with torch.no_grad():
        model(batch)
        model(dict(batch, frames=torch.randn_like(batch["frames"])))
        model(dict(batch, audio=batch["audio"] * 0.5))
    assert (model.feature_cache.stats.hits, model.feature_cache.stats.misses) == (2, 4)
    entry = model.feature_cache.get(next(iter(model.feature_cache._entries)))
    assert set(entry) == {"audio", "audio_prefix"}


@pytest.mark.parametrize("trained_tower", [False, True])
def test_activation_checkpointing_gives_the_same_outputs_and_gradients(trained_tower):
    """Recomputed layer activations (StA and LoRA layers; the trained tower copy of the small config)."""
    tower = {"train_video_backbone": True} if trained_tower else {}
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = tiny_cad(cache_mb=0, activation_checkpointing=checkpointing, **tower).train()
        batch = tiny_batch(3)
        outputs = model(batch)
        sum(model.losses(outputs, batch).values()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((outputs.logits.detach(), grads, model.state_dict()))
    (logits, grads, state), (logits_ckpt, grads_ckpt, state_ckpt) = results
    assert torch.allclose(logits, logits_ckpt, atol=1e-6)
    assert grads.keys() == grads_ckpt.keys() and len(grads) > 10
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_ckpt[name], atol=1e-6, rtol=1e-5), name
    for name, value in state.items():  # BatchNorm statistics updated once, as without checkpointing
        assert torch.equal(value, state_ckpt[name]), name
