"""Celeb-DF v2 (Li et al. 2020): Celeb-real/, YouTube-real/, Celeb-synthesis/ and List_of_testing_videos.txt.

The test list has lines `<label> <folder>/<file>.mp4` where, unusually, 1 means REAL. The folder is the
ground truth for the label; the list only decides the split (everything not listed is train). The list's
label convention is checked against the folders: a list written the other way round (0 = real) is
accepted with a warning, a list that agrees with neither convention is an error. Identity: `idN` of
Celeb-real/`idN_NNNN` and the target `idT` of Celeb-synthesis/`idT_idS_NNNN` (the person whose video it
is); YouTube-real clips have no identity but their own. Visual-only benchmark: audio_label -1.
"""

from __future__ import annotations

import logging
from pathlib import Path

from avforensics.data.adapters.base import (
    DatasetAdapter,
    DatasetMetadataError,
    face_record,
    require_root,
    warn_missing,
)
from avforensics.data.records import FAKE, REAL, VideoRecord

log = logging.getLogger(__name__)

FOLDERS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
TEST_LIST = "List_of_testing_videos.txt"


def read_test_list(listing: Path) -> dict[str, int]:
    """Relative path -> the label written in the list (1 real, 0 fake in the official file)."""
    entries = {}
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0] not in ("0", "1"):
            raise DatasetMetadataError(
                f"{listing}:{number}: expected '<0|1> <folder>/<file>.mp4', got {line!r}"
            )
        entries[fields[1]] = int(fields[0])
    return entries


def _check_convention(listing: Path, written: dict[str, int]) -> None:
    """Raise unless the list's labels agree with the folders under 1=real (or, with a warning, 0=real)."""
    truth = {path: FOLDERS.get(path.split("/")[0]) for path in written}
    if None in truth.values():
        unknown = next(path for path, label in truth.items() if label is None)
        raise DatasetMetadataError(f"{listing}: {unknown} is not in one of {sorted(FOLDERS)}")
    if all(written[path] == 1 - label for path, label in truth.items()):
        return
    if all(written[path] == label for path, label in truth.items()):
        log.warning(
            "%s: labels use 1 = fake (the official list uses 1 = real); folders decide anyway", listing
        )
        return
    raise DatasetMetadataError(f"{listing}: labels agree with the folders under neither 1=real nor 1=fake")


class CelebDFAdapter(DatasetAdapter):
    name = "celebdf"
    description = "Celeb-DF v2: Celeb-real/, YouTube-real/, Celeb-synthesis/, List_of_testing_videos.txt"
    expected = f"Celeb-real/, YouTube-real/, Celeb-synthesis/ and {TEST_LIST} (Celeb-DF v2)"

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = require_root(self.name, root, TEST_LIST, self.expected)
        listing = root / TEST_LIST
        written = read_test_list(listing)
        _check_convention(listing, written)
        warn_missing(self.name, listing, [path for path in written if not (root / path).is_file()])
        records = []
        for folder, label in FOLDERS.items():
            for path in sorted((root / folder).glob("*.mp4")):
                relative = path.relative_to(root).as_posix()
                identity = path.stem.split("_")[0] if folder != "YouTube-real" else f"youtube{path.stem}"
                records.append(
                    face_record(
                        self.name,
                        root,
                        path,
                        label,
                        method="real" if label == REAL else "celeb-synthesis",
                        identity=identity,
                        split="test" if relative in written else "train",
                    )
                )
        return records
