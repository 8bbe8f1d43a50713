"""The avprompt detector: outputs, no-audio rows, branch ablations, trainable parts, counts and a tiny fit."""

from __future__ import annotations

import pytest
import torch
from avprompt_fixtures import FRAMES, SAMPLES, tiny_batch, tiny_config, tiny_model

from avforensics.models.avprompt import AVPromptDetector
from avforensics.models.avprompt.alignment import cosine_distance
from avforensics.models.registry import build_model, model_class

pytestmark = pytest.mark.usefixtures("one_thread")

# Paper configuration, trainable parameters: the paper reports 4.4M (docs/models/avprompt.md).
PAPER_TRAINABLE = {
    "visual prompts": 12 * 1 * 768,
    "audio prompts": 6 * 32 * 512,
    "audio FC_l": 6 * ((512 + 512) * 512 + 512),
    "global token": 512,
    "video head": 768 * 384 + 384 + 384 + 1,
    "audio head": 512 * 384 + 384 + 384 + 1,
    "conv_v": 768 * 256 + 256,
    "conv_a": 512 * 2 * 256 + 256,
    "no-audio feature": 256,
    "fusion head": 512 * 384 + 384 + 384 + 1,
}


def test_registered_with_paper_and_small_configs() -> None:
    assert model_class("avprompt") is AVPromptDetector
    assert set(AVPromptDetector.configs) == {"paper", "small"}


def test_paper_config_parameter_counts() -> None:
    with torch.device("meta"):
        model = build_model("avprompt", "paper")
    trainable, total = model.parameter_counts()
    assert trainable == sum(PAPER_TRAINABLE.values()) == 4_406_787
    clip_b32, whisper_base_encoder = 87_456_000, 20_590_592
    assert total == trainable + clip_b32 + whisper_base_encoder


def test_small_config_builds_on_meta_with_a_trained_random_clip() -> None:
    with torch.device("meta"):
        model = build_model("avprompt", "small")
    assert isinstance(model, AVPromptDetector) and model.visual is not None and model.audio is not None
    assert all(p.requires_grad for p in model.visual.backbone.parameters())
    assert not any(p.requires_grad for p in model.audio.backbone.parameters())
    assert model.num_frames == 4 and model.audio.num_tokens == 8


def test_forward_outputs_and_av_distance() -> None:
    model = tiny_model()
    batch = tiny_batch()
    outputs = model(batch)
    for logits in (outputs.logits, outputs.video_logits, outputs.audio_logits):
        assert logits is not None and logits.shape == (4,) and bool(torch.isfinite(logits).all())
    assert outputs.frame_logits is None
    assert outputs.embeddings["video"].shape == (4, 32)  # f_v, D_v = 32
    assert outputs.embeddings["audio"].shape == (4, 32)  # f_a, D_a = 32
    assert outputs.embeddings["fused"].shape == (4, 2 * 16)  # pooled f_f, 2 * D_f
    distance = outputs.extras["av_distance"]
    assert distance.shape == (4, FRAMES)
    expected = cosine_distance(outputs.embeddings["video_frames"], outputs.embeddings["audio_frames"])
    torch.testing.assert_close(distance[:3], expected[:3])
    assert bool(distance[3].isnan().all())  # the row without audio has no audio-visual distance


def test_rows_without_audio_fuse_the_learned_no_audio_feature() -> None:
    model = tiny_model()
    batch = tiny_batch()
    with torch.no_grad():
        model.no_audio.fill_(0.5)
        base = model(batch).logits
        louder = dict(batch, audio=batch["audio"] + 0.3)
        changed = model(louder).logits
    assert abs(changed[0] - base[0]).item() > 1e-6  # audio present: the fused logit follows the audio
    assert changed[3].item() == pytest.approx(base[3].item(), abs=1e-7)  # absent: it cannot
    aligned_visual = model.alignment.visual(model.visual(batch["frames"]).transpose(1, 2)).transpose(1, 2)
    pooled = torch.cat([aligned_visual[3], torch.full((FRAMES, 16), 0.5)], dim=-1).mean(0)
    torch.testing.assert_close(model.fusion_head(pooled).squeeze(-1).detach(), base[3])


def test_losses_name_the_terms_and_ignore_unknown_and_absent_audio() -> None:
    model = tiny_model()
    batch = tiny_batch()
    outputs = model(batch)
    losses = model.losses(outputs, batch)
    assert set(losses) == {"video", "audio", "fused", "cmfm"}
    relabelled = dict(batch, audio_label=torch.tensor([0, 1, 0, 1]))  # row 3 has no audio track
    assert model.losses(outputs, relabelled)["audio"].item() == pytest.approx(losses["audio"].item())
    flipped = dict(batch, audio_label=torch.tensor([1, 1, 0, -1]))
    assert model.losses(outputs, flipped)["audio"].item() != pytest.approx(losses["audio"].item())


def test_only_prompts_heads_and_alignment_train_with_frozen_backbones() -> None:
    model = tiny_model(train_clip=False)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert not any(name.startswith(("visual.backbone.", "audio.backbone.")) for name in trainable)
    assert {name.split(".")[0] for name in trainable} == {
        "visual", "audio", "video_head", "audio_head", "alignment", "no_audio", "fusion_head"
    }
    losses = model.losses(model(tiny_batch()), tiny_batch())
    sum(losses.values()).backward()
    silent = {
        name for name, p in model.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0
    }
    # FC_l starts as [0 | I], so the audio prompt rows get gradient once FC_l's prompt half moves off zero.
    assert silent == {"audio.prompts.prompts"}
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    ids = model.frozen_backbone_ids()
    assert set(ids) == {"clip", "whisper"}
    assert ids == tiny_model(train_clip=False).frozen_backbone_ids()  # rebuilt from the config alone
    assert set(tiny_model(train_clip=True).frozen_backbone_ids()) == {"whisper"}


def test_gradient_groups_split_by_branch() -> None:
    model = tiny_model(train_clip=True)
    groups = {group.name: group for group in model.gradient_groups()}
    assert set(groups) == {"video_branch", "audio_branch"}
    assert groups["video_branch"].unimodal_losses == ("video",)
    assert groups["audio_branch"].unimodal_losses == ("audio",)
    assert groups["video_branch"].multimodal_losses == groups["audio_branch"].multimodal_losses == (
        "fused", "cmfm"
    )
    visual_ids = {id(p) for p in groups["video_branch"].parameters}
    assert visual_ids == {id(p) for p in model.visual.parameters()}  # prompts + the trained tower
    assert {id(p) for p in groups["audio_branch"].parameters} == {
        id(p) for p in model.audio.prompts.parameters()
    }


@pytest.mark.parametrize("branch", ["visual", "audio"])
def test_single_branch_rows_of_table_4(branch: str) -> None:
    model = tiny_model(branches=[branch])
    outputs = model(tiny_batch())
    own = outputs.video_logits if branch == "visual" else outputs.audio_logits
    other = outputs.audio_logits if branch == "visual" else outputs.video_logits
    assert other is None and own is not None and torch.equal(outputs.logits, own)
    assert outputs.extras == {}
    expected_loss = "video" if branch == "visual" else "audio"
    assert set(model.losses(outputs, tiny_batch())) == {expected_loss}
    assert model.gradient_groups() == []
    assert set(model.frozen_backbone_ids()) == ({"whisper"} if branch == "audio" else {"clip"})


def test_vpt_replacing_ablation_changes_the_prompt_operation() -> None:
    keep = tiny_model(train_clip=False)
    replace = tiny_model(train_clip=False, visual_prompt_mode="replace")
    assert keep.parameter_counts() == replace.parameter_counts()
    frames = tiny_batch()["frames"]
    tokens = {}
    for name, model in (("keep", keep), ("replace", replace)):
        assert model.visual is not None
        output = model.visual.backbone(frames, hooks=[model.visual.prompts])
        tokens[name] = output.last_hidden_state.shape[2]
    patches = (32 // 16) ** 2
    assert tokens == {"keep": 1 + 2 * 1 + patches, "replace": 1 + 1 + patches}  # 2 layers, N_vpt = 1


def test_readout_is_the_first_prompt_or_the_class_token() -> None:
    frames = tiny_batch()["frames"]
    for readout, token in (("prompt", 1), ("cls", 0)):
        model = tiny_model(visual_readout=readout).eval()
        assert model.visual is not None
        with torch.no_grad():
            output = model.visual.backbone(frames, hooks=[model.visual.prompts])
            expected = model.visual.backbone.post_layernorm(output.last_hidden_state[:, :, token])
            assert torch.equal(model.visual(frames), expected)
            if readout == "cls":
                assert torch.equal(model.visual(frames), output.pooled)
    assert AVPromptDetector.configs["paper"].visual_readout == "prompt"
    assert AVPromptDetector.configs["small"].visual_readout == "cls"
    with pytest.raises(ValueError, match="visual readout must be one of"):
        tiny_model(visual_readout="mean")


def test_precomputed_mel_gives_the_same_outputs() -> None:
    model = tiny_model()
    batch = tiny_batch()
    mel = model.audio.log_mel(batch["audio"])
    from_mel = {key: value for key, value in batch.items() if key != "audio"} | {"mel": mel}
    torch.testing.assert_close(model(from_mel).logits, model(batch).logits)


def test_wrong_window_shapes_and_options_are_clear_errors() -> None:
    model = tiny_model()
    batch = tiny_batch()
    with pytest.raises(ValueError, match=r"windows of 4 frames; got frames of shape \(4, 3,"):
        model(dict(batch, frames=batch["frames"][:, :3]))
    with pytest.raises(ValueError, match=f"{SAMPLES} audio samples at 16000 Hz; got audio of shape"):
        model(dict(batch, audio=batch["audio"][:, :-640]))
    with pytest.raises(KeyError, match="needs 'audio'"):
        model({key: value for key, value in batch.items() if key != "audio"})
    with pytest.raises(ValueError, match="non-empty subset"):
        tiny_model(branches=["visual", "text"])
    with pytest.raises(ValueError, match="cmfm_level"):
        tiny_model(cmfm_level="clip")
    with pytest.raises(ValueError, match="num_frames must be positive"):
        build_model("avprompt", tiny_config(num_frames=0))


def test_fits_a_tiny_audio_visual_task() -> None:
    """Fakes carry a visual offset or a tone; 25 Adam steps separate them on every head."""
    torch.manual_seed(0)
    model = tiny_model(train_clip=False)
    batch = tiny_batch(batch_size=8, seed=4)
    video_fake = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    audio_fake = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])
    batch["audio_present"] = torch.ones(8, dtype=torch.bool)
    batch["frames"] = batch["frames"] + 2.0 * video_fake[:, None, None, None, None]
    tone = torch.sin(torch.arange(SAMPLES) * 2 * torch.pi * 1000 / 16000)
    batch["audio"] = torch.randn(8, SAMPLES, generator=torch.Generator().manual_seed(5)) * 0.05
    batch["audio"] = batch["audio"] + 0.5 * tone * audio_fake[:, None]
    batch.update(video_label=video_fake, audio_label=audio_fake, label=video_fake | audio_fake)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(25):
        losses = model.losses(model(batch), batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    with torch.no_grad():
        outputs = model(batch)
    for logits, labels in (
        (outputs.logits, batch["label"]),
        (outputs.video_logits, video_fake),
        (outputs.audio_logits, audio_fake),
    ):
        assert torch.equal((logits > 0).long(), labels)


def test_noisy_or_readout_combines_the_fusion_video_and_audio_heads() -> None:
    batch = tiny_batch()
    torch.manual_seed(0)
    plain = tiny_model().eval()
    torch.manual_seed(0)
    noisy_or = tiny_model(fused_readout="noisy_or").eval()
    noisy_or.load_state_dict(plain.state_dict())
    with torch.no_grad():
        expected_parts, outputs = plain(batch), noisy_or(batch)
    present = batch["audio_present"].to(torch.bool)
    p_audio = torch.where(present, torch.sigmoid(expected_parts.audio_logits), torch.zeros(present.shape))
    p_real = (1 - torch.sigmoid(expected_parts.logits)) * (1 - torch.sigmoid(expected_parts.video_logits))
    torch.testing.assert_close(torch.sigmoid(outputs.logits), 1 - p_real * (1 - p_audio), atol=1e-5, rtol=0)
    assert not present.all()  # the batch has an audio-less row, whose audio head is left out
