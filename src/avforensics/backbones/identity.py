"""Identifiers of the weights a backbone was built from, recorded in detector checkpoints.

A checkpoint stores only trainable weights; the frozen backbone is named by where it came from and the
sha256 of its weight bytes, so a rebuild can check it got the very same weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsId:
    """name: architecture name from sizes.py (or "custom"); format: huggingface / openai / ctranslate2 /
    random; source: what the caller passed (path, hub id or installed name); sha256: of the weight files,
    None for random init."""

    name: str
    format: str
    source: str
    sha256: str | None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def sha256_of_files(paths: Iterable[Path]) -> str:
    """sha256 over the bytes of `paths` in the given order (shards of one checkpoint hash as one stream)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
