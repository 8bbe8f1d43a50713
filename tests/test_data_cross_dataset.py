"""Runs over two datasets (train on one, test on another), validation parts carved from training, and
IDForge-v2's grouped frames paired with their own audio."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import CLIP_RATE, write_celebdf, write_idforge_v2
from data_windows_fixtures import CentreFaceDetector
from repro_fixtures import write_idforge_v2_with_val

from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PrepareOptions
from avforensics.data.protocols import ProtocolError, carve_validation, make_split
from avforensics.data.records import VideoRecord
from avforensics.data.windows import DecodedVideos, WindowDataset, grouped_audio
from avforensics.experiment.config import ConfigError, config_from_dict
from avforensics.experiment.datasets import adapter_windows
from avforensics.media.encode import write_video


def test_grouped_audio_gives_each_frame_group_its_own_span():
    # 1 s of audio whose sample values are their own times: every group's span is read back from them
    rate, fps = 1000, 25.0
    audio = np.arange(rate, dtype=np.float32) / rate
    grouped = grouped_audio(audio, 16, 4, fps, rate)
    spf = rate // 25
    assert grouped.shape == (16 * spf,)
    for group, centre in enumerate((0.125, 0.375, 0.625, 0.875)):
        span = grouped[group * 4 * spf : (group + 1) * 4 * spf]  # frames 4g .. 4g+3
        assert span[0] == pytest.approx(centre - 0.08) and span[-1] == pytest.approx(centre + 0.08 - 1 / rate)
    # a span past the clip's edges is zero-padded (one group over 0.1 s of audio: 0.16 s centred at 0.05 s)
    padded = grouped_audio(audio[:100], 4, 1, fps, rate)
    assert (padded[:30] == 0).all() and padded[30] == 0.0 and padded[31] == pytest.approx(0.001)
    with pytest.raises(ValueError, match="15 frames cannot form 4 equal groups"):
        grouped_audio(audio, 15, 4, fps, rate)


def test_idforge_window_pairs_each_frame_group_with_its_own_audio(tmp_path):
    root = write_idforge_v2(tmp_path / "idforge")
    record = next(r for r in get_adapter("idforge-v2").records(root) if r.split == "train" and r.label == 0)
    # the shot's audio: 2 s in four quarters of rising loudness, so each group's span can be recognised
    time = np.arange(2 * CLIP_RATE) / CLIP_RATE
    loudness = np.repeat([0.1, 0.2, 0.4, 0.8], CLIP_RATE // 2)
    tone = (loudness * np.sin(2 * np.pi * 440 * time)).astype(np.float32)
    write_video(record.extra["audio_path"], None, audio=tone, sample_rate=CLIP_RATE, audio_codec="libmp3lame")
    source = DecodedVideos([record], PrepareOptions(size=8), detector_factory=CentreFaceDetector)
    window = WindowDataset(source, "all", 16, 8)[0]
    audio = window["audio"].numpy()
    assert audio.shape == (16 * 640,)
    amplitude = [float(np.abs(audio[g * 2560 : (g + 1) * 2560]).max()) for g in range(4)]
    # continuous video would have had the shot's first 0.64 s: 0.1 loud throughout
    assert amplitude == pytest.approx([0.1, 0.2, 0.4, 0.8], rel=0.15)


def _records(n_identities: int) -> list[VideoRecord]:
    return [
        VideoRecord(id=f"d/{p}{label}", path=f"{p}{label}.mp4", label=label, video_label=label,
                    audio_label=0, identity=p, dataset="d")
        for p in (f"p{i}" for i in range(n_identities)) for label in (0, 1)
    ]


def test_carved_validation_keeps_identities_apart_and_the_test_part_unchanged():
    records = _records(10)
    split = make_split("identity-kfold", records, 3, k=5, fold=0)
    carved = carve_validation(split, records, 0.25, 3, by_identity=True)
    assert carved.test == split.test
    assert sorted(carved.train + carved.val) == sorted(split.train)
    identity = {r.id: r.identity for r in records}
    assert {identity[i] for i in carved.val} & {identity[i] for i in carved.train} == set()
    assert len({identity[i] for i in carved.val}) == 2  # 25 % of 8 training identities
    assert carved == carve_validation(split, records, 0.25, 3, by_identity=True)  # seeded
    stratified = make_split("random", records, 0, stratify=True)
    plain = carve_validation(stratified, records, 0.2, 0, by_identity=False)
    labels = {r.id: r.label for r in records}
    assert sorted(labels[i] for i in plain.val) == [0, 1]  # each label gives its share
    with pytest.raises(ProtocolError, match="already has a validation part"):
        carve_validation(carved, records, 0.25, 3, by_identity=True)


def _cross_config(idforge, celebdf, **data):
    return config_from_dict({
        "model": {"name": "x"},
        "data": {"dataset": "idforge-v2", "root": str(idforge), "protocol": "idforge-to-celebdf",
                 "clip_frames": 4, "options": {"image_size": 8, "prepare_options": {"max_side": 64}},
                 "test": {"dataset": "celebdf", "root": str(celebdf)}, **data},
    }).data


def test_cross_dataset_parts_come_from_their_own_dataset(tmp_path, monkeypatch):
    import avforensics.data.windows as windows

    monkeypatch.setattr(windows.DecodedVideos, "_face_detector", lambda self: CentreFaceDetector())
    idforge, celebdf = write_idforge_v2_with_val(tmp_path / "idforge"), write_celebdf(tmp_path / "celebdf")
    config = _cross_config(idforge, celebdf)
    parts = {part: adapter_windows(config, part, "random").source.records for part in ("train", "val", "test")
             }
    assert {r.dataset for r in parts["train"] + parts["val"]} == {"idforge-v2"}
    assert [r.split for r in parts["train"]] == ["train", "train"]  # not IDForge's test shot
    assert [r.split for r in parts["val"]] == ["val", "val"]  # IDForge's own validation part
    assert sorted(r.path.split("celebdf/")[1] for r in parts["test"]) == [  # the Celeb-DF test list
        "Celeb-real/id1_0000.mp4", "Celeb-synthesis/id0_id1_0002.mp4", "Celeb-synthesis/id1_id0_0007.mp4",
        "YouTube-real/00170.mp4"]
    # a protocol that puts the test dataset's records in training is refused, naming the setting
    wrong = _cross_config(idforge, celebdf, protocol="random")
    with pytest.raises(ConfigError, match="not data's, .*data.test.dataset"):
        adapter_windows(wrong, "train", "random")
    # the route that failed before a run could hold two datasets now says how to name the second one
    alone = _cross_config(idforge, celebdf, test={})
    with pytest.raises(ConfigError, match="name the test dataset with data.test.dataset=celebdf"):
        adapter_windows(alone, "train", "random")
    with pytest.raises(ConfigError, match=r"data.test.options.cache: unknown option"):
        adapter_windows(_cross_config(idforge, celebdf, test={"dataset": "celebdf", "options": {"cache": 1}}),
                        "test", "all")


def test_evaluate_data_flags_name_the_test_dataset_of_a_cross_dataset_run():
    from avforensics.experiment.config import load_config
    from avforensics.protocols.evaluate import DataSelection

    trained = load_config("cad/tables45")  # IDForge-v2 -> Celeb-DF
    scored = DataSelection(dataset="celebdf", root="/copy/celebdf", prepared="/cache/celebdf").apply(
        trained, "run")
    assert (scored.data.dataset, scored.data.root) == ("idforge-v2", "datasets/IDForge_v2")  # unchanged
    assert (scored.data.test.dataset, scored.data.test.root) == ("celebdf", "/copy/celebdf")
    assert scored.data.test.options == {"prepared": "/cache/celebdf"}
    # a single-dataset run trained on FakeAVCeleb, scored on KoDF through the cross-dataset protocol
    single = load_config("avprompt/paper")
    kodf = DataSelection(dataset="kodf", root="/kodf", protocol="fakeavceleb-to-kodf").apply(single, "run")
    assert (kodf.data.dataset, kodf.data.test.dataset) == ("fakeavceleb", "kodf")
    assert kodf.data.test.root == "/kodf"
    # any other new dataset replaces the training one, as before
    other = DataSelection(dataset="dfdc", root="/dfdc", protocol="random").apply(single, "run")
    assert (other.data.dataset, other.data.root, other.data.test.dataset) == ("dfdc", "/dfdc", "")
