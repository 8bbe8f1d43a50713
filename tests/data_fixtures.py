"""Fixture trees for the dataset adapters, reproducing each dataset's layout, metadata and media quirks.

Every media file is a real, decodable tiny clip (2 s, 50 frames of 32x32 at 25 fps, 16 kHz mono), so a
test can decode any file of a tree as `prepare` and the loaders would. Encoding costs tens of ms, so each
kind of clip (`ClipKind`) is encoded once per test session and its bytes are copied to every path that
needs it; copies, not hard links, so a test that damages one file cannot damage the others. The metadata
states the clip's real frame and sample counts, so it agrees with the media.
"""

from __future__ import annotations

import csv
import functools
import json
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np

from avforensics.media.encode import write_video

RACES = ("African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)")

CLIP_SIZE = 32
CLIP_FPS = 25
CLIP_FRAMES = 50
CLIP_RATE = 16000
CLIP_SECONDS = CLIP_FRAMES / CLIP_FPS
CLIP_SAMPLES = CLIP_FRAMES * CLIP_RATE // CLIP_FPS
#: FakeAVCeleb and AV-Deepfake1M fakes start with a short silence (the shortcut of Smeu et al. 2024).
FAKE_LEADING_SILENCE = 0.3

#: "real": picture + tone from the first sample; "silent-start": the tone starts after
#: FAKE_LEADING_SILENCE; "mute": no audio track (FF++, Celeb-DF, DFDC's `no_audio` test clips);
#: "mp3": audio only (IDForge v2 shots).
ClipKind = Literal["real", "silent-start", "mute", "mp3"]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def write_tiny_video(path: Path, audio: np.ndarray | None, frames: int = 8, fps: float = 25.0) -> Path:
    """A decodable 32x32 mp4 with the given 16 kHz mono audio (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.full((frames, CLIP_SIZE, CLIP_SIZE, 3), 128, dtype=np.uint8)
    return write_video(path, images, fps=fps, audio=audio, sample_rate=CLIP_RATE)


@functools.cache
def clip_bytes(kind: ClipKind) -> bytes:
    """The encoded clip of one kind, encoded on first use and kept for the rest of the session."""
    time = np.arange(CLIP_SAMPLES) / CLIP_RATE
    tone = (0.2 * np.sin(2 * np.pi * 440 * time)).astype(np.float32)
    if kind == "silent-start":
        tone[: round(FAKE_LEADING_SILENCE * CLIP_RATE)] = 0
    with tempfile.TemporaryDirectory() as folder:
        if kind == "mp3":
            mp3 = Path(folder) / "clip.mp3"
            path = write_video(mp3, None, audio=tone, sample_rate=CLIP_RATE, audio_codec="libmp3lame")
        else:
            audio = None if kind == "mute" else tone
            path = write_tiny_video(Path(folder) / "clip.mp4", audio, frames=CLIP_FRAMES, fps=CLIP_FPS)
        return path.read_bytes()


def write_clip(path: Path, kind: ClipKind = "real") -> Path:
    """A copy of the session's clip of `kind` at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clip_bytes(kind))
    return path


# --- FakeAVCeleb v1.2 ----------------------------------------------------------------------------------

#: (type folder, method, file name pattern) for every (method, type) pair of meta_data.csv.
FAKEAVCELEB_KINDS = (
    ("RealVideo-RealAudio", "real", "00001.mp4"),
    ("RealVideo-FakeAudio", "rtvc", "00001_fake.mp4"),
    ("FakeVideo-RealAudio", "faceswap", "00002_{t1}_By3wxX0dyDw.mp4"),
    ("FakeVideo-RealAudio", "fsgan", "00003_{t1}_eQTviHjyISo.mp4"),
    ("FakeVideo-RealAudio", "wav2lip", "00004_{t1}_wavtolip.mp4"),
    ("FakeVideo-FakeAudio", "wav2lip", "00005_{t1}_wavtolip.mp4"),
    ("FakeVideo-FakeAudio", "faceswap-wav2lip", "00006_{t1}_By3wxX0dyDw_faceswap_{t2}_wavtolip.mp4"),
    ("FakeVideo-FakeAudio", "fsgan-wav2lip", "00007_{t1}_By3wxX0dyDw_{t2}_wavtolip.mp4"),
)
#: An FVFA-FS clip named like a plain Wav2Lip one, as 2 of FACTOR's 32 FVFA-FS files are: the method must
#: come from meta_data.csv, not from the file name.
PLAIN_NAMED_FACESWAP = "FakeVideo-FakeAudio/African/men/id00000/00006_id00001_wavtolip.mp4"
#: A truncated clip: real copies hold a few files that do not decode (one loader lists four).
DAMAGED_FAKEAVCELEB = "FakeVideo-FakeAudio/Caucasian (European)/women/id00009/00005_id00008_wavtolip.mp4"
_CATEGORY_LETTER = {
    "RealVideo-RealAudio": "A",
    "RealVideo-FakeAudio": "B",
    "FakeVideo-RealAudio": "C",
    "FakeVideo-FakeAudio": "D",
}


def fakeavceleb_identities() -> list[tuple[str, str, str, str]]:
    """(source id, partner id of the same race, race, gender): two people per race, one man one woman."""
    people = []
    for index, race in enumerate(RACES):
        first, second = f"id{index * 2:05d}", f"id{index * 2 + 1:05d}"
        people += [(first, second, race, "men"), (second, first, race, "women")]
    return people


def write_fakeavceleb(base: Path) -> Path:
    """FakeAVCeleb double-nested under `base`; 10 identities x 8 kinds = 80 files, 83 metadata rows.

    Quirks: trailing-comma header; `path` column = file name, 10th column = `FakeAVCeleb/...` directory;
    race folders with spaces and parentheses; same basenames in different folders; one exact duplicate
    row; one row listing an existing file under a second method; one row whose file is absent; a `.txt`
    next to each real clip; PLAIN_NAMED_FACESWAP; DAMAGED_FAKEAVCELEB; fakes start with a silence.
    Returns the directory the user would point at (the outer folder).
    """
    outer = base / "FakeAVCeleb_v1.2"
    root = outer / "FakeAVCeleb_v1.2"
    rows = []
    for source, partner, race, gender in fakeavceleb_identities():
        for video_type, method, pattern in FAKEAVCELEB_KINDS:
            target1 = "-" if method in ("real", "rtvc") else partner
            target2 = partner if method in ("faceswap-wav2lip", "fsgan-wav2lip") else "-"
            filename = pattern.format(t1=target1, t2=target2)
            directory = f"{video_type}/{race}/{gender}/{source}"
            if method == "faceswap-wav2lip" and PLAIN_NAMED_FACESWAP.startswith(f"{directory}/"):
                filename = Path(PLAIN_NAMED_FACESWAP).name
            write_clip(root / directory / filename, "real" if method == "real" else "silent-start")
            if method == "real":
                (root / directory / "00001.txt").write_text(f"Identity  : \t{source}\n")
            rows.append(
                [
                    source,
                    target1,
                    target2,
                    method,
                    _CATEGORY_LETTER[video_type],
                    video_type,
                    race,
                    gender,
                    filename,
                    f"FakeAVCeleb/{directory}",
                ]
            )
    duplicate_conflict = list(rows[5])  # D wav2lip file of id00000, listed again as faceswap-wav2lip
    duplicate_conflict[3] = "faceswap-wav2lip"
    absent = list(rows[0])
    absent[8] = "09999.mp4"
    rows += [list(rows[1]), duplicate_conflict, absent]
    damaged = root / DAMAGED_FAKEAVCELEB
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with (root / "meta_data.csv").open("w", newline="") as handle:
        handle.write("source,target1,target2,method,category,type,race,gender,path,\n")
        csv.writer(handle).writerows(rows)
    return outer


# --- DFDC and DFDC Preview ----------------------------------------------------------------------------


def write_dfdc(root: Path) -> Path:
    """Two train parts (the second nested one level deeper), validation and test with labels.csv.

    Part 0: 2 reals (one without `original`, one with `"original": null`) + 2 fakes of the first real;
    part 1: 1 real + 1 fake. validation: 2 clips; test: 3 clips, one flagged `no_audio` in metadata.json
    and without an audio track.
    """
    part0 = root / "train" / "dfdc_train_part_0"
    part1 = root / "train" / "dfdc_train_part_1" / "dfdc_train_part_1"
    entries0 = {
        "realaaaaaa.mp4": {"label": "REAL", "split": "train"},
        "realbbbbbb.mp4": {"label": "REAL", "split": "train", "original": None},
        "fakeaaaaa1.mp4": {"label": "FAKE", "split": "train", "original": "realaaaaaa.mp4"},
        "fakeaaaaa2.mp4": {"label": "FAKE", "split": "train", "original": "realaaaaaa.mp4"},
    }
    entries1 = {
        "realcccccc.mp4": {"label": "REAL", "split": "train"},
        "fakeccccc1.mp4": {"label": "FAKE", "split": "train", "original": "realcccccc.mp4"},
    }
    for folder, entries in ((part0, entries0), (part1, entries1)):
        for name in entries:
            write_clip(folder / name)
        (folder / "metadata.json").write_text(json.dumps(entries))
    _labelled(root / "validation", {"valreal001.mp4": 0, "valfake001.mp4": 1})
    _labelled(
        root / "test",
        {"tstreal001.mp4": 0, "tstfake001.mp4": 1, "tstfake002.mp4": 1},
        mute={"tstfake001.mp4"},
    )
    (root / "test" / "metadata.json").write_text(
        json.dumps(
            {
                "tstreal001.mp4": {
                    "augmentations": {"augmenter": {"framerate_change": {"fps": 20}}},
                    "is_fake": 0,
                },
                "tstfake001.mp4": {"augmentations": {"augmenter": {"no_audio": {}}}, "is_fake": 1},
                "tstfake002.mp4": {"augmentations": {}, "is_fake": 1},
            }
        )
    )
    return root


def _labelled(folder: Path, labels: dict[str, int], mute: Collection[str] = ()) -> None:
    for name in labels:
        write_clip(folder / name, "mute" if name in mute else "real")
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(labels.items())


def write_dfdc_preview(root: Path) -> Path:
    """dataset.json with 2 reals (train, test) and 3 fakes of method_A / method_B."""
    entries = {
        "original_videos/643049/643049_A/1955231_A_001.mp4": {"label": "real", "set": "train"},
        "original_videos/643050/643050_A/1955232_A_001.mp4": {"label": "real", "set": "test"},
        "method_A/643049/643049_A/1955231_A_001.mp4": {"label": "fake", "set": "train"},
        "method_A/643050/643050_A/1955232_A_001.mp4": {"label": "fake", "set": "test"},
        "method_B/643049/643049_B/1955231_B_001.mp4": {
            "label": "fake",
            "set": "train",
            "target_id": "643049",
        },
    }
    for relative in entries:
        write_clip(root / relative)
    (root / "dataset.json").write_text(json.dumps(entries))
    return root


# --- LAV-DF and AV-Deepfake1M -------------------------------------------------------------------------


def write_lavdf(base: Path, min_json: bool = True) -> Path:
    """LAV-DF nested LAV-DF/LAV-DF/LAV-DF/ (as Hugging Face downloads it) with the full field set: one
    real, V-only, A-only, both per split; `min_json` adds metadata.min.json (no timestamps, transcript)."""
    root = base / "LAV-DF" / "LAV-DF" / "LAV-DF"
    entries = []
    number = 0
    for split in ("train", "dev", "test"):
        real_file = f"{split}/{number:06d}.mp4"
        for modify_video, modify_audio in ((False, False), (True, False), (False, True), (True, True)):
            file = f"{split}/{number:06d}.mp4"
            fake = modify_video or modify_audio
            entries.append(
                {
                    "file": file,
                    "n_fakes": int(fake),
                    "fake_periods": [[1.0, 1.4]] if fake else [],
                    "timestamps": [["not", 0.0, 0.2]],
                    "duration": CLIP_SECONDS,
                    "transcript": "not the point",
                    "original": real_file if fake else None,
                    "modify_video": modify_video,
                    "modify_audio": modify_audio,
                    "split": split,
                    "video_frames": CLIP_FRAMES,
                    "audio_channels": 1,
                    "audio_frames": CLIP_SAMPLES,
                }
            )
            write_clip(root / file)
            number += 1
    (root / "metadata.json").write_text(json.dumps(entries))
    if min_json:
        short = [
            {k: v for k, v in entry.items() if k not in ("timestamps", "transcript")} for entry in entries
        ]
        (root / "metadata.min.json").write_text(json.dumps(short))
    return base / "LAV-DF"


AV1M_VARIANTS = {
    "real": "real",
    "fake_video_real_audio": "visual_modified",
    "real_video_fake_audio": "audio_modified",
    "fake_video_fake_audio": "both_modified",
}


def write_avdeepfake1m(root: Path) -> Path:
    """train_metadata.json (list) and train_metadata/<file>.json per video, as released; val_metadata/ only
    (a copy without the list); test_files.txt: 4 + 4 + 2 clips. Fakes start with a silence."""
    train, val = [], []
    for subset, listing, identity in (("train", train, "id00001"), ("val", val, "id00002")):
        for variant, modify_type in AV1M_VARIANTS.items():
            file = f"{identity}/_c3CCbnZEbU/00011/{variant}.mp4"
            visual = [[0.5, 0.9]] if "fake_video" in variant else []
            audio = [[0.5, 0.9]] if "fake_audio" in variant else []
            listing.append(
                {
                    "file": file,
                    "original": None if variant == "real" else f"{identity}/_c3CCbnZEbU/00011.mp4",
                    "split": subset,
                    "modify_type": modify_type,
                    "audio_model": "YourTTS",
                    "fake_segments": visual or audio,
                    "visual_fake_segments": visual,
                    "audio_fake_segments": audio,
                    "video_frames": CLIP_FRAMES,
                    "audio_frames": CLIP_SAMPLES,
                }
            )
            write_clip(root / subset / file, "real" if variant == "real" else "silent-start")
    (root / "train_metadata.json").write_text(json.dumps(train))
    for subset, listing in (("train", train), ("val", val)):
        for entry in listing:
            target = root / f"{subset}_metadata" / entry["file"].replace(".mp4", ".json")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(entry))
    tests = ["id00003/abcdefghijk/00001/real.mp4", "id00003/abcdefghijk/00002/real.mp4"]
    for file in tests:
        write_clip(root / "test" / file)
    (root / "test_files.txt").write_text("\n".join(tests) + "\n")
    return root


# --- KoDF, IDForge ------------------------------------------------------------------------------------


def write_kodf(base: Path) -> Path:
    """kodf_release/ with 3 real subjects, and fo / fsgan / wav2lip syntheses (2 + 1 + 2)."""
    root = base / "kodf_release"
    for subject in ("subject01", "subject02", "subject03"):
        write_clip(root / "original_videos" / subject / "clip0.mp4")
    for method, subjects in (
        ("fo", ("subject01", "subject02")),
        ("fsgan", ("subject03",)),
        ("wav2lip", ("subject01", "subject03")),
    ):
        for subject in subjects:
            write_clip(root / "synthesized_videos" / method / subject / "clip0.mp4")
    return base


IDFORGE_TYPES = ("pristine", "face_tts", "lip_rvc_textmismatch", "rvc_textmismatch", "tts_textgen")


def write_idforge_v1(base: Path) -> Path:
    """main/<type>/<id>/<id_vid>/<shot>.mp4, 5 types x 3 identities; header-less split lists by identity.

    Shot names follow each type's form: pristine `-K`, face swap `_K_<engine>`, RVC `-K.mp3.mp4`."""
    root = base / "IDForge_v1"
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for forgery_type in IDFORGE_TYPES:
        for identity, split in (("id00", "train"), ("id03", "val"), ("id35", "test")):
            suffix = {"pristine": "-1", "face_tts": "_1_simswap", "rvc_textmismatch": "-1.mp3"}.get(
                forgery_type, "_fake"
            )
            relative = f"{forgery_type}/{identity}/{identity}_01/{identity}_scene_0001{suffix}.mp4"
            write_clip(root / "main" / relative)
            lists[split].append(relative)
    for split, lines in lists.items():
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return base


def write_idforge_v2(root: Path) -> Path:
    """{train,test,ref}/<type>/<id>/<id_vid>/<shot>/frames_ndarray.npy (16 frames) + .mp3 + .txt (ref shot:
    no mp3); the first shot also has the optional super-resolved frames_ndarray_sr.npy."""
    shots = [
        ("train", "pristine", "id00"),
        ("train", "lip_rvc_textmismatch", "id00"),
        ("test", "face_tts", "id35"),
        ("ref", "pristine", "id00"),
    ]
    for split, forgery_type, identity in shots:
        shot = root / split / forgery_type / identity / f"{identity}_01" / f"{identity}_scene_0001.mp4"
        shot.mkdir(parents=True)
        np.save(shot / "frames_ndarray.npy", np.zeros((16, 8, 8, 3), dtype=np.uint8))
        if (split, forgery_type) == shots[0][:2]:
            np.save(shot / "frames_ndarray_sr.npy", np.zeros((16, 16, 16, 3), dtype=np.uint8))
        (shot / f"{shot.name}.txt").write_text("hello")
        if split != "ref":
            write_clip(shot / f"{shot.name}.mp3", "mp3")
    return root


# --- FaceForensics++, Celeb-DF v2 ---------------------------------------------------------------------


def write_faceforensics(root: Path) -> Path:
    """6 youtube reals (pairs 000/001 train, 002/003 val, 004/005 test); Deepfakes and FaceShifter fakes
    for both directions of each pair; one DFD actor pair; official split lists in splits/. No clip has
    an audio track."""
    pairs = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}
    (root / "splits").mkdir(parents=True)
    for split, listed in pairs.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(listed))
        for target, source in listed:
            for name in (target, source):
                write_clip(root / "original_sequences/youtube/c23/videos" / f"{name}.mp4", "mute")
            for method in ("Deepfakes", "FaceShifter"):
                for name in (f"{target}_{source}", f"{source}_{target}"):
                    write_clip(root / "manipulated_sequences" / method / "c23/videos" / f"{name}.mp4", "mute")
    for relative in (
        "original_sequences/actors/c23/videos/01__talking_angry_couch.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__talking_angry_couch__ABC.mp4",
    ):
        write_clip(root / relative, "mute")
    return root


def write_celebdf(root: Path) -> Path:
    """3 Celeb-real, 2 YouTube-real, 4 Celeb-synthesis; the test list (1 = real) names 2 reals, 2 fakes.
    Clips have no audio track: a visual-only benchmark (that the release has none is unverified)."""
    files = [
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id0_0001.mp4",
        "Celeb-real/id1_0000.mp4",
        "YouTube-real/00170.mp4",
        "YouTube-real/00171.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
        "Celeb-synthesis/id1_id0_0000.mp4",
        "Celeb-synthesis/id1_id0_0007.mp4",
        "Celeb-synthesis/id0_id1_0002.mp4",
    ]
    for relative in files:
        write_clip(root / relative, "mute")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n1 Celeb-real/id1_0000.mp4\n0 Celeb-synthesis/id1_id0_0007.mp4\n"
        "0 Celeb-synthesis/id0_id1_0002.mp4\n"
    )
    return root


# --- manifests: generic, DefakeAVMiT, synthetic corpus -------------------------------------------------


def write_manifest(root: Path, rows: list[dict[str, object]]) -> Path:
    """A manifest.csv with the union of the rows' keys as columns, and a clip at each row's `path` that
    has no file yet (tests that need particular media write it first)."""
    root.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    for path in {root / str(row["path"]) for row in rows}:
        if not path.exists():
            write_clip(path)
    return root


SYNTH_METHODS = {"RVRA": "real", "RVFA": "tts", "FVRA": "lipsync", "FVFA": "lipsync+tts"}


def synthetic_rows(identities: int = 6, per_category: int = 1) -> list[dict[str, object]]:
    """Rows as avforensics.synth writes them (its manifest.csv): every identity in all four categories."""
    rows = []
    for person in range(identities):
        for category, methods in SYNTH_METHODS.items():
            for take in range(per_category):
                video, audio = int(category[0] == "F"), int(category[2] == "F")
                rows.append(
                    {
                        "path": f"videos/p{person:02d}_{category}_{take}.mp4",
                        "label": int(video or audio),
                        "video_label": video,
                        "audio_label": audio,
                        "category": category,
                        "methods": methods,
                        "identity": f"person{person:02d}",
                        "donor": "" if methods == "real" else "person99",
                        "duration": CLIP_SECONDS,
                        "n_frames": CLIP_FRAMES,
                        "fps": CLIP_FPS,
                        "width": CLIP_SIZE,
                        "height": CLIP_SIZE,
                        "sample_rate": CLIP_RATE,
                        "channels": 1,
                        "fake_periods": json.dumps([[0.5, 1.5]] if video or audio else []),
                        "difficulty": 0.5,
                        "seed": person,
                        "face_boxes": json.dumps([[4, 4, 28, 28], [5, 4, 29, 28]]),
                    }
                )
    return rows
