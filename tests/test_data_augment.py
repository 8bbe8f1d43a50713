"""Training augmentation: one draw per clip replayed on every frame, seeded, labels of self-blended clips."""

from __future__ import annotations

import numpy as np
import pytest
from data_windows_fixtures import synthetic_corpus

from avforensics.data.augment import VIDEO_AUGMENTATIONS, ClipAugmenter, add_noise
from avforensics.data.windows import PreparedVideos, WindowDataset
from avforensics.experiment.config import ConfigError, config_from_dict

SR = 16000
PIXELS = {name: 1.0 for name in VIDEO_AUGMENTATIONS if name not in ("h264", "self_blend")}


def _clip(frames: int = 4, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


def _audio(seconds: float = 0.16) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 300 * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def test_every_frame_of_a_clip_gets_the_same_transform() -> None:
    still = np.repeat(_clip(1), 6, axis=0)  # six identical frames: any per-frame draw would tell them apart
    for seed in range(5):
        out = ClipAugmenter({**PIXELS, "self_blend": 1.0})(still, _audio(), np.random.default_rng(seed), True)
        assert out.forged
        assert all(np.array_equal(out.frames[0], frame) for frame in out.frames[1:]), seed
        assert not np.array_equal(out.frames[0], still[0])


def test_augmentation_is_a_function_of_the_seed() -> None:
    augmenter = ClipAugmenter({**PIXELS, "noise": 1.0, "gain": 1.0, "resample": 1.0, "self_blend": 0.5})
    runs = [augmenter(_clip(), _audio(), np.random.default_rng(seed), True) for seed in (7, 7, 8)]
    assert np.array_equal(runs[0].frames, runs[1].frames) and np.array_equal(runs[0].audio, runs[1].audio)
    assert not np.array_equal(runs[0].frames, runs[2].frames)
    assert not np.array_equal(runs[0].audio, runs[2].audio)


def test_self_blend_changes_the_face_not_the_border_and_never_a_fake_video() -> None:
    clip = _clip(size=64)
    augmenter = ClipAugmenter({"self_blend": 1.0})
    out = augmenter(clip, _audio(), np.random.default_rng(1), True)
    assert out.forged
    difference = np.abs(out.frames.astype(int) - clip).mean(axis=(0, 3))
    assert difference[24:40, 24:40].mean() > 10  # inside the face mask: a re-coloured, low-resolution copy
    assert difference[:3, :3].max() <= 1 and difference[-3:, -3:].max() <= 1  # corners: untouched
    fake = augmenter(clip, _audio(), np.random.default_rng(1), False)
    assert not fake.forged and np.array_equal(fake.frames, clip)


def test_audio_noise_is_at_the_drawn_snr_and_silence_stays_silent() -> None:
    audio = _audio(1.0)
    noisy = add_noise(audio, 20.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(audio.astype(float) ** 2) / np.mean((noisy - audio).astype(float) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
    silent = np.zeros(2560, np.float32)
    augmenter = ClipAugmenter({"noise": 1.0, "gain": 1.0, "codec": 1.0})
    out = augmenter(_clip(), silent, np.random.default_rng(0), True)
    assert not out.audio.any()


def test_codec_and_h264_round_trips_keep_the_clip_shape() -> None:
    augmenter = ClipAugmenter({"codec": 1.0, "h264": 1.0})
    out = augmenter(_clip(size=47), _audio(0.3), np.random.default_rng(3), True)
    assert out.frames.shape == (4, 47, 47, 3) and out.audio.shape == (int(SR * 0.3),)


def test_the_training_windows_are_augmented_per_epoch_and_relabelled_when_forged(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    _, records, prepared = synthetic_corpus(tmp_path_factory)
    real = [r.id for r in records if r.video_label == 0][:1]
    plain = WindowDataset(PreparedVideos(prepared, real), "random", 4, 32, seed=3)
    augmented = WindowDataset(PreparedVideos(prepared, real), "random", 4, 32, seed=3,
                              augment=ClipAugmenter({"self_blend": 1.0, "flip": 0.5}))
    window, clean = augmented[0], plain[0]
    assert (window["label"], window["video_label"], window["audio_label"]) == (1, 1, clean["audio_label"])
    assert window["frame_labels"].tolist() == [1, 1, 1, 1] and clean["frame_labels"].tolist() == [0, 0, 0, 0]
    assert not np.array_equal(window["frames"].numpy(), clean["frames"].numpy())
    again = WindowDataset(PreparedVideos(prepared, real), "random", 4, 32, seed=3,
                          augment=ClipAugmenter({"self_blend": 1.0, "flip": 0.5}))
    assert np.array_equal(again[0]["frames"].numpy(), window["frames"].numpy())  # seeded: reproducible
    augmented.set_epoch(1)
    assert not np.array_equal(augmented[0]["frames"].numpy(), window["frames"].numpy())


def test_data_augment_is_checked_by_the_config_schema() -> None:
    base = {"model": {"name": "toy_av"}, "data": {"dataset": "toy"}}
    config = config_from_dict({**base, "data": {"dataset": "toy", "augment": {"flip": 0.5}}}, "run.yaml")
    assert config.data.augment == {"flip": 0.5}
    assert config_from_dict(base, "paper.yaml").data.augment == {}  # off unless asked for
    with pytest.raises(ConfigError, match=r"run.yaml: data.augment.sepia: unknown augmentation"):
        config_from_dict({**base, "data": {"dataset": "toy", "augment": {"sepia": 0.5}}}, "run.yaml")
    with pytest.raises(ConfigError, match=r"data.augment.flip: probability 2.0 is outside \[0, 1\]"):
        config_from_dict({**base, "data": {"dataset": "toy", "augment": {"flip": 2}}}, "run.yaml")
