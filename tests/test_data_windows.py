"""Clip-window datasets: alignment with prepared arrays, labels, policies, padding, the engine's factory."""

from __future__ import annotations

import dataclasses
import logging

import data_windows_fixtures as wx
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avforensics.data.prepare import PreparedStore
from avforensics.data.protocols import make_split
from avforensics.data.records import VideoRecord
from avforensics.data.windows import (
    ArrayCache,
    DecodedVideos,
    PreparedVideos,
    VideoArrays,
    WindowDataset,
    frame_labels,
)
from avforensics.experiment.config import ConfigError, DataConfig
from avforensics.experiment.data import build_dataset, collate_windows
from avforensics.features.image import clip_preprocess
from avforensics.media.encode import write_video

T, SIZE, SPF = 16, 32, 640  # frames per window, frame side, audio samples per frame (16 kHz / 25 fps)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return wx.synthetic_corpus(tmp_path_factory)


def test_all_windows_cover_each_video_once_aligned_with_the_prepared_arrays(corpus):
    _, records, prepared = corpus
    store = PreparedStore(prepared)
    dataset = WindowDataset(PreparedVideos(store), "all", T, SIZE)
    items = {entry["id"]: store.load(entry["id"]) for entry in store.ok()}
    assert len(store.ok()) == len(records) == wx.CORPUS_VIDEOS
    assert len(dataset) == sum(len(item.frames) // T for item in items.values())
    starts: dict[str, list[int]] = {}
    for index in range(len(dataset)):
        window = dataset[index]
        item, start = items[window["video_id"]], window["start_frame"]
        assert window["window"] == len(starts.setdefault(window["video_id"], []))
        starts[window["video_id"]].append(start)
        assert torch.equal(window["frames"], clip_preprocess(item.frames[start : start + T], size=SIZE))
        assert window["audio"].shape == (T * SPF,)
        assert np.array_equal(window["audio"].numpy(), item.audio[start * SPF : (start + T) * SPF])
        assert window["audio_present"] is True and window["padded_frames"] == 0
        assert (window["label"], window["video_label"], window["audio_label"]) == (
            item.record.label, item.record.video_label, item.record.audio_label)
        assert (window["category"], window["method"]) == (item.record.category, item.record.method)
    assert starts == {key: list(range(0, len(item.frames) - T + 1, T)) for key, item in items.items()}


def test_frame_labels_follow_fake_periods_on_the_original_timeline():
    partial = VideoRecord("p", "p.mp4", label=1, fake_periods=((0.1, 0.3),))
    assert frame_labels(partial, 10, 25.0).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]  # 0.12 ... 0.28 s
    # after 0.08 s of trimmed silence, frame 0 is at 0.08 s in the original video
    assert frame_labels(partial, 10, 25.0, start_time=0.08).tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert frame_labels(partial, 4, 25.0, first_frame=35).tolist() == [0] * 4  # 1.4 s on
    on_border = VideoRecord("b", "b.mp4", label=1, fake_periods=((1.6, 2.0),))
    assert frame_labels(on_border, 6, 25.0, first_frame=35).tolist() == [0, 0, 0, 0, 0, 1]  # 40/25 = 1.6
    assert frame_labels(VideoRecord("f", "f.mp4", label=1), 3, 25.0).tolist() == [1, 1, 1]
    assert frame_labels(VideoRecord("r", "r.mp4", label=0), 3, 25.0).tolist() == [0, 0, 0]
    assert frame_labels(VideoRecord("u", "u.mp4", label=-1), 3, 25.0).tolist() == [-1, -1, -1]


def test_window_frame_labels_match_the_synthetic_fake_periods(corpus):
    _, records, prepared = corpus
    dataset = WindowDataset(PreparedVideos(prepared), "sliding", T, SIZE, stride=5)
    partial = [r for r in records if r.fake_periods and r.fake_periods[0][0] > 0]
    assert partial, "the corpus has partially fake videos"
    checked = 0
    for index in range(len(dataset)):
        window = dataset[index]
        record = next(r for r in records if r.id == window["video_id"])
        times = (window["start_frame"] + np.arange(T)) / 25.0 + 1e-9  # exact frame times, rounded up
        if record.label == 0:
            expected = np.zeros(T, int)
        elif record.fake_periods:
            expected = np.zeros(T, int)
            for start, end in record.fake_periods:
                expected |= (times >= start) & (times < end)
        else:
            expected = np.ones(T, int)
        assert window["frame_labels"].tolist() == expected.tolist()
        checked += int(record in partial and 0 < expected.sum() < T)
    assert checked > 0  # some windows straddle the border of a fake period


def test_random_windows_depend_only_on_index_and_epoch(corpus):
    _, _, prepared = corpus
    first = WindowDataset(PreparedVideos(prepared), "random", T, SIZE, seed=5)
    second = WindowDataset(PreparedVideos(prepared), "random", T, SIZE, seed=5)
    assert len(first) == wx.CORPUS_VIDEOS

    def starts(dataset, epoch, order):
        dataset.set_epoch(epoch)
        return {index: dataset[index]["start_frame"] for index in order}

    forward, backward = range(len(first)), reversed(range(len(first)))
    assert starts(first, 0, forward) == starts(second, 0, backward)
    assert starts(first, 1, forward) == starts(second, 1, forward)
    assert starts(first, 0, forward) != starts(first, 1, forward)
    window = first[2]
    assert torch.equal(window["frames"], second[2]["frames"])
    assert torch.equal(window["audio"], second[2]["audio"])


def test_a_data_loader_with_the_engine_collation_yields_batches(corpus):
    _, _, prepared = corpus
    dataset = WindowDataset(PreparedVideos(prepared), "random", T, SIZE)
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=collate_windows)))
    assert batch["frames"].shape == (4, T, 3, SIZE, SIZE) and batch["frames"].dtype == torch.float32
    assert batch["audio"].shape == (4, T * SPF) and batch["frame_labels"].shape == (4, T)
    assert batch["audio_present"].dtype == torch.bool and batch["audio_present"].all()
    for key in ("label", "video_label", "audio_label", "window", "start_frame", "padded_frames"):
        assert batch[key].shape == (4,) and batch[key].dtype == torch.int64
    assert len(batch["video_id"]) == len(batch["category"]) == 4


def test_decoding_on_the_fly_gives_the_prepared_windows(corpus):
    _, records, prepared = corpus
    decoded = WindowDataset(
        DecodedVideos(records[:2], wx.OPTIONS, wx.CentreFaceDetector), "all", T, SIZE
    )
    from_cache = WindowDataset(PreparedVideos(prepared, [r.id for r in records[:2]]), "all", T, SIZE)
    assert len(decoded) == len(from_cache) > 0 and len(decoded.cache) == 2  # decoded once, kept in memory
    for index in range(len(decoded)):
        a, b = decoded[index], from_cache[index]
        assert a["video_id"] == b["video_id"] and a["start_frame"] == b["start_frame"]
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["audio"], b["audio"])


@pytest.fixture()
def short_silent_video(tmp_path):
    """10 frames (shorter than a window) without an audio track; a fake video."""
    frames = np.stack([np.full((48, 48, 3), 20 * k, np.uint8) for k in range(10)])
    path = write_video(tmp_path / "short.mp4", frames, fps=25, audio=None)
    return VideoRecord("manifest/short.mp4", str(path), label=1, video_label=1, audio_label=0)


def test_a_short_video_without_audio_is_padded_and_flagged(short_silent_video):
    dataset = WindowDataset(DecodedVideos([short_silent_video], wx.OPTIONS, wx.CentreFaceDetector),
                            "all", T, SIZE)
    assert len(dataset) == 1
    window = dataset[0]
    assert window["audio_present"] is False and not window["audio"].any()
    assert window["padded_frames"] == 6 and window["start_frame"] == 0
    assert window["frame_labels"].tolist() == [1] * 10 + [-1] * 6
    assert all(torch.equal(window["frames"][k], window["frames"][9]) for k in range(10, T))
    assert not torch.equal(window["frames"][8], window["frames"][9])


def test_a_video_that_does_not_decode_is_left_out_with_a_warning(short_silent_video, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 cut short")
    records = [short_silent_video, dataclasses.replace(short_silent_video, id="manifest/broken.mp4",
                                                       path=str(broken))]
    with caplog.at_level(logging.WARNING, logger="avforensics.data.windows"):
        dataset = WindowDataset(DecodedVideos(records, wx.OPTIONS, wx.CentreFaceDetector), "random", T, SIZE)
    assert len(dataset) == 1 and dataset.record(0).id == "manifest/short.mp4"
    assert "broken.mp4" in caplog.text


def test_trimming_leading_silence_keeps_labels_on_the_original_timeline(corpus):
    _, _, prepared = corpus
    store = PreparedStore(prepared)
    entry = store.ok()[0]
    item = store.load(entry["id"])
    silent = 8 * SPF  # the first 8 frames digitally silent, then a steady tone
    audio = (0.3 * np.sin(np.arange(len(item.audio)) * 0.1)).astype(np.float32)
    audio[:silent] = 0.0
    record = dataclasses.replace(item.record, label=1, fake_periods=((0.0, 0.4),))

    class Source:
        records = [record]

        def frame_count(self, index):
            return len(item.frames)

        def load(self, index):
            return VideoArrays(record, item.frames, audio, 25.0, 16000)

    dataset = WindowDataset(Source(), "all", T, SIZE, trim_silence=True)
    assert dataset.frame_counts == [len(item.frames) - 8]
    window = dataset[0]
    assert torch.equal(window["frames"], clip_preprocess(item.frames[8 : 8 + T], size=SIZE))
    assert np.array_equal(window["audio"].numpy(), audio[silent : silent + T * SPF])
    assert window["frame_labels"].tolist() == [1, 1] + [0] * (T - 2)  # 0.32 s and 0.36 s lie in [0, 0.4)


def test_the_array_cache_evicts_the_least_recently_used_video_by_bytes():
    def arrays(frames):
        pixels = np.zeros((frames, 10, 10, 3), np.uint8)
        return VideoArrays(VideoRecord("x", "x", 0), pixels, None, 25.0, 16000)

    cache = ArrayCache(max_bytes=3000)
    cache.put(0, arrays(1))  # 300 bytes each per frame
    cache.put(1, arrays(4))
    assert cache.get(0) is not None  # 0 is now the most recently used
    cache.put(2, arrays(5))  # 300 + 1200 + 1500 = 3000: fits
    cache.put(3, arrays(2))  # over by 600: evicts 1 (least recent), not 0
    assert [cache.get(k) is not None for k in range(4)] == [True, False, True, True]
    assert cache.bytes == 300 + 1500 + 600
    cache.put(4, arrays(11))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(4) is None and cache.bytes == 2400


def test_the_engine_builds_adapter_datasets_from_config(corpus, tmp_path):
    root, records, prepared = corpus

    params = {"train": 0.5, "val": 0.5, "test": 0.0}
    options = {"prepared": str(prepared), "protocol_params": params, "image_size": SIZE, "seed": 1}
    config = DataConfig(dataset="synthetic", root=str(root), protocol="random", clip_frames=T,
                        options=options)
    split = make_split("random", records, 1, **params)
    train = build_dataset(config, "train", "random")
    val = build_dataset(config, "val", "all")
    assert [train.record(i).id for i in range(len(train))] == list(split.train)
    assert {window[0] for window in val.windows} == set(range(len(split.val)))
    assert train[0]["frames"].shape == (T, 3, SIZE, SIZE)

    saved = split.save(tmp_path / "split.json")
    from_file = DataConfig(dataset="synthetic", split_file=str(saved), clip_frames=T,
                           options={"prepared": str(prepared), "image_size": SIZE})
    again = build_dataset(from_file, "train", "random")  # records read from the cache: no root needed
    assert [again.record(i).id for i in range(len(again))] == list(split.train)

    with pytest.raises(ConfigError, match="data.options.workers_per_gpu: unknown option"):
        build_dataset(DataConfig(dataset="synthetic", root=str(root), protocol="random",
                                 options={"workers_per_gpu": 2}), "train", "random")
    with pytest.raises(ConfigError, match="set data.split_file"):
        build_dataset(DataConfig(dataset="synthetic", root=str(root), options=options), "train", "random")
