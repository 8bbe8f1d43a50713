"""What every dataset adapter shares: the adapter base class, the layout error and small path helpers.

An adapter only reads metadata and lists files; it never decodes media, so listing a dataset of a million
clips stays cheap and the records can be produced on a machine without the codecs.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord

log = logging.getLogger(__name__)

#: Modality categories shared by FakeAVCeleb-style datasets and the synthetic corpus.
MODALITY_CATEGORIES = {(REAL, REAL): "RVRA", (REAL, FAKE): "RVFA", (FAKE, REAL): "FVRA", (FAKE, FAKE): "FVFA"}


class DatasetLayoutError(ValueError):
    """`root` does not look like the dataset; the message says what was expected there."""

    def __init__(self, dataset: str, root: str | Path, expected: str) -> None:
        super().__init__(f"{root}: does not look like {dataset}: expected {expected}")
        self.dataset, self.root, self.expected = dataset, Path(root), expected


class DatasetMetadataError(ValueError):
    """A metadata file of the dataset is malformed; the message names the file, line and reason."""


class DatasetAdapter(ABC):
    """Turns a dataset directory, exactly as distributed, into a list of VideoRecords."""

    #: registry name, used by `--dataset` and as `VideoRecord.dataset`
    name: str = ""
    #: one line for `list_adapters()` and the CLI help
    description: str = ""

    @abstractmethod
    def records(self, root: str | Path) -> list[VideoRecord]:
        """Every video under `root`; raises DatasetLayoutError if `root` is not this dataset."""


def find_dataset_root(root: str | Path, marker: str, max_depth: int = 3) -> Path | None:
    """The directory at or below `root` that contains `marker` (a file or folder name, or a glob).

    Archives of several datasets unpack one or more levels deeper than the name suggests
    (`FakeAVCeleb_v1.2/FakeAVCeleb_v1.2/`, `LAV-DF/LAV-DF/LAV-DF/`), so the root a user gives is searched
    breadth-first a few levels down; the shallowest match wins.
    """
    level = [Path(root)]
    for _ in range(max_depth + 1):
        for directory in level:
            if any(directory.glob(marker)):
                return directory
        level = sorted(child for directory in level for child in _subdirectories(directory))
    return None


def _subdirectories(directory: Path) -> Iterable[Path]:
    try:
        return [child for child in directory.iterdir() if child.is_dir() and not child.name.startswith(".")]
    except OSError:
        return []


def require_root(
    dataset: str, root: str | Path, markers: str | Sequence[str], expected: str, max_depth: int = 3
) -> Path:
    """Like find_dataset_root for the first of `markers` found (a release may be recognised by any of
    several files), but a missing root or marker raises DatasetLayoutError naming `expected`."""
    if not Path(root).is_dir():
        raise DatasetLayoutError(dataset, root, f"a directory ({expected})")
    for marker in (markers,) if isinstance(markers, str) else markers:
        found = find_dataset_root(root, marker, max_depth)
        if found is not None:
            return found
    raise DatasetLayoutError(dataset, root, expected)


def modality_category(video_label: int, audio_label: int) -> str:
    """RVRA / RVFA / FVRA / FVFA from per-modality labels, "" if either is unknown."""
    return MODALITY_CATEGORIES.get((video_label, audio_label), "")


def overall_label(video_label: int, audio_label: int) -> int:
    """Fake if either modality is fake; real only if both are known real."""
    if FAKE in (video_label, audio_label):
        return FAKE
    if video_label == REAL and audio_label == REAL:
        return REAL
    return UNKNOWN


def audio_visual_record(
    dataset: str, record_id: str, path: Path, video_label: int, audio_label: int, **fields: Any
) -> VideoRecord:
    """A record of a dataset that labels each modality: its overall label (fake if either is) and its
    RVRA/RVFA/FVRA/FVFA category follow from the two, derived here so every adapter derives them alike."""
    return VideoRecord(
        id=record_id,
        path=str(path),
        label=overall_label(video_label, audio_label),
        video_label=video_label,
        audio_label=audio_label,
        dataset=dataset,
        category=modality_category(video_label, audio_label),
        **fields,
    )


def face_record(
    dataset: str, root: Path, path: Path, label: int, *, audio_label: int = UNKNOWN, **fields: Any
) -> VideoRecord:
    """A record of a face-forgery dataset, which labels the picture only: the clip's label is its video
    label, and its audio label stays unknown unless the adapter knows better (KoDF's real clips are real in
    both). The id is the path under the dataset root (`relative_id`)."""
    return VideoRecord(
        id=relative_id(dataset, path, root),
        path=str(path),
        label=label,
        video_label=label,
        audio_label=audio_label,
        dataset=dataset,
        **fields,
    )


def relative_id(dataset: str, path: Path, root: Path) -> str:
    """Stable record id: dataset name + path relative to the dataset root, with forward slashes."""
    return f"{dataset}/{path.relative_to(root).as_posix()}"


def warn_missing(dataset: str, source: Path, missing: Sequence[str], shown: int = 3) -> None:
    """One warning for listed-but-absent files: real copies miss a few clips, and that must not be silent."""
    if missing:
        examples = ", ".join(missing[:shown])
        log.warning(
            "%s: %s lists %d file(s) not found under the dataset root; skipped (e.g. %s)",
            dataset,
            source,
            len(missing),
            examples,
        )


_LABEL_WORDS = {
    "1": FAKE,
    "fake": FAKE,
    "true": FAKE,
    "0": REAL,
    "real": REAL,
    "false": REAL,
    "-1": UNKNOWN,
    "": UNKNOWN,
    "unknown": UNKNOWN,
}


def parse_label(value: object, where: str) -> int:
    """A label written as 1/0/-1, fake/real/unknown or true/false (any case); `where` names file and line."""
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    if text not in _LABEL_WORDS:
        raise DatasetMetadataError(f"{where}: label {value!r} is not one of 1/0/-1, fake/real, true/false")
    return _LABEL_WORDS[text]


def parse_periods(value: object, where: str) -> tuple[tuple[float, float], ...]:
    """Fake periods from a JSON string or a list of [start, end] seconds; "" or None means none."""
    if value is None or value == "":
        return ()
    periods = json.loads(value) if isinstance(value, str) else value
    try:
        parsed = tuple((float(start), float(end)) for start, end in periods)
    except (TypeError, ValueError) as error:
        raise DatasetMetadataError(f"{where}: fake periods {value!r} are not [[start, end], ...]") from error
    if any(end < start for start, end in parsed):
        raise DatasetMetadataError(f"{where}: a fake period ends before it starts: {value!r}")
    return parsed
