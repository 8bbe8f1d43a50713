"""`avforensics serve` as a real process on 127.0.0.1 (with the tiny test detector registered), and helpers
to upload to it and wait for jobs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import avforensics

FIXTURES = Path(__file__).with_name("inference_fixtures.py")
SOURCE = Path(avforensics.__file__).parents[1]


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


class ServerProcess:
    """`avforensics serve` started by `inference_fixtures.py` (so worker processes know tiny_av too)."""

    def __init__(self, checkpoint: Path, data: Path, *options: str, workers: int = 1) -> None:
        self.data, self.workers = data, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, str(FIXTURES), "serve", "--model", str(checkpoint),
                        "--data", str(data), "--host", "127.0.0.1", "--port", str(self.port),
                        "--workers", str(workers), *options]
        self.log = data.parent / f"{data.name}-server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> ServerProcess:
        """Start and wait until /healthz answers with every worker alive."""
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(FIXTURES.parent), str(SOURCE)])}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text()}")
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=2).json()
                if health["workers_alive"] == self.workers:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the server did not come up in {timeout} s:\n{self.log.read_text()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the server process, as a crash would (its workers die with it)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def upload(client: httpx.Client, video: Path, **fields: Any) -> httpx.Response:
    with video.open("rb") as handle:
        return client.post("/api/v1/jobs", files={"file": (video.name, handle, "video/mp4")}, data=fields)


def wait_finished(client: httpx.Client, job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll until every job is done or failed; their status by id."""
    deadline = time.monotonic() + timeout
    status: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        status = {job_id: client.get(f"/api/v1/jobs/{job_id}").json() for job_id in job_ids}
        if all(s["state"] in ("done", "failed") for s in status.values()):
            return status
        time.sleep(0.3)
    raise TimeoutError(f"jobs not finished after {timeout} s: {status}")
