"""Decoding for the data tools: the media decoder's warnings are collected per video, not printed.

Audits and preparation run over thousands of files; a warning such as "no audio stream" belongs in that
video's report entry, next to its id, rather than scrolled past on the terminal.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from avforensics.media.decode import DecodedVideo, decode
from avforensics.media.errors import MediaWarning


def decode_collecting_warnings(path: str | Path, **options: Any) -> tuple[DecodedVideo, list[str]]:
    """`avforensics.media.decode.decode(path, **options)` and the MediaWarnings it raised, as text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MediaWarning)
        decoded = decode(path, **options)
    return decoded, [str(warning.message) for warning in caught if issubclass(warning.category, MediaWarning)]
