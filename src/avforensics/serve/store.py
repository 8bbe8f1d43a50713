"""The job store: jobs, their events and the API tokens in one SQLite database (WAL) under the data folder.

Every state change is one transaction, so a job survives a `kill -9` at any point. A worker takes a job
with `claim`, which gives it a fresh claim token; `progress` and `finish` only act while that token still
holds, so a job is finished exactly once even when a worker outlives its server (its job was requeued
and claimed again meanwhile) or the job was deleted under it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    input_name TEXT NOT NULL,
    media_path TEXT NOT NULL,
    owns_media INTEGER NOT NULL,
    models TEXT NOT NULL,
    fake_periods TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    claim TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    results TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS events (job_id TEXT NOT NULL, at REAL NOT NULL, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id);
CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL);
"""


_COLUMNS = ("id", "state", "input_name", "media_path", "owns_media", "models", "fake_periods", "progress",
            "stage", "claim", "worker", "attempts", "error", "results", "created", "started", "finished")


class QueueFull(Exception):
    """The queue holds its maximum number of waiting jobs."""


@dataclass
class Job:
    """One job as stored. `results` maps each model key to its `detect` record (a report or an error)."""

    id: str
    state: str
    input_name: str
    media_path: str
    owns_media: bool
    models: list[str]
    fake_periods: list[tuple[float, float]]
    progress: float = 0.0
    stage: str = ""
    attempts: int = 0
    error: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    claim: str | None = None

    @property
    def finished_or_failed(self) -> bool:
        return self.state in ("done", "failed")

    def summary(self) -> dict[str, Any]:
        """The public view of a job (no server paths, no claim token)."""
        return {
            "id": self.id, "state": self.state, "input_name": self.input_name, "models": self.models,
            "progress": round(self.progress, 4), "stage": self.stage, "attempts": self.attempts,
            "error": self.error, "created": self.created, "started": self.started, "finished": self.finished,
        }


class JobStore:
    """Jobs in SQLite at `path`; safe to use from several threads and processes (one connection per call)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    # --- jobs -------------------------------------------------------------------------------------------
    def create(self, job: Job, queue_limit: int) -> Job:
        """Insert a queued job, unless `queue_limit` jobs are already waiting (raises QueueFull)."""
        with self._transaction() as connection:
            waiting = connection.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if waiting >= queue_limit:
                raise QueueFull(f"{waiting} jobs are waiting, the queue holds at most {queue_limit}")
            job.state, job.created = "queued", time.time()
            connection.execute(
                "INSERT INTO jobs (id, state, input_name, media_path, owns_media, models, fake_periods, "
                "created) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job.id, job.input_name, job.media_path, int(job.owns_media), json.dumps(job.models),
                 json.dumps(job.fake_periods), job.created),
            )
            _event(connection, job.id, "queued")
        return job

    def get(self, job_id: str) -> Job | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def recent(self, limit: int = 200) -> list[Job]:
        """The most recent jobs first, without their results (a history page does not need the reports)."""
        columns = ", ".join(name for name in _COLUMNS if name != "results")
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {columns}, NULL AS results FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_job(row) for row in rows]

    def ids(self) -> set[str]:
        with self._connect() as connection:
            return {row[0] for row in connection.execute("SELECT id FROM jobs")}

    def queued_count(self) -> int:
        with self._connect() as connection:
            return connection.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]

    def claim(self, worker: str) -> Job | None:
        """Take the oldest queued job for `worker`: it becomes running with a fresh claim token."""
        if self.queued_count() == 0:  # idle workers poll: a read does not take the write lock
            return None
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT * FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            claim = secrets.token_hex(8)
            connection.execute(
                "UPDATE jobs SET state = 'running', claim = ?, worker = ?, attempts = attempts + 1, "
                "started = ?, progress = 0, stage = 'starting' WHERE id = ?",
                (claim, worker, time.time(), row["id"]),
            )
            _event(connection, row["id"], "running")
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return _job(row)

    def progress(self, job: Job, fraction: float, stage: str) -> bool:
        """Record progress of a claimed job; False when the claim no longer holds (deleted or requeued)."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE jobs SET progress = ?, stage = ? WHERE id = ? AND state = 'running' AND claim = ?",
                (fraction, stage, job.id, job.claim),
            ).rowcount
        return changed == 1

    def finish(self, job: Job, state: str, results: dict[str, Any], error: str | None = None) -> bool:
        """Close a claimed job as done or failed with its results, once; False when the claim no longer
        holds (then nothing changes)."""
        if state not in ("done", "failed"):
            raise ValueError(f"a job finishes as done or failed, not {state!r}")
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE jobs SET state = ?, results = ?, error = ?, progress = 1, stage = ?, finished = ?, "
                "claim = NULL WHERE id = ? AND state = 'running' AND claim = ?",
                (state, json.dumps(results, allow_nan=False), error, state, time.time(), job.id, job.claim),
            ).rowcount
            if changed:
                _event(connection, job.id, state)
        return changed == 1

    def recover(self, max_attempts: int, worker: str | None = None) -> tuple[list[str], list[str]]:
        """(requeued, failed): jobs left running by a killed server (or by `worker`, when it died) are
        queued again, or failed when already tried `max_attempts` times (a file that kills its worker)."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT id, attempts FROM jobs WHERE state = 'running' AND (? IS NULL OR worker = ?)",
                (worker, worker),
            ).fetchall()
            requeued = [row["id"] for row in rows if row["attempts"] < max_attempts]
            failed = [row["id"] for row in rows if row["attempts"] >= max_attempts]
            for job_id in requeued:
                connection.execute(
                    "UPDATE jobs SET state = 'queued', claim = NULL, progress = 0, stage = 'requeued' "
                    "WHERE id = ?", (job_id,),
                )
                _event(connection, job_id, "requeued")
            for job_id in failed:
                connection.execute(
                    "UPDATE jobs SET state = 'failed', claim = NULL, stage = 'failed', finished = ?, "
                    "error = ? WHERE id = ?",
                    (time.time(), f"interrupted {max_attempts} times while running; not tried again", job_id),
                )
                _event(connection, job_id, "failed")
        return requeued, failed

    def delete(self, job_id: str) -> Job | None:
        """Remove a job and its events; returns it (None if unknown). Its files are the caller's."""
        with self._transaction() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            connection.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            connection.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        return _job(row)

    def events(self, job_id: str) -> list[str]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT event FROM events WHERE job_id = ? ORDER BY rowid", (job_id,)
            ).fetchall()
        return [row["event"] for row in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per state (every state present, zero when none)."""
        with self._connect() as connection:
            rows = connection.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {row["state"]: row["n"] for row in rows}

    def processing_seconds(self) -> tuple[int, float]:
        """(count, total seconds) from start of the last attempt to finish, over finished jobs."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(finished - started), 0) FROM jobs "
                "WHERE state IN ('done', 'failed') AND started IS NOT NULL"
            ).fetchone()
        return int(row[0]), float(row[1])

    # --- tokens -----------------------------------------------------------------------------------------
    def add_token(self, name: str = "") -> str:
        """Make a new API token; only its SHA-256 is stored, the token itself is returned once."""
        token = secrets.token_urlsafe(32)
        with self._transaction() as connection:
            connection.execute("INSERT INTO tokens VALUES (?, ?, ?)", (_digest(token), name, time.time()))
        return token

    def revoke_token(self, token: str) -> bool:
        """Forget a token; False when it was not known."""
        with self._transaction() as connection:
            return connection.execute("DELETE FROM tokens WHERE hash = ?", (_digest(token),)).rowcount == 1

    def has_tokens(self) -> bool:
        with self._connect() as connection:
            return connection.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] > 0

    def token_valid(self, token: str) -> bool:
        digest = _digest(token)
        with self._connect() as connection:
            stored = [row[0] for row in connection.execute("SELECT hash FROM tokens")]
        return any(hmac.compare_digest(digest, known) for known in stored)

    # --- connections ------------------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _event(connection: sqlite3.Connection, job_id: str, event: str) -> None:
    connection.execute("INSERT INTO events VALUES (?, ?, ?)", (job_id, time.time(), event))


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], state=row["state"], input_name=row["input_name"], media_path=row["media_path"],
        owns_media=bool(row["owns_media"]), models=json.loads(row["models"]),
        fake_periods=[tuple(p) for p in json.loads(row["fake_periods"])], progress=row["progress"],
        stage=row["stage"], attempts=row["attempts"], error=row["error"],
        results=json.loads(row["results"]) if row["results"] else {}, created=row["created"],
        started=row["started"], finished=row["finished"], claim=row["claim"],
    )
