"""The `--jsonl` results file of `detect`: one JSON object per input, safe to kill and rerun.

Each record is appended, flushed and fsynced before the next input starts, so a killed run loses at most
the input in progress. On reopening, a torn last line (no newline, or not JSON) is cut off and that input
is scored again; inputs that already have a record are skipped: every input ends with exactly one record.

At an fsspec URL (s3://bucket/results.jsonl) objects cannot be appended to: the whole file is rewritten with
every record at most every `upload_seconds` and on close, so a killed run loses at most that much work.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from avforensics.data.storage import atomic_write, is_url, location


class ResultsFileError(ValueError):
    """The results file holds something `detect` did not write (a bad line before the last one)."""


class ResultsLog:
    """Append-only JSON-lines file of records keyed by their `input`."""

    def __init__(self, path: str | Path, upload_seconds: float = 30.0) -> None:
        self.path = location(path)
        self.remote = is_url(path)
        self.upload_seconds = upload_seconds
        self.records: dict[str, dict[str, Any]] = {}
        self.repaired = False
        self._handle: IO[str] | None = None
        self._uploaded = time.monotonic()
        self._unsaved = 0
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, last = lines[:-1], lines[-1]  # `last` is b"" when the file ends with a newline
        kept = 0
        for number, line in enumerate(complete, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if number == len(complete) and not last:
                    last = line  # the final line is torn even though a newline follows it: redo it
                    break
                raise ResultsFileError(f"{self.path}:{number}: not a detect record ({error})") from None
            if not isinstance(record, dict) or "input" not in record:
                raise ResultsFileError(f"{self.path}:{number}: not a detect record (no 'input' key)")
            self.records[record["input"]] = record
            kept += len(line) + 1
        if kept < len(data) and self.remote:
            self._upload()
            self.repaired = True
        elif kept < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(kept)
                os.fsync(handle.fileno())
            self.repaired = True

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (flushed and fsynced) before returning; at a URL, keep it and upload
        every record when `upload_seconds` have passed since the last upload."""
        if self.remote:
            self.records[record["input"]] = record
            self._unsaved += 1
            if time.monotonic() - self._uploaded >= self.upload_seconds:
                self._upload()
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(record, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[record["input"]] = record

    def _upload(self) -> None:
        lines = "".join(json.dumps(record, allow_nan=False) + "\n" for record in self.records.values())
        atomic_write(self.path, lambda handle: handle.write(lines), "w")
        self._uploaded, self._unsaved = time.monotonic(), 0

    def close(self) -> None:
        if self._unsaved:
            self._upload()
        if self._handle is not None:
            self._handle.close()
            self._handle = None
