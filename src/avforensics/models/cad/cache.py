"""Cache of frozen-encoder outputs per clip, so training epochs after the first skip the frozen encoders.

CAD's shared branch reads a frozen CLIP and a frozen Whisper; their outputs for a clip never change while
the clip and the weights stay the same. Each clip's entry is keyed by

    sha256(video id, window, content digest of the clip's inputs, identifiers of the frozen weights, mode)

so an edited clip, another crop, other weights (or weights changed in place) or another audio mode is a
miss, never a stale hit. Entries live in an in-memory LRU bounded in bytes and, if a directory is given,
also on disk (one file per clip, written atomically), which survives processes and is shared by DDP ranks.
In memory an entry stays on the device that computed it (the model's: on a GPU the cache costs no copy);
entries read from disk arrive on the CPU and move to the model's device with the batch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from avforensics.backbones.tuning import LORA_MARKER

Features = dict[str, Tensor]


def tensor_digest(tensor: Tensor) -> bytes:
    """blake2b of a tensor's dtype, shape and bytes: a content hash of one clip's input."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()


class FrozenWeightsId:
    """Identifier of a frozen backbone's weights that follows in-place changes.

    Loaded weights are named by their files' sha256 (cheap); random weights, or loaded weights modified
    since, by a sha256 over the parameter values. A change is detected through the parameters' version
    counters (bumped by every in-place write, `load_state_dict` included), so the id is only recomputed
    when something was written. LoRA tensors are not part of the frozen weights and are skipped.
    """

    def __init__(self, backbone: nn.Module):
        self._backbone = backbone
        self._loaded_version: int | None = None
        self._version_and_id: tuple[int, str] | None = None

    def _parameters(self) -> list[tuple[str, Tensor]]:
        return [(n, p) for n, p in self._backbone.named_parameters() if LORA_MARKER not in n]

    def _version(self) -> int:
        return sum(parameter._version for _, parameter in self._parameters())

    def __call__(self) -> str:
        version = self._version()
        if self._loaded_version is None:
            self._loaded_version = version
        if self._version_and_id is None or self._version_and_id[0] != version:
            self._version_and_id = (version, self._compute(version))
        return self._version_and_id[1]

    def _compute(self, version: int) -> str:
        weights_id = getattr(self._backbone, "weights_id", None)
        name = weights_id.name if weights_id is not None else type(self._backbone).__name__
        if weights_id is not None and weights_id.sha256 and version == self._loaded_version:
            return f"{name}:{weights_id.format}:{weights_id.sha256}"
        digest = hashlib.sha256()
        for parameter_name, parameter in self._parameters():
            digest.update(parameter_name.encode())
            digest.update(tensor_digest(parameter))
        return f"{name}:values:{digest.hexdigest()}"


def clip_keys(
    video_ids: Sequence[str] | None,
    windows: Tensor | None,
    inputs: Sequence[Tensor],
    context: str,
) -> list[str]:
    """One cache key per clip of a batch; `inputs` are (B, ...) tensors, `context` names weights and mode."""
    batch = inputs[0].shape[0]
    inputs = [tensor.detach().cpu() for tensor in inputs]  # one copy per batch, not one per clip
    keys = []
    for row in range(batch):
        digest = hashlib.sha256(context.encode())
        digest.update(b"\0" + (video_ids[row] if video_ids is not None else "").encode())
        digest.update(b"\0" + (str(int(windows[row])) if windows is not None else "").encode())
        for tensor in inputs:
            digest.update(tensor_digest(tensor[row]))
        keys.append(digest.hexdigest())
    return keys


@dataclass
class CacheStats:
    hits: int = 0
    disk_hits: int = 0
    misses: int = 0


class FeatureCache:
    """Per-clip feature dicts under string keys: a byte-bounded LRU in memory, optionally backed by disk."""

    def __init__(self, max_bytes: int, directory: str | Path | None = None):
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self.directory = Path(directory) if directory else None
        self.stats = CacheStats()
        self._entries: OrderedDict[str, Features] = OrderedDict()
        self._bytes = 0

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay; their keys stay valid)."""
        self._entries.clear()
        self._bytes = 0

    def get(self, key: str) -> Features | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry
        entry = self._read(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self.stats.disk_hits += 1
        self._remember(key, entry)
        return entry

    def put(self, key: str, features: Features) -> None:
        """Keep `features` where they are (a clone, so a batch's storage is not pinned by one row)."""
        entry = {name: value.detach().clone() for name, value in features.items()}
        self._remember(key, entry)
        self._write(key, entry)

    def rows(
        self, keys: Sequence[str], compute: Callable[[Tensor], Features], device: torch.device
    ) -> Features:
        """Features of every clip of a batch: cached rows looked up, the others computed in one call.

        `compute(indices)` must return the features of the batch rows `indices` (a LongTensor on `device`),
        each tensor with those rows along its first axis. Rows cached on another device (read from disk, or
        computed before the model moved) are copied to `device`, asynchronously where the copy allows.
        """
        found = {row: entry for row, key in enumerate(keys) if (entry := self.get(key)) is not None}
        missing = [row for row in range(len(keys)) if row not in found]
        if missing:
            computed = compute(torch.tensor(missing, dtype=torch.long, device=device))
            for position, row in enumerate(missing):
                entry = {name: value[position] for name, value in computed.items()}
                self.put(keys[row], entry)
                found[row] = entry
        ordered = [found[row] for row in range(len(keys))]
        return {
            name: torch.stack([entry[name].to(device, non_blocking=True) for entry in ordered])
            for name in ordered[0]
        }

    def _remember(self, key: str, entry: Features) -> None:
        size = sum(value.numel() * value.element_size() for value in entry.values())
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._bytes -= sum(v.numel() * v.element_size() for v in self._entries.pop(key).values())
        self._entries[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= sum(value.numel() * value.element_size() for value in evicted.values())

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.pt"

    def _read(self, key: str) -> Features | None:
        if self.directory is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated or foreign file: recompute and overwrite it
            warnings.warn(f"{path}: unreadable feature-cache entry ({error}); recomputing", stacklevel=2)
            return None
        if not isinstance(entry, dict) or not all(isinstance(v, Tensor) for v in entry.values()):
            warnings.warn(f"{path}: feature-cache entry is not a dict of tensors; recomputing", stacklevel=2)
            return None
        return entry

    def _write(self, key: str, entry: Features) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save({name: value.cpu() for name, value in entry.items()}, stream)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
