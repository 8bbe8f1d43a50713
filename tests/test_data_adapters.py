"""Every adapter on a fixture tree that reproduces its dataset's layout and quirks."""

from __future__ import annotations

import logging
from collections import Counter

import data_fixtures as fx
import numpy as np
import pytest

from avforensics.data.adapters import DatasetLayoutError, DatasetMetadataError, get_adapter, list_adapters
from avforensics.data.decoding import decode_collecting_warnings
from avforensics.data.records import VideoRecord
from avforensics.data.silence import leading_silence_seconds
from avforensics.media.decode import DecodedVideo
from avforensics.media.errors import CorruptMediaError


def by_id(records):
    return {record.id: record for record in records}


def decodes(record: VideoRecord, frames: int = fx.CLIP_FRAMES, audio: bool = True) -> DecodedVideo:
    """The record's file through the package's decoder: the trees hold real clips, and a dataset without
    sound (FF++, DFDC's `no_audio` clips) must hold clips without an audio track."""
    decoded, _ = decode_collecting_warnings(record.path)
    assert (len(decoded.frames), decoded.audio_present) == (frames, audio)
    return decoded


def leading_silence(record: VideoRecord) -> float:
    return leading_silence_seconds(decodes(record).audio)


def test_registry_lists_every_dataset():
    assert set(list_adapters()) == {
        "fakeavceleb",
        "dfdc",
        "dfdc-preview",
        "lavdf",
        "avdeepfake1m",
        "kodf",
        "idforge-v1",
        "idforge-v2",
        "faceforensics",
        "celebdf",
        "defakeavmit",
        "manifest",
        "synthetic",
    }
    with pytest.raises(KeyError, match="unknown dataset 'nope'"):
        get_adapter("nope")


@pytest.mark.parametrize("name", sorted(list_adapters()))
def test_every_adapter_rejects_a_foreign_tree_saying_what_it_expected(name, tmp_path):
    fx.touch(tmp_path / "random" / "file.txt")
    with pytest.raises(DatasetLayoutError, match="does not look like") as error:
        get_adapter(name).records(tmp_path)
    assert len(error.value.expected) > 20


def test_fakeavceleb_quirks(tmp_path, caplog):
    root = fx.write_fakeavceleb(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = get_adapter("fakeavceleb").records(root)
    assert len(records) == 80
    assert "listed under two methods" in caplog.text and "not found" in caplog.text
    assert Counter(r.category for r in records) == {
        "RVRA": 10,
        "RVFA": 10,
        "FVRA-FS": 10,
        "FVRA-GAN": 10,
        "FVRA-WL": 10,
        "FVFA-WL": 10,
        "FVFA-FS": 10,
        "FVFA-GAN": 10,
    }
    records = by_id(records)
    real = records["fakeavceleb/RealVideo-RealAudio/Asian (East)/men/id00002/00001.mp4"]
    assert (real.label, real.video_label, real.audio_label, real.method) == (0, 0, 0, "real")
    assert (real.ethnicity, real.gender, real.identity) == ("Asian (East)", "men", "id00002")
    assert real.path.endswith(
        "FakeAVCeleb_v1.2/FakeAVCeleb_v1.2/RealVideo-RealAudio/Asian (East)/men/id00002/00001.mp4"
    )
    rvfa = records["fakeavceleb/RealVideo-FakeAudio/Asian (East)/men/id00002/00001_fake.mp4"]
    assert (rvfa.label, rvfa.video_label, rvfa.audio_label, rvfa.method) == (1, 0, 1, "rtvc")
    gan = next(r for r in records.values() if r.category == "FVFA-GAN" and r.extra["source"] == "id00002")
    assert (gan.video_label, gan.audio_label, gan.identity) == (1, 1, "id00003")  # target1 for fsgan rows
    conflicted = records["fakeavceleb/FakeVideo-FakeAudio/African/men/id00000/00005_id00001_wavtolip.mp4"]
    assert conflicted.method == "wav2lip" and conflicted.extra["other_methods"] == ["faceswap-wav2lip"]
    plain_named = records[f"fakeavceleb/{fx.PLAIN_NAMED_FACESWAP}"]
    assert (plain_named.method, plain_named.category) == ("faceswap-wav2lip", "FVFA-FS")
    assert leading_silence(real) < 0.05
    assert leading_silence(rvfa) == pytest.approx(fx.FAKE_LEADING_SILENCE, abs=0.05)
    with pytest.raises(CorruptMediaError):  # listed all the same: adapters never decode
        decode_collecting_warnings(records[f"fakeavceleb/{fx.DAMAGED_FAKEAVCELEB}"].path)


def test_fakeavceleb_accepts_renamed_race_folders(tmp_path):
    root = fx.write_fakeavceleb(tmp_path) / "FakeAVCeleb_v1.2"
    for type_folder in root.iterdir():
        if type_folder.is_dir():
            (type_folder / "Asian (East)").rename(type_folder / "Asian_East")
    records = get_adapter("fakeavceleb").records(root)
    assert len(records) == 80
    assert sum("/Asian_East/" in r.path for r in records) == 16


def test_fakeavceleb_reads_a_copy_with_named_filename_and_path_columns(tmp_path):
    root = fx.write_fakeavceleb(tmp_path)
    metadata = root / "FakeAVCeleb_v1.2" / "meta_data.csv"
    lines = metadata.read_text().splitlines()
    swapped = [",".join(line.split(",")[:8] + line.split(",")[8:10][::-1]) for line in lines[1:]]
    header = "source,target1,target2,method,category,type,race,gender,path,filename"
    metadata.write_text("\n".join([header, *swapped]) + "\n")
    records = get_adapter("fakeavceleb").records(root)
    assert len(records) == 80 and all(r.id.endswith(".mp4") for r in records)


def test_fakeavceleb_rejects_a_foreign_header(tmp_path):
    (tmp_path / "meta_data.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DatasetMetadataError, match="meta_data.csv: header"):
        get_adapter("fakeavceleb").records(tmp_path)


def test_dfdc(tmp_path):
    records = by_id(get_adapter("dfdc").records(fx.write_dfdc(tmp_path)))
    assert len(records) == 11
    assert Counter(r.split for r in records.values()) == {"train": 6, "val": 2, "test": 3}
    real = records["dfdc/train/dfdc_train_part_0/realbbbbbb.mp4"]
    assert (real.label, real.video_label, real.audio_label, real.identity) == (0, 0, 0, "realbbbbbb.mp4")
    assert (real.category, records["dfdc/test/tstfake001.mp4"].category) == ("RVRA", "")
    fake = records["dfdc/train/dfdc_train_part_1/dfdc_train_part_1/fakeccccc1.mp4"]
    assert (fake.label, fake.video_label, fake.audio_label, fake.identity) == (1, -1, -1, "realcccccc.mp4")
    assert records["dfdc/test/tstfake001.mp4"].audio_present is False
    assert records["dfdc/test/tstfake002.mp4"].audio_present is None
    decodes(records["dfdc/test/tstfake001.mp4"], audio=False)
    decodes(fake)
    assert records["dfdc/validation/valfake001.mp4"].label == 1


def test_dfdc_fake_without_original_is_an_error(tmp_path):
    part = tmp_path / "train" / "dfdc_train_part_0"
    fx.touch(part / "x.mp4")
    (part / "metadata.json").write_text('{"x.mp4": {"label": "FAKE", "split": "train", "original": null}}')
    with pytest.raises(DatasetMetadataError, match="x.mp4: a FAKE clip without `original`"):
        get_adapter("dfdc").records(tmp_path)


def test_dfdc_preview(tmp_path):
    records = get_adapter("dfdc-preview").records(fx.write_dfdc_preview(tmp_path))
    assert [(r.label, r.method, r.split, r.identity) for r in records] == [
        (1, "method_A", "train", "643049"),
        (1, "method_A", "test", "643050"),
        (1, "method_B", "train", "643049"),
        (0, "real", "train", "643049"),
        (0, "real", "test", "643050"),
    ]
    decodes(records[0])


@pytest.mark.parametrize("min_json", [True, False], ids=["with-min-json", "full-json-only"])
def test_lavdf(tmp_path, min_json):
    records = get_adapter("lavdf").records(fx.write_lavdf(tmp_path, min_json=min_json))
    assert len(records) == 12
    assert Counter(r.split for r in records) == {"train": 4, "val": 4, "test": 4}
    assert [r.category for r in records[:4]] == ["RVRA", "FVRA", "RVFA", "FVFA"]
    assert [r.label for r in records[:4]] == [0, 1, 1, 1]
    assert records[3].fake_periods == ((1.0, 1.4),) and records[0].fake_periods == ()
    assert records[3].identity == "train/000000.mp4" == records[0].identity
    decoded = decodes(records[3], frames=records[3].extra["video_frames"])
    assert len(decoded.audio) == records[3].extra["audio_frames"]


def test_avdeepfake1m_labels_come_from_the_data(tmp_path):
    records = by_id(get_adapter("avdeepfake1m").records(fx.write_avdeepfake1m(tmp_path)))
    assert len(records) == 10
    assert Counter(r.split for r in records.values()) == {"train": 4, "val": 4, "test": 2}
    both = records["avdeepfake1m/val/id00002/_c3CCbnZEbU/00011/fake_video_fake_audio.mp4"]
    assert (both.label, both.video_label, both.audio_label, both.category) == (1, 1, 1, "FVFA")
    assert both.identity == "id00002" and both.fake_periods == ((0.5, 0.9),)
    audio = records["avdeepfake1m/train/id00001/_c3CCbnZEbU/00011/real_video_fake_audio.mp4"]
    assert (audio.video_label, audio.audio_label) == (0, 1)
    hidden = records["avdeepfake1m/test/id00003/abcdefghijk/00001/real.mp4"]
    assert (hidden.label, hidden.video_label, hidden.audio_label) == (-1, -1, -1)
    decodes(both, frames=both.extra["video_frames"])
    assert leading_silence(audio) == pytest.approx(fx.FAKE_LEADING_SILENCE, abs=0.05)
    assert leading_silence(records["avdeepfake1m/train/id00001/_c3CCbnZEbU/00011/real.mp4"]) < 0.05


def test_avdeepfake1m_accepts_the_hyphenated_spelling_and_segment_only_entries(tmp_path):
    from avforensics.data.adapters.avdeepfake1m import modality_labels

    assert modality_labels({"modify_type": "both-modified"}, "x") == (1, 1)
    assert modality_labels({"visual_fake_segments": [], "audio_fake_segments": [[0, 1]]}, "x") == (0, 1)
    with pytest.raises(DatasetMetadataError, match="x: modify_type 'odd'"):
        modality_labels({"modify_type": "odd"}, "x")


def test_kodf(tmp_path):
    records = get_adapter("kodf").records(fx.write_kodf(tmp_path))
    assert Counter((r.label, r.method) for r in records) == {
        (0, "real"): 3,
        (1, "fomm"): 2,
        (1, "fsgan"): 1,
        (1, "wav2lip"): 2,
    }
    assert {r.identity for r in records} == {"subject01", "subject02", "subject03"}
    assert all(r.audio_label == (0 if r.label == 0 else -1) for r in records)
    decodes(records[-1])


def test_idforge_v1(tmp_path):
    records = get_adapter("idforge-v1").records(fx.write_idforge_v1(tmp_path))
    assert len(records) == 15
    assert Counter(r.split for r in records) == {"train": 5, "val": 5, "test": 5}
    labels = {r.method: (r.label, r.video_label, r.audio_label, r.category) for r in records}
    assert labels == {
        "real": (0, 0, 0, "RVRA"),
        "face_tts": (1, 1, 1, "FVFA"),
        "lip_rvc_textmismatch": (1, 1, 1, "FVFA"),
        "rvc_textmismatch": (1, 0, 1, "RVFA"),
        "tts_textgen": (1, 0, 1, "RVFA"),
    }
    swapped = next(r for r in records if r.method == "face_tts")
    assert swapped.extra["swap_engine"] == "simswap"
    assert {r.identity for r in records if r.split == "val"} == {"id03"}
    converted = next(r for r in records if r.method == "rvc_textmismatch")
    assert converted.path.endswith("-1.mp3.mp4") and converted.split
    decodes(converted)


def test_idforge_v2(tmp_path):
    records = get_adapter("idforge-v2").records(fx.write_idforge_v2(tmp_path))
    assert [(r.split, r.method, r.label, r.audio_present) for r in records] == [
        ("train", "lip_rvc_textmismatch", 1, True),
        ("train", "real", 0, True),
        ("test", "face_tts", 1, True),
        ("ref", "real", 0, False),
    ]
    assert records[0].path.endswith("frames_ndarray.npy") and records[0].extra["audio_path"].endswith(".mp3")
    assert records[1].extra["super_resolved_path"].endswith("frames_ndarray_sr.npy")
    assert "super_resolved_path" not in records[0].extra and len(np.load(records[0].path)) == 16
    sound, _ = decode_collecting_warnings(records[0].extra["audio_path"], require_video=False)
    assert len(sound.audio) == pytest.approx(fx.CLIP_SAMPLES, abs=fx.CLIP_RATE // 20)


def test_faceforensics(tmp_path, caplog):
    records = get_adapter("faceforensics").records(fx.write_faceforensics(tmp_path))
    assert Counter((r.method, r.split) for r in records) == {
        ("real", "train"): 2,
        ("real", "val"): 2,
        ("real", "test"): 2,
        ("Deepfakes", "train"): 2,
        ("Deepfakes", "val"): 2,
        ("Deepfakes", "test"): 2,
        ("FaceShifter", "train"): 2,
        ("FaceShifter", "val"): 2,
        ("FaceShifter", "test"): 2,
        ("real", ""): 1,
        ("DeepFakeDetection", ""): 1,
    }
    assert all(r.audio_label == -1 and r.audio_present is False for r in records)
    decodes(records[0], audio=False)
    (tmp_path / "splits" / "val.json").unlink()
    with caplog.at_level(logging.WARNING):
        records = get_adapter("faceforensics").records(tmp_path)
    assert "official split lists" in caplog.text and {r.split for r in records} == {""}


def test_celebdf_list_means_1_is_real(tmp_path):
    records = by_id(get_adapter("celebdf").records(fx.write_celebdf(tmp_path)))
    assert len(records) == 9
    tests = {rid: r.label for rid, r in records.items() if r.split == "test"}
    assert tests == {
        "celebdf/YouTube-real/00170.mp4": 0,
        "celebdf/Celeb-real/id1_0000.mp4": 0,
        "celebdf/Celeb-synthesis/id1_id0_0007.mp4": 1,
        "celebdf/Celeb-synthesis/id0_id1_0002.mp4": 1,
    }
    assert records["celebdf/Celeb-synthesis/id1_id0_0007.mp4"].identity == "id1"
    decodes(records["celebdf/Celeb-synthesis/id1_id0_0007.mp4"], audio=False)


def test_celebdf_list_contradicting_its_folders_is_an_error(tmp_path):
    root = fx.write_celebdf(tmp_path)
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n1 Celeb-synthesis/id1_id0_0007.mp4\n"
    )
    with pytest.raises(DatasetMetadataError, match="neither 1=real nor 1=fake"):
        get_adapter("celebdf").records(root)


def test_generic_manifest_and_folder(tmp_path):
    root = fx.write_manifest(
        tmp_path / "m",
        [
            {
                "path": "a.mp4",
                "label": "fake",
                "video_label": 1,
                "audio_label": 0,
                "identity": "p1",
                "site": "x",
            },
            {
                "path": "b.mp4",
                "label": "real",
                "video_label": "",
                "audio_label": "",
                "identity": "p2",
                "site": "y",
            },
        ],
    )
    first, second = get_adapter("manifest").records(root)
    assert (first.label, first.category, first.extra) == (1, "FVRA", {"site": "x"})
    assert (second.label, second.video_label) == (0, -1)
    decodes(first)
    fx.touch(tmp_path / "f" / "real" / "r.mp4")
    fx.touch(tmp_path / "f" / "fake" / "sub" / "x.avi")
    assert [(r.id, r.label) for r in get_adapter("manifest").records(tmp_path / "f")] == [
        ("manifest/real/r.mp4", 0),
        ("manifest/fake/sub/x.avi", 1),
    ]
    fx.write_manifest(tmp_path / "bad", [{"path": "a.mp4", "label": "maybe"}])
    with pytest.raises(DatasetMetadataError, match="manifest.csv:2: label 'maybe'"):
        get_adapter("manifest").records(tmp_path / "bad")


def test_defakeavmit_explains_that_its_format_is_not_public(tmp_path):
    with pytest.raises(DatasetLayoutError, match="not publicly distributed"):
        get_adapter("defakeavmit").records(tmp_path)
    fx.write_manifest(tmp_path, [{"path": "v.mp4", "label": 1, "method": "x"}])
    (record,) = get_adapter("defakeavmit").records(tmp_path)
    assert (record.dataset, record.id, record.label) == ("defakeavmit", "defakeavmit/v.mp4", 1)
    decodes(record)


def test_synthetic_corpus_manifest(tmp_path):
    records = get_adapter("synthetic").records(fx.write_manifest(tmp_path, fx.synthetic_rows(identities=2)))
    assert len(records) == 8
    fvfa = next(r for r in records if r.category == "FVFA")
    assert (fvfa.method, fvfa.extra["methods"], fvfa.extra["fps"], fvfa.extra["sample_rate"]) == (
        "lipsync+tts",
        ["lipsync", "tts"],
        25.0,
        16000,
    )
    assert fvfa.fake_periods == ((0.5, 1.5),) and fvfa.identity == "person00"
    assert fvfa.extra["face_boxes"] == [[4, 4, 28, 28], [5, 4, 29, 28]] and fvfa.extra["n_frames"] == 50
    decodes(fvfa, frames=fvfa.extra["n_frames"])
    real = next(r for r in records if r.category == "RVRA")
    assert (real.label, real.method, real.extra["methods"]) == (0, "real", ["real"])
