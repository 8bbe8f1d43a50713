"""What `detect` scores: files, folders (searched recursively for videos) and glob patterns."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from avforensics.data.storage import is_url

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts", ".mts", ".3gp",
)
_GLOB_CHARACTERS = set("*?[")


def expand_inputs(arguments: list[str]) -> tuple[list[str], list[str]]:
    """(inputs, unmatched): every file named, every video under a folder, every file a pattern matches.

    Inputs are absolute paths, first occurrence kept. A file named explicitly is taken whatever its type
    (so a non-video gets an error record saying so); in folders only video suffixes are taken. A path that
    does not exist is kept as an input too (its record says it is missing); a pattern that matches nothing
    is returned in `unmatched`. fsspec URLs (s3://bucket/videos/, memory://x/*.mp4) are expanded the same
    way and stay URLs.
    """
    found: dict[str, None] = {}
    unmatched: list[str] = []
    for argument in arguments:
        if is_url(argument):
            files = _remote_inputs(argument)
            if files is None:
                unmatched.append(argument)
            found.update((url, None) for url in files or ())
        elif _GLOB_CHARACTERS & set(argument) and not Path(argument).exists():
            matches = sorted(glob.glob(argument, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            files += [f for m in matches if Path(m).is_dir() for f in _videos_under(Path(m))]
            if not files:
                unmatched.append(argument)
            found.update((str(path.absolute()), None) for path in files)
        elif Path(argument).is_dir():
            found.update((str(path.absolute()), None) for path in _videos_under(Path(argument)))
        else:
            found[str(Path(argument).absolute())] = None
    return list(found), unmatched


def _remote_inputs(url: str) -> list[str] | None:
    """Inputs an fsspec URL names, as URLs, in the same way as local ones (None: a pattern matching
    nothing)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if _GLOB_CHARACTERS & set(path) and not fs.exists(path):
        matches = sorted(fs.glob(path))
        files = [m for m in matches if fs.isfile(m)]
        files += [f for m in matches if fs.isdir(m) for f in _remote_videos_under(fs, m)]
        return [fs.unstrip_protocol(f) for f in files] or None
    if fs.isdir(path):
        return [fs.unstrip_protocol(f) for f in _remote_videos_under(fs, path)]
    return [fs.unstrip_protocol(path)]


def _remote_videos_under(fs: Any, folder: str) -> list[str]:
    return sorted(f for f in fs.find(folder) if Path(f).suffix.lower() in VIDEO_SUFFIXES)


def _videos_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def known_fake_periods(manifest: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Fake periods (seconds) per absolute video path from a labelled manifest (docs/datasets.md columns
    `path`, `label`, `fake_periods`): a fake video without periods is fake throughout, a real one never."""
    from avforensics.data.adapters.manifest import read_manifest
    from avforensics.data.records import FAKE

    periods: dict[str, list[tuple[float, float]]] = {}
    for record in read_manifest("labels", Path(manifest)):
        whole = [(0.0, float("inf"))] if record.label == FAKE else []
        periods[str(Path(record.path).absolute())] = list(record.fake_periods) or whole
    return periods
