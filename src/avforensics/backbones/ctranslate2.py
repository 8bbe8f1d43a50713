"""Read CTranslate2 `model.bin` files and turn a Whisper one into a Hugging Face `WhisperModel` state dict.

Why our own reader: the only Whisper weights installable on offline machines ship as CTranslate2 files,
and the `ctranslate2` package can run them but not hand their tensors to torch. The format (version 6):
  header   u32 format version, string spec name, u32 spec revision, u32 tensor count
  tensor   string name, u8 rank, u32 per dimension, u8 dtype code, u32 byte count, raw little-endian data
  aliases  u32 count, then (string alias, string target) pairs
where a string is a u16 byte length (including a trailing NUL) followed by the bytes. Scalars (rank 0) carry
model attributes such as `encoder/num_heads`.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import WhisperConfig

SUPPORTED_FORMAT_VERSION = 6
WHISPER_SPEC = "WhisperSpec"

_DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}
# CTranslate2 activation enum value for the exact (erf) GELU that Whisper uses.
_GELU = 3
# Every released Whisper size uses 64-dimensional attention heads (tiny 384/6 ... large 1280/20).
_WHISPER_HEAD_DIM = 64


class CTranslate2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands; the message names file and reason."""


@dataclass(frozen=True)
class CTranslate2Model:
    """Tensors and attributes of one `model.bin`, aliases resolved on access."""

    path: Path
    spec: str
    spec_revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str]

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def tensor(self, name: str) -> torch.Tensor:
        """The named variable (following an alias), as stored (dtype unchanged)."""
        target = self.aliases.get(name, name)
        if target not in self.variables:
            raise CTranslate2FormatError(f"{self.path}: variable '{name}' is missing")
        return self.variables[target]

    def float_tensor(self, name: str) -> torch.Tensor:
        """The named weight as float32; int8/int16 weights are de-quantised with their `<name>_scale`."""
        value = self.tensor(name)
        if value.is_floating_point():
            return value.float()
        scale_name = f"{name}_scale"
        if scale_name not in self:
            raise CTranslate2FormatError(f"{self.path}: integer variable '{name}' has no '{scale_name}'")
        # CTranslate2 quantises as round(weight * scale), one scale per output row (or one for all).
        scale = self.tensor(scale_name).float()
        if scale.dim() == 1:  # per output channel: broadcast over the remaining (input, kernel) dimensions
            scale = scale.reshape(-1, *[1] * (value.dim() - 1))
        return value.float() / scale

    def attribute(self, name: str) -> int | None:
        """A scalar attribute such as `encoder/num_heads`, or None when this file does not store it."""
        if name not in self:
            return None
        value = self.tensor(name)
        if value.numel() != 1:
            raise CTranslate2FormatError(f"{self.path}: attribute '{name}' is not a scalar")
        return int(value.item())


class _Cursor:
    """Sequential little-endian reads that fail with the file name and offset instead of a struct error."""

    def __init__(self, data: bytes | bytearray, path: Path) -> None:
        self.data = data
        self.path = path
        self.offset = 0

    def take(self, size: int, what: str) -> bytes | bytearray:
        end = self.offset + size
        if end > len(self.data):
            raise CTranslate2FormatError(
                f"{self.path}: truncated: {what} needs bytes {self.offset}..{end} "
                f"but the file has {len(self.data)} bytes"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        length = self.unpack("H", f"length of {what}")
        raw = bytes(self.take(length, what))
        if not raw.endswith(b"\0"):
            raise CTranslate2FormatError(
                f"{self.path}: {what} at byte {self.offset - length} is not NUL-terminated"
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as error:
            raise CTranslate2FormatError(f"{self.path}: {what} is not UTF-8 ({error})") from error


def model_bin_path(model_dir_or_bin: str | Path) -> Path:
    """Accept either a CTranslate2 model directory or the `model.bin` inside it."""
    path = Path(model_dir_or_bin)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no CTranslate2 model.bin here")
    return path


def read_model_bin(model_dir_or_bin: str | Path) -> CTranslate2Model:
    """Parse a whole `model.bin` (format version 6) into torch tensors."""
    path = model_bin_path(model_dir_or_bin)
    cursor = _Cursor(bytearray(path.read_bytes()), path)
    version = cursor.unpack("I", "format version")
    if version != SUPPORTED_FORMAT_VERSION:
        raise CTranslate2FormatError(
            f"{path}: not a CTranslate2 model.bin of format version {SUPPORTED_FORMAT_VERSION} "
            f"(first 4 bytes read as version {version})"
        )
    spec = cursor.string("spec name")
    revision = cursor.unpack("I", "spec revision")
    count = cursor.unpack("I", "tensor count")
    variables: dict[str, torch.Tensor] = {}
    for index in range(count):
        name = cursor.string(f"name of tensor {index}")
        rank = cursor.unpack("B", f"rank of '{name}'")
        shape = [cursor.unpack("I", f"shape of '{name}'") for _ in range(rank)]
        code = cursor.unpack("B", f"dtype of '{name}'")
        if code not in _DTYPES:
            raise CTranslate2FormatError(f"{path}: tensor '{name}' has unknown dtype code {code}")
        dtype = _DTYPES[code]
        nbytes = cursor.unpack("I", f"byte count of '{name}'")
        expected = dtype.itemsize * math.prod(shape)
        if nbytes != expected:
            raise CTranslate2FormatError(
                f"{path}: tensor '{name}' ({shape}, {dtype}) declares {nbytes} bytes, expected {expected}"
            )
        # Slicing a bytearray copies into a fresh, aligned buffer that torch may own.
        raw = cursor.take(nbytes, f"data of '{name}'")
        variables[name] = (
            torch.frombuffer(raw, dtype=dtype).reshape(shape) if nbytes else torch.empty(shape, dtype=dtype)
        )
    aliases: dict[str, str] = {}
    alias_count = cursor.unpack("I", "alias count")
    for index in range(alias_count):
        alias = cursor.string(f"alias {index}")
        aliases[alias] = cursor.string(f"target of alias '{alias}'")
    if cursor.offset != len(cursor.data):
        raise CTranslate2FormatError(
            f"{path}: {len(cursor.data) - cursor.offset} unexpected bytes after the aliases (corrupt file?)"
        )
    return CTranslate2Model(path, spec, revision, variables, aliases)


def whisper_from_ctranslate2(model_dir_or_bin: str | Path) -> tuple[WhisperConfig, dict[str, torch.Tensor]]:
    """Convert a CTranslate2 Whisper model into (`WhisperConfig`, float32 state dict of `WhisperModel`).

    The state dict holds encoder and decoder, so `WhisperModel(config).load_state_dict(sd, strict=True)`
    succeeds; positional tables are copied from the file, so outputs match CTranslate2's own.
    """
    model = read_model_bin(model_dir_or_bin)
    if model.spec != WHISPER_SPEC:
        raise CTranslate2FormatError(f"{model.path}: holds a '{model.spec}', not a {WHISPER_SPEC}")
    for side in ("encoder", "decoder"):
        activation = model.attribute(f"{side}/activation")
        if activation is not None and activation != _GELU:
            raise CTranslate2FormatError(f"{model.path}: {side} activation code {activation} is not GELU")
    config = _whisper_config(model)
    state: dict[str, torch.Tensor] = {}
    _convert_encoder(model, config, state)
    _convert_decoder(model, config, state)
    return config, {key: value.contiguous() for key, value in state.items()}


def _layer_count(model: CTranslate2Model, side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    indices = {int(match.group(1)) for name in model.variables if (match := pattern.match(name))}
    if not indices or indices != set(range(len(indices))):
        raise CTranslate2FormatError(f"{model.path}: {side} layers are missing or not numbered 0..n-1")
    return len(indices)


def _whisper_config(model: CTranslate2Model) -> WhisperConfig:
    conv1 = model.tensor("encoder/conv1/weight")
    d_model, n_mels = int(conv1.shape[0]), int(conv1.shape[1])
    vocab_size = int(model.tensor("decoder/embeddings/weight").shape[0])
    # Multilingual vocabularies (51865, large-v3: 51866) put <|endoftext|> one slot later than English-only.
    end_of_text = 50257 if vocab_size >= 51865 else 50256
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=_layer_count(model, "encoder"),
        decoder_layers=_layer_count(model, "decoder"),
        encoder_attention_heads=model.attribute("encoder/num_heads") or d_model // _WHISPER_HEAD_DIM,
        decoder_attention_heads=model.attribute("decoder/num_heads") or d_model // _WHISPER_HEAD_DIM,
        encoder_ffn_dim=int(model.tensor("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        decoder_ffn_dim=int(model.tensor("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        max_source_positions=int(model.tensor("encoder/position_encodings/encodings").shape[0]),
        max_target_positions=int(model.tensor("decoder/position_encodings/encodings").shape[0]),
        activation_function="gelu",
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
        decoder_start_token_id=end_of_text + 1,
    )


def _linear(model: CTranslate2Model, state: dict[str, torch.Tensor], source: str, target: str) -> None:
    state[f"{target}.weight"] = model.float_tensor(f"{source}/weight")
    state[f"{target}.bias"] = model.float_tensor(f"{source}/bias")


def _layer_norm(model: CTranslate2Model, state: dict[str, torch.Tensor], source: str, target: str) -> None:
    state[f"{target}.weight"] = model.float_tensor(f"{source}/gamma")
    state[f"{target}.bias"] = model.float_tensor(f"{source}/beta")


def _split_projections(
    model: CTranslate2Model, state: dict[str, torch.Tensor], source: str, target: str, names: tuple[str, ...]
) -> None:
    """Split a fused (Q,K,V) or (K,V) projection into transformers' separate ones; K has no bias there."""
    weights = model.float_tensor(f"{source}/weight").chunk(len(names), dim=0)
    biases = model.float_tensor(f"{source}/bias").chunk(len(names), dim=0)
    for name, weight, bias in zip(names, weights, biases, strict=True):
        state[f"{target}.{name}_proj.weight"] = weight
        if name == "k":
            if bias.abs().max().item() != 0.0:
                raise CTranslate2FormatError(
                    f"{model.path}: '{source}' has a non-zero key bias; Whisper has none"
                )
        else:
            state[f"{target}.{name}_proj.bias"] = bias


def _convert_feed_forward(
    model: CTranslate2Model, state: dict[str, torch.Tensor], source: str, target: str
) -> None:
    _layer_norm(model, state, f"{source}/ffn/layer_norm", f"{target}.final_layer_norm")
    _linear(model, state, f"{source}/ffn/linear_0", f"{target}.fc1")
    _linear(model, state, f"{source}/ffn/linear_1", f"{target}.fc2")


def _convert_self_attention(
    model: CTranslate2Model, state: dict[str, torch.Tensor], source: str, target: str
) -> None:
    _layer_norm(model, state, f"{source}/self_attention/layer_norm", f"{target}.self_attn_layer_norm")
    _split_projections(
        model, state, f"{source}/self_attention/linear_0", f"{target}.self_attn", ("q", "k", "v")
    )
    _linear(model, state, f"{source}/self_attention/linear_1", f"{target}.self_attn.out_proj")


def _convert_encoder(model: CTranslate2Model, config: WhisperConfig, state: dict[str, torch.Tensor]) -> None:
    for conv in ("conv1", "conv2"):
        _linear(model, state, f"encoder/{conv}", f"encoder.{conv}")
    state["encoder.embed_positions.weight"] = model.float_tensor("encoder/position_encodings/encodings")
    for index in range(config.encoder_layers):
        source, target = f"encoder/layer_{index}", f"encoder.layers.{index}"
        _convert_self_attention(model, state, source, target)
        _convert_feed_forward(model, state, source, target)
    _layer_norm(model, state, "encoder/layer_norm", "encoder.layer_norm")


def _convert_decoder(model: CTranslate2Model, config: WhisperConfig, state: dict[str, torch.Tensor]) -> None:
    state["decoder.embed_tokens.weight"] = model.float_tensor("decoder/embeddings/weight")
    state["decoder.embed_positions.weight"] = model.float_tensor("decoder/position_encodings/encodings")
    for index in range(config.decoder_layers):
        source, target = f"decoder/layer_{index}", f"decoder.layers.{index}"
        _convert_self_attention(model, state, source, target)
        cross = f"{source}/attention"
        _layer_norm(model, state, f"{cross}/layer_norm", f"{target}.encoder_attn_layer_norm")
        _linear(model, state, f"{cross}/linear_0", f"{target}.encoder_attn.q_proj")
        _split_projections(model, state, f"{cross}/linear_1", f"{target}.encoder_attn", ("k", "v"))
        _linear(model, state, f"{cross}/linear_2", f"{target}.encoder_attn.out_proj")
        _convert_feed_forward(model, state, source, target)
    _layer_norm(model, state, "decoder/layer_norm", "decoder.layer_norm")
