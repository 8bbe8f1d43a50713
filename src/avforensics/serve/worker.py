"""Worker processes: each takes queued jobs from the store and scores them with `avforensics.inference`.

A job is scored by `score_one` (the function behind `avforensics detect`) once per model asked for, and
its timeline drawn by `plot_timeline`; the records differ from detect's only in naming the upload instead
of the server's file. Workers die with their server (Linux parent-death signal, and a parent check between
jobs), so after a `kill -9` of the server no orphan finishes a job the restarted server runs again; and
should one survive anyway, its claim no longer holds and its result is dropped (store.py).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avforensics.serve.files import JobFiles
from avforensics.serve.store import Job, JobStore

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs (picklable: it crosses into a spawned process)."""

    database: Path
    jobs_folder: Path
    checkpoints: dict[str, Path]  # model key -> checkpoint
    threads: int
    batch_size: int = 8
    device: str = "cpu"


def run_job(job: Job, store: JobStore, files: JobFiles, detectors: dict[str, Any],
            load_detector: Callable[[str], Any]) -> bool:
    """Score a claimed job with each of its models and finish it; False when the claim was lost."""
    from avforensics.inference.cli import score_one
    from avforensics.inference.plots import plot_timeline
    from avforensics.inference.report import Report

    results: dict[str, dict[str, Any]] = {}
    for index, key in enumerate(job.models):
        stage = f"scoring with {key} ({index + 1}/{len(job.models)})"
        if not store.progress(job, index / len(job.models), stage):
            return False
        if key not in detectors:
            detectors[key] = load_detector(key)
        record = _as_upload(score_one(detectors[key], job.media_path), job.media_path, job.input_name)
        if record["status"] == "ok":
            plot_timeline(Report.from_dict(record), files.timeline(job.id, index), job.fake_periods)
        results[key] = record
    failures = [f"{key}: {r['error']}: {r['reason']}" for key, r in results.items() if r["status"] != "ok"]
    state = "failed" if len(failures) == len(results) else "done"
    finished = store.finish(job, state, results, "; ".join(failures) or None)
    if not finished and store.get(job.id) is None:
        files.remove(job.id)  # deleted while running: drop what this run wrote
    return finished


def worker_main(config: WorkerConfig, parent_pid: int, name: str) -> None:
    """Process entry point: take and run jobs until the server goes away or sends SIGTERM."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops the workers
    logging.basicConfig(level=logging.INFO, format=f"%(levelname)s {name}: %(message)s")
    import torch

    from avforensics.inference.detector import Detector

    torch.set_num_threads(config.threads)
    store, files = JobStore(config.database), JobFiles(config.jobs_folder)
    detectors: dict[str, Any] = {}

    def load(key: str) -> Any:
        return Detector.from_checkpoint(config.checkpoints[key], batch_size=config.batch_size,
                                        device=config.device)

    while os.getppid() == parent_pid:
        job = store.claim(name)
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        log.info("job %s: %s with %s", job.id, job.input_name, ", ".join(job.models))
        try:
            run_job(job, store, files, detectors, load)
        except Exception as error:  # a job that breaks scoring fails with the reason; the worker goes on
            log.exception("job %s failed", job.id)
            store.finish(job, "failed", {}, f"{type(error).__name__}: {error}")


class WorkerPool:
    """The server's worker processes: started and stopped with the app, restarted when one dies (its job
    is queued again, or failed after `max_attempts` tries)."""

    def __init__(self, config: WorkerConfig, count: int, store: JobStore, max_attempts: int) -> None:
        self.config, self.count, self.store, self.max_attempts = config, count, store, max_attempts
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._generation = 0

    @property
    def alive(self) -> int:
        return sum(process.is_alive() for process in self._processes.values())

    def start(self) -> None:
        for _ in range(self.count):
            self._spawn()
        self._supervisor.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Terminate the workers (killed after `timeout` s: the store survives that); jobs they were
        running go back to the queue."""
        self._stopping.set()
        for process in self._processes.values():
            process.terminate()
        for name, process in self._processes.items():
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join()
            self.store.recover(self.max_attempts, worker=name)
        if self._supervisor.is_alive():
            self._supervisor.join(timeout)

    def _spawn(self) -> None:
        self._generation += 1
        name = f"worker-{os.getpid()}-{self._generation}"
        process = self._context.Process(target=worker_main, args=(self.config, os.getpid(), name),
                                        name=name, daemon=True)
        process.start()
        self._processes[name] = process

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for name, process in list(self._processes.items()):
                if process.is_alive() or self._stopping.is_set():
                    continue
                log.warning("%s exited with code %s; starting another", name, process.exitcode)
                del self._processes[name]
                self.store.recover(self.max_attempts, worker=name)
                self._spawn()


def _as_upload(record: dict[str, Any], server_path: str, name: str) -> dict[str, Any]:
    """detect's record with the upload's name wherever it names the server's copy of the file."""
    def renamed(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(server_path, name)
        if isinstance(value, dict):
            return {key: renamed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [renamed(item) for item in value]
        return value

    return renamed(record)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
