"""Every CAD config file resolves, builds and trains a step; the small config runs through the engine."""

from __future__ import annotations

import json

import pytest
import torch
import train_fixtures  # noqa: F401  (registers the in-memory "toy_av" dataset)
from cad_fixtures import FRAMES, SAMPLES, SIZE, TINY_MODEL, tiny_batch

from avforensics.experiment.config import load_config, shipped_configs
from avforensics.models.registry import build_model
from avforensics.train.run import train

CONFIGS = shipped_configs() / "cad"
ALL_TERMS = {"fused", "video", "audio", "kl", "kd"}
EXPECTED_TERMS = {
    "paper": ALL_TERMS,
    "table2_idforge": ALL_TERMS,
    "table3_cross_manipulation": ALL_TERMS,
    "tables45": ALL_TERMS,
    "small": ALL_TERMS,
    "demo": ALL_TERMS,
    "only_video": {"video"},
    "no_alignment": ALL_TERMS - {"kl"},
    "no_cross_attention": ALL_TERMS,
    "no_frozen_model": ALL_TERMS,
    "no_distillation": ALL_TERMS - {"kd"},
    "kl_distillation": ALL_TERMS,
}


def test_every_config_file_is_covered():
    assert {path.stem for path in CONFIGS.glob("*.yaml")} == set(EXPECTED_TERMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TERMS))
def test_config_builds_with_tiny_towers_and_takes_a_training_step(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.model.name == "cad"
    model = build_model("cad", config.model.config, **{**TINY_MODEL, **config.model.overrides})
    batch = tiny_batch(2, audio_present=[True, False])
    losses = model.losses(model(batch), batch)
    assert set(losses) == EXPECTED_TERMS[name]
    sum(losses.values()).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in trainable)
    assert sum(p.grad.abs().sum().item() for p in trainable if p.grad is not None) > 0
    if name == "no_frozen_model":  # the shared encoders train, so no frozen features are cached
        assert model.clip.embeddings.patch_embedding.weight.grad is not None
        assert len(model.feature_cache) == 0
    if name == "kl_distillation":
        assert losses["kd"].item() >= 0.0  # a KL, not a negative cosine


def test_small_config_trains_through_the_engine(tmp_path):
    overrides = [
        "data.dataset=toy_av", "data.root=''", "data.protocol=''", f"data.clip_frames={FRAMES}",
        "data.batch_size=4", "data.window_policy=random",
        f"data.options={{train_videos: 8, val_videos: 4, windows: 1, size: {SIZE}, samples: {SAMPLES}}}",
        "optim.epochs=1", "trainer.val_every_n_epochs=1",
            "trainer.checkpoint_every_n_steps=2", "trainer.log_every_n_steps=1",
        # JSON is YAML: null, numbers, strings and mappings survive `--set key=value` parsing unchanged
        *(f"model.overrides.{key}={json.dumps(value)}" for key, value in TINY_MODEL.items()),
    ]
    config = load_config(CONFIGS / "small.yaml", overrides)
    result = train(config, tmp_path / "run")
    assert result.global_step == 2
    assert result.last_checkpoint.is_file()
    assert any(name.startswith("val/") and "auc" in name for name in result.metrics)


def test_small_config_trains_its_one_block_tower_and_shares_it_with_the_alignment():
    with torch.device("meta"):
        small = build_model("cad", "small")
        paper = build_model("cad", "paper")
        slower = build_model("cad", "small", video_backbone_lr_scale=0.3)
    assert len(small.video_clip.encoder.layers) == 1 and small.num_frames == 4
    assert small.lr_scales() == {} and slower.lr_scales() == {"video_clip.": 0.3}
    assert all(p.requires_grad for p in small.video_clip.parameters())
    assert small.clip is None and not small.shared_reads_clip  # the shared branch reads the trained tower
    assert len(small.audio_encoder.adapted) == 12 and small.audio_encoder.first_layer == 0  # q, v x 6 layers
    assert paper.lr_scales() == {} and paper.video_clip is None and paper.shared_reads_clip
    with pytest.raises(ValueError, match="video_backbone_lr_scale must be positive"):
        build_model("cad", "small", video_backbone_lr_scale=0.0)
