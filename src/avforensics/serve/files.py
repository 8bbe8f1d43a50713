"""Where a job's files live: `<data>/jobs/<job id>/` holds the upload and the timeline pictures.

File names are the server's own (the client's file name is only shown, never used as a path), and job ids
are checked against the form `secrets.token_urlsafe` gives before any path is built from them.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from avforensics.inference.inputs import VIDEO_SUFFIXES

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_job_id() -> str:
    """128 random bits, URL-safe: a job link can be shared, not guessed."""
    return secrets.token_urlsafe(16)


def is_job_id(text: str) -> bool:
    return _JOB_ID.fullmatch(text) is not None


class JobFiles:
    """The job folders under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path:
        if not is_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.root / job_id

    def upload_path(self, job_id: str, client_name: str | None) -> Path:
        """`input.<suffix>` with the client's suffix only when it is a known video suffix."""
        suffix = Path(client_name or "").suffix.lower()
        return self.folder(job_id) / f"input{suffix if suffix in VIDEO_SUFFIXES else '.bin'}"

    def timeline(self, job_id: str, index: int) -> Path:
        return self.folder(job_id) / f"timeline-{index}.png"

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def sweep(self, known: set[str]) -> list[str]:
        """Remove folders of jobs the store does not know (uploads cut off by a crash); their ids."""
        orphans = [path.name for path in self.root.iterdir() if path.is_dir() and path.name not in known]
        for name in orphans:
            shutil.rmtree(self.root / name, ignore_errors=True)
        return orphans


def display_name(client_name: str | None) -> str:
    """The client's file name as shown on pages and in reports: its last path part, printable, short."""
    name = re.split(r"[\\/]", client_name or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"
