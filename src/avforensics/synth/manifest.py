"""The corpus manifest: one `SynthVideo` row per file, written as manifest.csv and manifest.json."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_CSV = "manifest.csv"
MANIFEST_JSON = "manifest.json"
_JSON_FIELDS = ("fake_periods", "face_boxes")


@dataclass(frozen=True)
class SynthVideo:
    """A generated clip and everything known about it.

    `identity` is the real person whose scene it is; `donor` the identity whose face or voice was used by
    a manipulation ("" if none). `fake_periods` are [start, end] seconds ([[0, duration]] when the whole
    clip is fake, [] when real). `face_boxes` are the renderer's true skin-outline boxes [x1, y1, x2, y2]
    in pixels at t = 0, 1, 2, ... seconds.
    """

    path: str
    label: int
    video_label: int
    audio_label: int
    category: str
    methods: str
    identity: str
    donor: str
    duration: float
    n_frames: int
    fps: int
    width: int
    height: int
    sample_rate: int
    channels: int
    fake_periods: list[list[float]]
    difficulty: float
    seed: int
    face_boxes: list[list[float]]


def write_manifest(out_dir: str | Path, videos: list[SynthVideo]) -> None:
    """Write manifest.csv (list fields as JSON strings) and manifest.json, rows in path order."""
    out_dir = Path(out_dir)
    rows = [dataclasses.asdict(video) for video in sorted(videos, key=lambda v: v.path)]
    (out_dir / MANIFEST_JSON).write_text(json.dumps(rows, indent=1) + "\n")
    names = [field.name for field in dataclasses.fields(SynthVideo)]
    with open(out_dir / MANIFEST_CSV, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if k in _JSON_FIELDS else v for k, v in row.items()})


def read_manifest(out_dir: str | Path) -> list[SynthVideo]:
    """The rows of `out_dir`/manifest.json."""
    path = Path(out_dir) / MANIFEST_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no synthetic corpus manifest here")
    rows: list[dict[str, Any]] = json.loads(path.read_text())
    return [SynthVideo(**row) for row in rows]
