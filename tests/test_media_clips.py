"""Clip-window arithmetic: frames, samples and seconds of every window agree exactly, for every policy."""

import numpy as np
import pytest

from avforensics.media.clips import ClipWindow, plan_windows, samples_per_frame


def test_samples_per_frame_default_and_non_integer_rates():
    assert samples_per_frame(25, 16000) == 640
    assert samples_per_frame(30, 48000) == 1600
    with pytest.raises(ValueError, match="not a whole number"):
        samples_per_frame(30, 16000)


def test_default_window_is_16_frames_10240_samples_064_seconds():
    window = ClipWindow(start_frame=32, n_frames=16)
    assert (window.start_sample, window.n_samples) == (32 * 640, 10240)
    assert window.start_time == pytest.approx(1.28)
    assert window.end_time - window.start_time == pytest.approx(0.64)


def test_frames_of_and_audio_of_cut_the_same_instants():
    n_frames = 40
    frames = np.arange(n_frames)[:, None, None, None] * np.ones((1, 2, 2, 3), np.int64)
    audio = np.repeat(np.arange(n_frames), 640)  # each sample carries the index of its frame
    window = ClipWindow(start_frame=7, n_frames=16)
    cut_frames, cut_audio = window.frames_of(frames), window.audio_of(audio)
    assert cut_frames[:, 0, 0, 0].tolist() == list(range(7, 23))
    assert cut_audio.shape == (10240,)
    assert np.array_equal(cut_audio.reshape(16, 640)[:, 0], np.arange(7, 23))
    assert np.all(cut_audio.reshape(16, 640) == cut_audio.reshape(16, 640)[:, :1])


def test_window_past_the_end_raises_instead_of_a_short_slice():
    window = ClipWindow(start_frame=30, n_frames=16)
    with pytest.raises(ValueError, match="ends at frame 46"):
        window.frames_of(np.zeros((40, 2, 2, 3)))
    with pytest.raises(ValueError, match="ends at sample 29440"):
        window.audio_of(np.zeros(40 * 640))


def test_consecutive_windows_tile_without_overlap():
    windows = plan_windows(100, 16, "consecutive")
    assert [w.start_frame for w in windows] == [0, 16, 32, 48, 64, 80]
    assert [w.start_sample for w in windows] == [s * 640 for s in (0, 16, 32, 48, 64, 80)]
    assert plan_windows(96, 16)[-1].end_frame == 96
    assert len(plan_windows(100, 16, count=2)) == 2


def test_sliding_windows_use_the_stride():
    windows = plan_windows(40, 16, "sliding", stride=4)
    assert [w.start_frame for w in windows] == [0, 4, 8, 12, 16, 20, 24]
    assert [w.start_frame for w in plan_windows(40, 16, "sliding")] == [0, 8, 16, 24]
    with pytest.raises(ValueError, match="stride"):
        plan_windows(40, 16, "sliding", stride=0)


def test_random_windows_are_in_range_and_reproducible_with_a_seed():
    first = plan_windows(200, 16, "random", count=50, rng=123)
    again = plan_windows(200, 16, "random", count=50, rng=np.random.default_rng(123))
    other = plan_windows(200, 16, "random", count=50, rng=7)
    assert [w.start_frame for w in first] == [w.start_frame for w in again]
    assert [w.start_frame for w in first] != [w.start_frame for w in other]
    assert all(0 <= w.start_frame <= 184 and w.end_frame <= 200 for w in first)
    assert len(plan_windows(200, 16, "random", rng=1)) == 1


def test_video_shorter_than_one_window_is_an_error_that_says_so():
    with pytest.raises(ValueError, match=r"10 frames \(0.40 s\), shorter than one window of 16 frames"):
        plan_windows(10, 16)
    assert len(plan_windows(16, 16)) == 1


def test_unknown_policy_and_other_rates():
    with pytest.raises(ValueError, match="unknown policy"):
        plan_windows(100, 16, "everything")  # type: ignore[arg-type]
    window = plan_windows(90, 30, fps=30, sample_rate=48000)[1]
    assert (window.start_sample, window.n_samples, window.start_time) == (48000, 48000, 1.0)
