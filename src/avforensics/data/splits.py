"""Split: the train/val/test record ids a protocol produced, publishable as CSV or JSON with a content hash.

The hash is the sha256 of a canonical listing (protocol, parameters, seed, then every `part<TAB>id` line in
part order and sorted id order), so two files with the same content have the same hash whatever their
format, and any edit (an id moved, added or removed, a parameter changed) is caught when the file is read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avforensics.data.records import VideoRecord

PARTS = ("train", "val", "test")
_CSV_MARKER = "# avforensics-split "


class SplitIntegrityError(ValueError):
    """A split file is malformed or its content does not match its recorded hash."""


@dataclass(frozen=True)
class Split:
    """Record ids per part, with the protocol name, its parameters and the seed that produced them."""

    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for part in PARTS:
            object.__setattr__(self, part, tuple(sorted(getattr(self, part))))
        seen: dict[str, str] = {}
        for part in PARTS:
            for record_id in getattr(self, part):
                if record_id in seen:
                    raise ValueError(
                        f"split {self.protocol}: {record_id} is in both {seen[record_id]} and {part}"
                    )
                seen[record_id] = part

    def parts(self) -> dict[str, tuple[str, ...]]:
        return {part: getattr(self, part) for part in PARTS}

    def listing(self) -> str:
        """The canonical text the hash is computed on."""
        header = json.dumps(
            {"protocol": self.protocol, "params": self.params, "seed": self.seed},
            sort_keys=True,
            separators=(",", ":"),
        )
        lines = [header] + [f"{part}\t{record_id}" for part in PARTS for record_id in getattr(self, part)]
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.listing().encode("utf-8")).hexdigest()

    def select(self, records: Iterable[VideoRecord]) -> dict[str, list[VideoRecord]]:
        """The records of each part; an id the split names but `records` lack is an error."""
        by_id = {record.id: record for record in records}
        missing = [record_id for ids in self.parts().values() for record_id in ids if record_id not in by_id]
        if missing:
            raise KeyError(
                f"split {self.protocol}: {len(missing)} id(s) not among the records, e.g. {missing[0]}"
            )
        return {part: [by_id[record_id] for record_id in ids] for part, ids in self.parts().items()}

    def _meta(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "params": self.params, "seed": self.seed, "sha256": self.sha256}

    def save(self, path: str | Path) -> Path:
        """Write as JSON (`.json`) or CSV (anything else); the file records the hash."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            text = json.dumps(
                {**self._meta(), "parts": {k: list(v) for k, v in self.parts().items()}}, indent=1
            )
        else:
            buffer = io.StringIO()
            buffer.write(_CSV_MARKER + json.dumps(self._meta(), sort_keys=True) + "\n")
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["part", "id"])
            writer.writerows((part, record_id) for part in PARTS for record_id in getattr(self, part))
            text = buffer.getvalue()
        path.write_text(text, encoding="utf-8")
        return path


def load_split(path: str | Path, expected_sha256: str | None = None) -> Split:
    """Read a split file, verify its recorded hash (and `expected_sha256` if given, e.g. from a paper)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    meta, parts = _parse_json(path, text) if path.suffix.lower() == ".json" else _parse_csv(path, text)
    try:
        split = Split(
            protocol=meta["protocol"],
            params=meta.get("params") or {},
            seed=int(meta.get("seed", 0)),
            **{part: tuple(parts.get(part, ())) for part in PARTS},
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SplitIntegrityError(f"{path}: not a valid split ({error})") from error
    recorded = meta.get("sha256")
    if recorded != split.sha256:
        raise SplitIntegrityError(
            f"{path}: content hash {split.sha256} does not match the recorded {recorded}: file edited "
            "or corrupted after it was written"
        )
    if expected_sha256 is not None and expected_sha256 != split.sha256:
        raise SplitIntegrityError(f"{path}: hash {split.sha256} is not the expected {expected_sha256}")
    return split


def _parse_json(path: Path, text: str) -> tuple[dict, dict[str, list[str]]]:
    try:
        data = json.loads(text)
        return data, {part: list(ids) for part, ids in data["parts"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise SplitIntegrityError(f"{path}: not a split JSON file ({error})") from error


def _parse_csv(path: Path, text: str) -> tuple[dict, dict[str, list[str]]]:
    first, _, body = text.partition("\n")
    if not first.startswith(_CSV_MARKER):
        raise SplitIntegrityError(f"{path}: first line must be '{_CSV_MARKER.strip()} {{...}}'")
    try:
        meta = json.loads(first[len(_CSV_MARKER) :])
    except json.JSONDecodeError as error:
        raise SplitIntegrityError(f"{path}: header line is not JSON ({error})") from error
    rows = list(csv.reader(io.StringIO(body)))
    if not rows or rows[0] != ["part", "id"]:
        raise SplitIntegrityError(f"{path}: second line must be the header 'part,id'")
    parts: dict[str, list[str]] = {part: [] for part in PARTS}
    for number, row in enumerate(rows[1:], start=3):
        if len(row) != 2 or row[0] not in parts:
            raise SplitIntegrityError(f"{path}:{number}: expected '<train|val|test>,<id>', got {row}")
        parts[row[0]].append(row[1])
    return meta, parts
