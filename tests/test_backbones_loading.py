"""The same random weights written as Hugging Face, OpenAI and CTranslate2 checkpoints load to one model."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from backbones_fixtures import (
    openai_clip_state,
    openai_whisper_checkpoint,
    random_clip_model,
    random_whisper_model,
    save_ctranslate2_whisper,
    save_torchscript_state,
)

from avforensics.backbones import weights
from avforensics.backbones.errors import BackboneWeightsError, WeightsUnavailableError
from avforensics.backbones.loading import load_clip_vision, load_whisper_encoder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("clip")
    model = random_clip_model()
    model.save_pretrained(root / "hf")  # a full CLIPModel, as published on the hub
    model.vision_model.save_pretrained(root / "hf_vision")  # a bare vision tower
    state = openai_clip_state(model.vision_model, model.visual_projection.weight.detach())
    torch.save(state, root / "state.pt")
    save_torchscript_state(state, root / "jit.pt")
    return {"root": root, "reference": model.vision_model}


@pytest.fixture(scope="module")
def whisper_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("whisper")
    model = random_whisper_model()
    model.save_pretrained(root / "hf")
    torch.save(openai_whisper_checkpoint(model), root / "openai.pt")
    save_ctranslate2_whisper(model, root / "ct2")
    return {"root": root, "reference": model.model.encoder}


def test_clip_formats_load_to_identical_outputs(clip_files) -> None:
    root: Path = clip_files["root"]
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = clip_files["reference"](images)
        outputs = {}
        for name in ("hf", "hf_vision", "state.pt", "jit.pt"):
            model = load_clip_vision(root / name)
            outputs[name] = model(images)
            assert model.weights_id.name == "custom"
    for name, out in outputs.items():
        assert torch.equal(out.last_hidden_state, outputs["hf"].last_hidden_state), name
        assert torch.equal(out.pooled, outputs["hf"].pooled), name
    assert (outputs["hf"].pooled - expected.pooler_output).abs().max() <= 1e-5


def test_clip_weights_ids_name_format_and_hash(clip_files) -> None:
    root: Path = clip_files["root"]
    jit = load_clip_vision(root / "jit.pt").weights_id
    assert (jit.format, jit.sha256) == ("openai", sha256(root / "jit.pt"))
    hf = load_clip_vision(str(root / "hf")).weights_id
    assert (hf.format, hf.sha256, hf.source) == (
        "huggingface",
        sha256(root / "hf" / "model.safetensors"),
        str(root / "hf"),
    )


def test_whisper_formats_load_to_identical_outputs(whisper_files) -> None:
    root: Path = whisper_files["root"]
    mel = torch.randn(1, 80, 3000)
    with torch.no_grad():
        expected = whisper_files["reference"](mel).last_hidden_state
        outputs = {}
        for name in ("hf", "openai.pt", "ct2", "ct2/model.bin"):
            model = load_whisper_encoder(root / name)
            outputs[name] = model(mel).last_hidden_state
            assert model.weights_id.format == {"hf": "huggingface", "openai.pt": "openai"}.get(
                name, "ctranslate2"
            )
    for name, out in outputs.items():
        assert torch.equal(out, outputs["hf"]), name
    assert (outputs["hf"] - expected).abs().max() <= 1e-5
    assert load_whisper_encoder(root / "ct2").weights_id.sha256 == sha256(root / "ct2" / "model.bin")


def test_openai_whisper_checkpoint_matches_openai_whisper_code(whisper_files) -> None:
    from whisper.model import AudioEncoder

    checkpoint = torch.load(whisper_files["root"] / "openai.pt", weights_only=True)
    dims = checkpoint["dims"]
    reference = AudioEncoder(
        dims["n_mels"],
        dims["n_audio_ctx"],
        dims["n_audio_state"],
        dims["n_audio_head"],
        dims["n_audio_layer"],
    ).eval()
    encoder_state = {
        key[len("encoder.") :]: value
        for key, value in checkpoint["model_state_dict"].items()
        if key.startswith("encoder.")
    }
    reference.load_state_dict(encoder_state, strict=True)
    mel = torch.randn(1, 80, 3000)
    with torch.no_grad():
        diff = (
            load_whisper_encoder(whisper_files["root"] / "openai.pt")(mel).last_hidden_state - reference(mel)
        ).abs()
    assert diff.max() <= 1e-4


def test_installed_name_resolves_through_the_weights_room(
    whisper_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "resolve", lambda name: whisper_files["root"] / "hf")
    model = load_whisper_encoder("whisper-tiny")
    assert (model.weights_id.source, model.weights_id.format) == ("whisper-tiny", "huggingface")


def test_hub_id_offline_explains_how_to_get_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(repo_id: str, **_: object) -> str:
        raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo_id}: cannot reach the hub (offline)")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(WeightsUnavailableError) as caught:
        load_clip_vision("openai/clip-vit-base-patch32")
    message = str(caught.value)
    for needle in (
        "openai/clip-vit-base-patch32",
        "local Hugging Face directory",
        ".pt",
        "avforensics weights install",
    ):
        assert needle in message


def test_unknown_and_uninstalled_names_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVFORENSICS_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="avforensics weights install whisper-base"):
        load_whisper_encoder("whisper-base")
    with pytest.raises(BackboneWeightsError, match="'no-such-weights' is not a file"):
        load_whisper_encoder("no-such-weights")
    with pytest.raises(BackboneWeightsError, match="no such file or directory"):
        load_clip_vision(tmp_path / "missing" / "model.pt")


def test_wrong_files_name_the_file_and_the_reason(clip_files, whisper_files, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneWeightsError, match=f"{junk}: not a readable"):
        load_clip_vision(junk)
    with pytest.raises(BackboneWeightsError, match="not a CLIP model"):
        load_clip_vision(whisper_files["root"] / "hf")
    with pytest.raises(BackboneWeightsError, match="holds no CLIP image encoder"):
        load_clip_vision(whisper_files["root"] / "ct2")
    with pytest.raises(BackboneWeightsError, match="no 'visual"):
        load_clip_vision(whisper_files["root"] / "openai.pt")
    torch.save({"dims": {"n_mels": 80}, "model_state_dict": {}}, tmp_path / "dims.pt")
    with pytest.raises(BackboneWeightsError, match="'dims' lacks 'n_audio_ctx'"):
        load_whisper_encoder(tmp_path / "dims.pt")


def test_config_that_does_not_fit_the_weights_lists_missing_tensors(whisper_files, tmp_path: Path) -> None:
    directory = tmp_path / "three_layers"
    shutil.copytree(whisper_files["root"] / "hf", directory)
    config = json.loads((directory / "config.json").read_text())
    config["encoder_layers"] = 3
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(BackboneWeightsError, match=r"missing \['layers\.2\."):
        load_whisper_encoder(directory)
