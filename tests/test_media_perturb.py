"""Each robustness perturbation's effect on a known input, in numbers; codec round trips keep the shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avforensics.media.perturb import BLOCK_GREY, PERTURBATIONS, Media, perturb
from avforensics.media.roundtrip import audio_roundtrip, encoded_size, h264_roundtrip

SR = 16000


def _texture(frames: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    """A colourful, smooth-plus-noisy clip (something a codec has to spend bits on)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size]
    base = np.stack([xs * 3, ys * 3, 255 - xs * 2], -1) % 256
    return np.stack([np.clip(base + rng.integers(-30, 30, base.shape), 0, 255) for _ in range(frames)]
                    ).astype(np.uint8)


def _tone(frequency: float, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def _media(frames: np.ndarray | None = None, audio: np.ndarray | None = None) -> Media:
    return Media(_texture() if frames is None else frames, _tone(440) if audio is None else audio)


def test_the_levels_are_deeperforensics_and_the_issue_s() -> None:
    levels = {name: p.levels for name, p in PERTURBATIONS.items()}
    assert levels["saturation"] == (0.4, 0.3, 0.2, 0.1, 0.0)
    assert levels["contrast"] == (0.85, 0.725, 0.6, 0.475, 0.35)
    assert levels["blocks"] == (16, 32, 48, 64, 80)
    assert levels["noise"] == (0.001, 0.002, 0.005, 0.01, 0.05)
    assert levels["blur"] == (7, 9, 13, 17, 21)
    assert levels["downscale"] == (2, 3, 4, 5, 6)
    assert levels["h264"] == (30, 32, 35, 38, 40)
    assert levels["audio_noise"] == (30, 20, 10) and levels["mp3"] == (128, 64, 32)
    assert levels["resample"] == (8000,)
    assert levels["audio_delay"] == levels["audio_advance"] == (0.1, 0.2, 0.4)


def test_saturation_scales_chroma_and_zero_gives_grey_frames() -> None:
    frames = _texture()
    chroma = cv2.cvtColor(frames[0], cv2.COLOR_RGB2YCrCb).astype(float)[..., 1:] - 128
    for level in (0.4, 0.2):
        out = perturb(_media(frames), "saturation", level).frames
        scaled = cv2.cvtColor(out[0], cv2.COLOR_RGB2YCrCb).astype(float)[..., 1:] - 128
        assert scaled.std() / chroma.std() == pytest.approx(level, abs=0.03)
    grey = perturb(_media(frames), "saturation", 0.0).frames.astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1 and np.abs(grey[..., 1] - grey[..., 2]).max() <= 1


def test_contrast_multiplies_the_pixel_values() -> None:
    frames = np.full((2, 8, 8, 3), 200, np.uint8)
    assert (perturb(_media(frames), "contrast", 0.6).frames == 120).all()
    assert (perturb(_media(frames), "contrast", 0.35).frames == 70).all()


def test_blocks_paste_grey_squares_more_at_each_level_and_seeded() -> None:
    frames = np.zeros((3, 256, 256, 3), np.uint8)
    grey = [(perturb(_media(frames), "blocks", level, seed=1).frames == BLOCK_GREY).all(-1).mean()
            for level in (16, 48, 80)]
    assert 0 < grey[0] <= 16 * 64 / 256**2 and grey[0] < grey[1] < grey[2] <= 80 * 64 / 256**2
    first, again = (perturb(_media(frames), "blocks", 32, seed=5).frames for _ in range(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, perturb(_media(frames), "blocks", 32, seed=6).frames)


def test_gaussian_noise_has_the_level_s_variance_in_ycbcr() -> None:
    frames = np.full((2, 128, 128, 3), 128, np.uint8)
    for level in (0.002, 0.01):
        out = perturb(_media(frames), "noise", level, seed=3).frames
        luma = cv2.cvtColor(out[0], cv2.COLOR_RGB2YCrCb)[..., 0].astype(float) / 255
        assert luma.var() == pytest.approx(level, rel=0.15)


def test_blur_and_downscale_remove_more_detail_at_each_level() -> None:
    for name in ("blur", "downscale"):
        levels = PERTURBATIONS[name].levels
        errors = [np.abs(perturb(_media(), name, level).frames.astype(float) - _texture()).mean()
                  for level in levels]
        assert errors == sorted(errors) and errors[0] > 1, name


def test_h264_levels_lower_the_bitrate_monotonically_and_keep_the_shape() -> None:
    frames = _texture(frames=8, size=96)
    sizes = [encoded_size(frames, crf) for crf in PERTURBATIONS["h264"].levels]
    assert all(a > b for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    out = perturb(_media(frames[:, :95, :93]), "h264", 40).frames
    assert out.shape == (8, 95, 93, 3)
    assert 1 < np.abs(out.astype(float) - frames[:, :95, :93]).mean() < 40


def test_audio_noise_is_at_the_stated_snr() -> None:
    clean = _tone(440, 2.0)
    for snr in PERTURBATIONS["audio_noise"].levels:
        noisy = perturb(_media(audio=clean), "audio_noise", snr, seed=2).audio
        noise = (noisy - clean).astype(float)
        measured = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.5)
    silent = np.zeros(SR, np.float32)
    assert not perturb(_media(audio=silent), "audio_noise", 10).audio.any()


def test_narrow_band_keeps_speech_band_and_removes_above_4_khz() -> None:
    low, high = _tone(1000), _tone(6000)
    kept = perturb(_media(audio=low), "resample", 8000).audio
    removed = perturb(_media(audio=high), "resample", 8000).audio
    assert len(kept) == len(low)
    assert np.mean(kept[1000:-1000] ** 2) / np.mean(low ** 2) == pytest.approx(1.0, abs=0.05)
    assert 10 * np.log10(np.mean(removed[1000:-1000] ** 2) / np.mean(high ** 2)) < -40


@pytest.mark.parametrize("codec", ["mp3", "aac", "opus"])
def test_audio_codec_round_trips_keep_length_and_timing(codec: str) -> None:
    clean = _tone(440, 1.0) * np.sin(np.linspace(0, 3 * np.pi, SR)).astype(np.float32)
    out = audio_roundtrip(clean, SR, codec, 64)
    assert out.shape == clean.shape and out.dtype == np.float32
    # aligned (the encoder's delay removed): the error is far below the signal
    middle = slice(2000, -2000)
    error = np.mean((out[middle] - clean[middle]) ** 2) / np.mean(clean[middle] ** 2)
    assert error < 0.1, error
    assert perturb(_media(audio=clean), "mp3", 32).audio.shape == clean.shape


@pytest.mark.parametrize(("name", "seconds", "shift"),
                         [("audio_delay", 0.1, 1600), ("audio_advance", 0.2, 3200),
                          ("audio_delay", 0.4, 6400)])
def test_offset_shifts_the_audio_by_exactly_that_many_samples(name: str, seconds: float, shift: int) -> None:
    audio = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    out = perturb(_media(audio=audio), name, seconds).audio
    if name == "audio_delay":  # sound late: silence first, then the original
        assert not out[:shift].any() and np.array_equal(out[shift:], audio[:-shift])
    else:
        assert np.array_equal(out[:-shift], audio[shift:]) and not out[-shift:].any()


def test_mask_blanks_one_modality_and_leaves_the_other() -> None:
    media = _media()
    video_masked = perturb(media, "mask", "video")
    assert not video_masked.frames.any() and np.array_equal(video_masked.audio, media.audio)
    audio_masked = perturb(media, "mask", "audio")
    assert not audio_masked.audio.any() and np.array_equal(audio_masked.frames, media.frames)


def test_unknown_perturbation_or_level_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="unknown perturbation 'sepia'"):
        perturb(_media(), "sepia", 1)
    with pytest.raises(ValueError, match=r"blur: level 8 is not one of \[7, 9, 13, 17, 21\]"):
        perturb(_media(), "blur", 8)


def test_h264_round_trip_refuses_non_video_arrays() -> None:
    with pytest.raises(ValueError, match="expected"):
        h264_roundtrip(np.zeros((4, 8, 8), np.uint8), 30)
