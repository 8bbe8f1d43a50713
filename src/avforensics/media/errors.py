"""Typed media errors and warnings: every failure names the file and the reason.

Callers that process folders catch `MediaError` per file and report `str(error)`, which reads
"<path>: <reason>", so a user can tell a truncated upload from a file that is not a video at all.
"""

from __future__ import annotations

import warnings
from pathlib import Path


class MediaError(Exception):
    """A media file that cannot be used; `path` is the file, `reason` says why in plain words."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Keep (path, reason) when errors cross process boundaries (decoding worker pools).
        return (type(self), (self.path, self.reason))


class MissingFileError(MediaError, FileNotFoundError):
    """The path does not exist (also a FileNotFoundError, so generic handlers still catch it)."""


class EmptyFileError(MediaError):
    """The file has zero bytes (typically an interrupted download or copy)."""


class NotMediaError(MediaError):
    """FFmpeg does not recognise the file as audio or video at all."""


class CorruptMediaError(MediaError):
    """A recognised media file that is damaged: truncated, or decoding fails part-way (reason says which)."""


class NoVideoStreamError(MediaError):
    """A video track was required but the file has none (e.g. an audio-only file)."""


class NoAudioStreamError(MediaError):
    """An audio track was required (`require_audio=True`) but the file has none."""


class MediaTooLongError(MediaError):
    """`decode()` was asked to hold more seconds in memory than its `max_duration` allows."""


class MediaTooShortError(MediaError):
    """The video is shorter than one clip window, so no window can be cut from it."""


class MediaWarning(UserWarning):
    """A flag about a file the caller can go on with (no audio track, audio starts late, padded tail...)."""


class MediaFlags:
    """The flags raised while reading one file: kept as a list (for reports) and issued as MediaWarning."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(f"{self.path}: {message}", MediaWarning, stacklevel=4)
