"""KoDF (Kwon et al. 2021): `original_videos/`, `synthesized_videos/<method>/` (often in `kodf_release/`).

Only the top of the layout is known publicly: a clip is fake iff it lies under `synthesized_videos`, and the
folder below it names the method (`fo` = FOMM, `fsgan`, ... ; others are not documented). The folder below
`original_videos` (or below the method folder) is taken as the subject id: that is a guess, so identity-based
protocols on KoDF should be checked against your copy. The metadata CSVs are not read (their names and
columns are not documented). AVAD's face-track re-encoding (`real_set/pycrop/*.avi`,
`fake_set/pycrop/*.avi`) is accepted as well. Audio-driven methods (ATFHP, Wav2Lip) keep the real voice and
the other methods change only the face, but this is not stated per clip, so fakes get audio_label -1.
"""

from __future__ import annotations

from pathlib import Path

from avforensics.data.adapters.base import DatasetAdapter, DatasetLayoutError, face_record, find_dataset_root
from avforensics.data.adapters.manifest import VIDEO_SUFFIXES
from avforensics.data.records import FAKE, REAL, UNKNOWN, VideoRecord

#: Method folder names as they appear in public code, mapped to the method's name in the KoDF paper.
KNOWN_METHODS = {
    "fo": "fomm",
    "fomm": "fomm",
    "fsgan": "fsgan",
    "faceswap": "faceswap",
    "dfl": "deepfacelab",
    "deepfacelab": "deepfacelab",
    "atfhp": "atfhp",
    "wav2lip": "wav2lip",
    "audio_driven": "audio-driven",
}
#: The audio-driven methods: the usual KoDF subset for audio-visual cross-dataset tests.
AUDIO_DRIVEN = ("atfhp", "wav2lip", "audio-driven")


def _videos(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES)


def _subject(path: Path, folder: Path) -> str:
    """The first folder below `folder` on the way to `path` (the subject id, by assumption), or ""."""
    parts = path.relative_to(folder).parts
    return parts[0] if len(parts) > 1 else ""


class KoDFAdapter(DatasetAdapter):
    name = "kodf"
    description = "KoDF: original_videos/ + synthesized_videos/<method>/ (or AVAD's real_set|fake_set/pycrop)"
    expected = (
        "original_videos/ and synthesized_videos/<method>/ folders (KoDF release, possibly under "
        "kodf_release/), or AVAD's real_set/pycrop/ and fake_set/pycrop/"
    )

    def records(self, root: str | Path) -> list[VideoRecord]:
        if not Path(root).is_dir():
            raise DatasetLayoutError(self.name, root, self.expected)
        release = find_dataset_root(root, "synthesized_videos")
        if release is not None and (release / "original_videos").is_dir():
            records = self._release(release)
        else:
            avad = find_dataset_root(root, "fake_set")
            if avad is None or not (avad / "real_set").is_dir():
                raise DatasetLayoutError(self.name, root, self.expected)
            records = self._avad(avad)
        if not records:
            raise DatasetLayoutError(self.name, root, f"{self.expected}, with video files in them")
        return records

    def _release(self, root: Path) -> list[VideoRecord]:
        records = [
            self._record(root, path, REAL, "real", _subject(path, root / "original_videos"))
            for path in _videos(root / "original_videos")
        ]
        for method_folder in sorted(p for p in (root / "synthesized_videos").iterdir() if p.is_dir()):
            method = KNOWN_METHODS.get(method_folder.name.lower(), method_folder.name.lower())
            records.extend(
                self._record(root, path, FAKE, method, _subject(path, method_folder))
                for path in _videos(method_folder)
            )
        return records

    def _avad(self, root: Path) -> list[VideoRecord]:
        return [
            self._record(root, path, label, "real" if label == REAL else "", identity="")
            for folder, label in (("real_set", REAL), ("fake_set", FAKE))
            for path in _videos(root / folder)
        ]

    def _record(self, root: Path, path: Path, label: int, method: str, identity: str) -> VideoRecord:
        audio_label = REAL if label == REAL else UNKNOWN
        return face_record(
            self.name, root, path, label, audio_label=audio_label, method=method, identity=identity
        )
