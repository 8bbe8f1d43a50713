"""Decoding for the data tools: the media decoder's warnings are kept per video, not printed.

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
    """`avforensics.media.decode.decode(path, **options)` with its MediaWarnings silenced and returned as
    "<path>: <message>" lines, taken from `DecodedVideo.warnings` (the decoder's own record of them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaWarning)
        decoded = decode(path, **options)
    return decoded, [f"{decoded.path}: {message}" for message in decoded.warnings]
