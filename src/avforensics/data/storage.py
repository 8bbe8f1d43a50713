"""Paths that may be fsspec URLs (s3://bucket/prepared, gs://..., memory://...): where prepare and detect
read and write, so datasets and outputs can live in object storage as well as on a local disk.

A local path (or file:// URL) stays a `pathlib.Path`, with its crash-safe temporary-and-rename writes; a URL
becomes a `upath.UPath`, the pathlib interface over fsspec, whose objects appear whole when written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".partial"


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a remote (non-local) fsspec location."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def location(path: str | os.PathLike[str]) -> Path:
    """`path` as a pathlib object: a Path for a local path or file:// URL, else a UPath over fsspec."""
    text = os.fspath(path) if not isinstance(path, str) else path
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if not is_url(text):
        return Path(text)
    from upath import UPath

    return UPath(text)


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write `path` so that no reader ever sees it half-written, even if the process is killed.

    Locally: a temporary name in the same folder, flushed, fsynced and renamed into place. In object
    storage an object becomes visible only when its upload completes, so it is written directly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_url(path):
        with path.open(mode) as handle:
            write(handle)
        return
    temporary = path.with_name(f"{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    with open(temporary, mode) as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local file path with the content of `path`: itself when local, else a temporary download (FFmpeg
    reads local files; the download is removed afterwards). A missing remote file raises FileNotFoundError
    naming the URL."""
    if not is_url(path):
        yield path.removeprefix("file://")
        return
    source = location(path)
    with tempfile.TemporaryDirectory(prefix="avforensics-") as folder:
        target = Path(folder) / source.name
        try:
            with source.open("rb") as remote, open(target, "wb") as local:
                shutil.copyfileobj(remote, local, 1 << 20)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such file") from None
        yield str(target)
