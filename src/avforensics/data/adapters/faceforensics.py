"""FaceForensics++ (Rössler et al. 2019) with FaceShifter and DeepFakeDetection, as downloaded.

`original_sequences/youtube/<c>/videos/NNN.mp4` and `manipulated_sequences/<method>/<c>/videos/TTT_SSS.mp4`
for one compression `<c>` (raw, c23, c40; c23 by default). Splits come from the official pair lists
`train.json`, `val.json`, `test.json` (lists of ["TTT", "SSS"]; both ids are reals of that split, and the
fakes are TTT_SSS and SSS_TTT), looked for in `splits/` or `dataset/splits/` under the root or given with
`splits_dir`. The lists live in the FaceForensics GitHub repository, not in the download, so without them
split stays "" and a warning says so. FF++ has no usable audio: audio_label -1, audio_present False.
DeepFakeDetection (actors) clips are outside the pair lists; their identity is the leading actor number.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from avforensics.data.adapters.base import DatasetAdapter, DatasetMetadataError, face_record, require_root
from avforensics.data.records import FAKE, REAL, VideoRecord

log = logging.getLogger(__name__)

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
_SPLIT_FILES = {"train": "train.json", "val": "val.json", "test": "test.json"}


def read_pair_splits(splits_dir: Path) -> dict[str, str]:
    """Video stem (NNN or TTT_SSS) -> split, from the official pair lists."""
    split_of: dict[str, str] = {}
    for split, filename in _SPLIT_FILES.items():
        listing = splits_dir / filename
        pairs = json.loads(listing.read_text(encoding="utf-8"))
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise DatasetMetadataError(f"{listing}: expected a JSON list of [target, source] id pairs")
        for target, source in pairs:
            for stem in (target, source, f"{target}_{source}", f"{source}_{target}"):
                split_of[stem] = split
    return split_of


class FaceForensicsAdapter(DatasetAdapter):
    name = "faceforensics"
    description = (
        "FaceForensics++ (+FaceShifter, DFD): original_sequences/, manipulated_sequences/<method>/<c>/"
    )
    expected = (
        "original_sequences/ and manipulated_sequences/<method>/<compression>/videos/ (FaceForensics++)"
    )

    def __init__(self, compression: str = "c23", splits_dir: str | Path | None = None) -> None:
        self.compression = compression
        self.splits_dir = Path(splits_dir) if splits_dir else None

    def records(self, root: str | Path) -> list[VideoRecord]:
        root = require_root(self.name, root, "manipulated_sequences", self.expected)
        split_of = self._splits(root)
        records = []
        for kind in ("youtube", "actors"):
            for path in sorted(
                (root / "original_sequences" / kind / self.compression / "videos").glob("*.mp4")
            ):
                records.append(self._record(root, path, REAL, "real", kind == "actors", split_of))
        for method in METHODS:
            folder = root / "manipulated_sequences" / method / self.compression / "videos"
            for path in sorted(folder.glob("*.mp4")):
                records.append(
                    self._record(root, path, FAKE, method, method == "DeepFakeDetection", split_of)
                )
        if not records:
            raise DatasetMetadataError(
                f"{root}: no {self.compression} videos under original_sequences/*/"
                f"{self.compression}/videos or manipulated_sequences/*/{self.compression}/videos"
            )
        return records

    def _splits(self, root: Path) -> dict[str, str]:
        candidates = [self.splits_dir] if self.splits_dir else [root / "splits", root / "dataset" / "splits"]
        for folder in candidates:
            if all((folder / name).is_file() for name in _SPLIT_FILES.values()):
                return read_pair_splits(folder)
        log.warning(
            "%s: official split lists (%s) not found in %s; records get no split",
            root,
            ", ".join(_SPLIT_FILES.values()),
            " or ".join(map(str, candidates)),
        )
        return {}

    def _record(
        self, root: Path, path: Path, label: int, method: str, actors: bool, split_of: dict[str, str]
    ) -> VideoRecord:
        stem = path.stem
        identity = stem.split("_")[0]
        return face_record(
            self.name,
            root,
            path,
            label,
            method=method,
            identity=f"actor{identity}" if actors else identity,
            split="" if actors else split_of.get(stem, ""),
            audio_present=False,
            extra={"compression": self.compression},
        )
