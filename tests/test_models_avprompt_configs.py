"""configs/avprompt: every table row loads, builds (on the meta device) and switches what its name says."""

from __future__ import annotations

import pytest
import torch

from avforensics.experiment.config import load_config, shipped_configs
from avforensics.models.avprompt import AVPromptDetector
from avforensics.models.registry import build_model

CONFIGS = shipped_configs() / "avprompt"
PAPER_LOSSES = {"video", "audio", "fused", "cmfm"}

# config file -> (model overrides, loss weights, loss terms the model returns)
EXPECTED = {
    "paper.yaml": ({}, {}, PAPER_LOSSES),
    "table2_cross_manipulation.yaml": ({}, {}, PAPER_LOSSES),
    "table3_kodf.yaml": ({}, {}, PAPER_LOSSES),
    "table4_audio_branch.yaml": ({"branches": ["audio"]}, {}, {"audio"}),
    "table4_visual_branch.yaml": ({"branches": ["visual"]}, {}, {"video"}),
    "table4_no_cmfm.yaml": ({}, {"cmfm": 0.0}, PAPER_LOSSES),
    "table5_no_audio_loss.yaml": ({}, {"audio": 0.0}, PAPER_LOSSES),
    "table5_no_video_loss.yaml": ({}, {"video": 0.0}, PAPER_LOSSES),
    "table5_vpt_replacing.yaml": ({"visual_prompt_mode": "replace"}, {}, PAPER_LOSSES),
    "table5_segment_level_loss.yaml": ({"cmfm_level": "segment"}, {}, PAPER_LOSSES),
    "small.yaml": ({}, {}, PAPER_LOSSES),
    "demo.yaml": ({}, {}, PAPER_LOSSES),
}


def test_every_config_file_is_listed() -> None:
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_builds_its_table_row(name: str) -> None:
    overrides, weights, losses = EXPECTED[name]
    config = load_config(CONFIGS / name)
    assert config.model.name == "avprompt"
    assert config.model.overrides == overrides and config.loss.weights == weights
    with torch.device("meta"):
        model = build_model(config.model.name, config.model.config, **config.model.overrides)
    assert isinstance(model, AVPromptDetector)
    assert config.data.clip_frames == model.num_frames
    assert set(weights) <= losses  # the engine refuses weights for terms the model does not return
    expected_terms = {"visual": {"video"}, "audio": {"audio"}}
    terms = set().union(*(expected_terms[b] for b in model.branches))
    assert terms | ({"fused", "cmfm"} if model.fused else set()) == losses


def test_paper_schedule_is_the_papers() -> None:
    config = load_config(CONFIGS / "paper.yaml")
    assert (config.optim.optimizer, config.optim.lr, config.optim.epochs) == ("adam", 1e-4, 15)
    assert (config.optim.schedule, config.optim.milestones, config.optim.gamma) == ("multistep", [12], 0.1)
    assert (config.data.clip_frames, config.data.protocol) == (16, "ethnicity")
    assert AVPromptDetector.configs["paper"].train_clip is False


def test_small_config_trains_its_random_tower_threefold_faster() -> None:
    with torch.device("meta"):
        small = build_model("avprompt", "small")
        paper = build_model("avprompt", "paper")
        audio_only = build_model("avprompt", "small", branches=["audio"])
    assert small.lr_scales() == {"visual.": 3.0, "video_head.": 3.0}
    assert paper.lr_scales() == {} and audio_only.lr_scales() == {}
    with pytest.raises(ValueError, match="tower_lr_scale must be positive"):
        build_model("avprompt", "small", tower_lr_scale=0.0)


def test_paper_preset_names_openais_hub_whisper_and_small_the_offline_install() -> None:
    assert AVPromptDetector.configs["paper"].whisper_weights == "openai/whisper-base"
    assert AVPromptDetector.configs["small"].whisper_weights == "whisper-base"


def test_paper_preset_offline_fails_with_a_message_not_a_traceback(tmp_path, monkeypatch, caplog) -> None:
    """No hub (HF_HUB_OFFLINE, empty cache): `train avprompt/paper` exits 1 saying how to get the weights."""
    from huggingface_hub import constants

    from avforensics.cli import main

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    argv = ["train", "avprompt/paper", "--out", str(tmp_path / "run")]
    argv += ["--set", "model.overrides.branches=[audio]"]
    assert main(argv) == 1
    message = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "cannot fetch 'openai/whisper-base' from the Hugging Face hub" in message
    assert "avforensics weights install NAME" in message
    assert not (tmp_path / "run" / "checkpoints").exists()
