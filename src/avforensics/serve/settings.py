"""What one `avforensics serve` instance is configured with (the command's options, as one value)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20


@dataclass
class ServeSettings:
    """Options of the service; see docs/service.md for each.

    models: checkpoint paths offered to users. data: folder of the job database and the job files.
    server_paths: folder under which `POST /api/v1/jobs/path` may name files (None: that endpoint is off).
    """

    models: list[Path]
    data: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_upload_mb: float = 1024
    max_duration_s: float = 1800
    queue_limit: int = 200
    require_token: bool = False
    cors_origins: list[str] = field(default_factory=list)
    server_paths: Path | None = None
    max_attempts: int = 3
    batch_size: int = 8
    device: str = "cpu"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)

    @property
    def token_required(self) -> bool:
        """Tokens guard the service whenever it listens beyond this machine, or when asked to."""
        return self.require_token or not is_loopback(self.host)

    @property
    def database(self) -> Path:
        return self.data / "jobs.sqlite"

    @property
    def jobs_folder(self) -> Path:
        return self.data / "jobs"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
