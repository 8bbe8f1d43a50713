"""Decoding: frame-rate and sample-rate conversion by timestamp, alignment, rotation, errors, streaming."""

import math
import tracemalloc
import warnings
from fractions import Fraction

import av
import numpy as np
import psutil
import pytest
from media_fixtures import (
    band_level_db,
    flash_and_click,
    indexed_frame,
    peak_frequency,
    read_index,
    tone,
    write_audio_with_gap,
    write_indexed_video,
)

from avforensics.media.decode import decode, iter_windows, probe
from avforensics.media.encode import write_video
from avforensics.media.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    MediaTooLongError,
    MediaTooShortError,
    MediaWarning,
    MissingFileError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
)

pytestmark = pytest.mark.filterwarnings("ignore::avforensics.media.errors.MediaWarning")


def shown_indices(frames: np.ndarray) -> list[int]:
    return [read_index(frame) for frame in frames]


@pytest.mark.parametrize("source_fps", [24, 30, 60])
def test_constant_rate_sources_resample_to_25_fps_by_timestamp(tmp_path, source_fps):
    path = write_indexed_video(tmp_path / f"v{source_fps}.mp4", 2 * source_fps, source_fps)
    decoded = decode(path)
    assert decoded.frames.shape == (50, 64, 64, 3)
    # Output frame k shows the latest source frame i with i / source_fps <= k / 25.
    assert shown_indices(decoded.frames) == [k * source_fps // 25 for k in range(50)]
    assert decoded.info.fps == pytest.approx(source_fps)
    assert decoded.info.is_variable_frame_rate is False


def test_variable_frame_rate_source_shows_the_frame_on_screen_at_each_output_time(tmp_path):
    steps_ms = np.random.default_rng(0).integers(10, 90, size=40)
    times_ms = np.concatenate([[0], np.cumsum(steps_ms)[:-1]])
    path = write_video(
        tmp_path / "vfr.mp4", np.stack([indexed_frame(i) for i in range(40)]), 25, frame_times=times_ms / 1000
    )
    decoded = decode(path)
    # The last source frame lasts as long as the interval before it (the muxer's convention).
    end_ms = times_ms[-1] + steps_ms[-2]
    assert len(decoded.frames) == -(-end_ms // 40)
    expected = [int(np.searchsorted(times_ms, 40 * k, side="right")) - 1 for k in range(len(decoded.frames))]
    assert shown_indices(decoded.frames) == expected
    assert decoded.info.is_variable_frame_rate is True
    assert probe(path).is_variable_frame_rate is True


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (48000, 2)])
def test_audio_is_resampled_to_16k_mono_keeping_its_frequency(tmp_path, rate, channels):
    path = write_indexed_video(
        tmp_path / f"a{rate}.mp4", 50, 25, audio=tone(1000, 2.0, rate, channels), sample_rate=rate
    )
    decoded = decode(path)
    assert decoded.audio.dtype == np.float32
    assert decoded.audio.shape == (50 * 640,)
    assert decoded.info.sample_rate == rate and decoded.info.channels == channels
    assert peak_frequency(decoded.audio[1600:-1600], 16000) == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(decoded.audio[1600:-1600] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_content_above_8k_is_suppressed_not_aliased(tmp_path):
    # 10.5 kHz would alias to 5.5 kHz at 16 kHz; the 1 kHz tone must come through untouched.
    audio = tone(1000, 2.0, 48000, amplitude=0.3) + tone(10500, 2.0, 48000, amplitude=0.3)
    path = write_video(tmp_path / "hf.mkv", None, audio=audio, sample_rate=48000, audio_codec="pcm_s16le")
    decoded = decode(path, require_video=False)
    assert decoded.frames is None and decoded.audio.shape == (32000,)
    assert peak_frequency(decoded.audio, 16000) == pytest.approx(1000, abs=1)
    assert band_level_db(decoded.audio, 16000, 5400, 5600) < -90
    assert np.sqrt(np.mean(decoded.audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize(("fps", "rate", "channels"), [(30, 44100, 2), (24, 48000, 2), (60, 8000, 1)])
def test_flash_and_click_land_on_the_same_frame_and_sample(tmp_path, fps, rate, channels):
    path = flash_and_click(tmp_path / "event.mp4", 1.0, 2.0, fps, rate, channels)
    decoded = decode(path)
    flash_frame = int(np.argmax(decoded.frames.mean(axis=(1, 2, 3)) > 128))
    click_sample = int(np.argmax(np.abs(decoded.audio) > 0.3))
    assert flash_frame == 25
    assert abs(click_sample - flash_frame * 640) <= 32  # within 2 ms


def test_late_audio_is_padded_with_silence_and_flagged(tmp_path):
    path = write_video(
        tmp_path / "late.mkv",
        np.zeros((50, 64, 64, 3), np.uint8),
        25,
        tone(440, 1.5, 16000),
        16000,
        audio_start=0.5,
    )
    with pytest.warns(MediaWarning, match="audio starts 0.500 s after"):
        decoded = decode(path)
    onset = int(np.argmax(np.abs(decoded.audio) > 0.05))
    assert abs(onset - 8000) <= 16
    assert np.abs(decoded.audio[: 8000 - 16]).max() == 0
    assert any("audio starts" in message for message in decoded.warnings)


@pytest.mark.parametrize(("rotation", "turns"), [(90, 1), (-90, 3), (180, 2)])
def test_rotation_metadata_is_applied_so_frames_come_out_upright(tmp_path, rotation, turns):
    stored = np.full((48, 64, 3), 30, np.uint8)
    stored[:16, :16] = 230  # a marker in the stored picture's top-left corner
    path = write_video(tmp_path / "rot.mp4", np.stack([stored] * 3), 25, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation % 360
    assert (info.width, info.height) == ((48, 64) if turns % 2 else (64, 48))
    frame = decode(path).frames[0]
    assert np.abs(frame.astype(int) - np.rot90(stored, turns)).mean() < 3
    corner = {1: frame[-16:, :16], 3: frame[:16, -16:], 2: frame[-16:, -16:]}[turns]
    assert corner.mean() > 200  # counter-clockwise display rotation moves the marker here


def test_max_side_downsizes_keeping_aspect_and_rotation(tmp_path):
    frames = np.stack([indexed_frame(i, 180, 320) for i in range(5)])
    path = write_video(tmp_path / "big.mp4", frames, 25, rotation=90)
    decoded = decode(path, max_side=64)
    assert decoded.frames.shape == (5, 64, 36, 3)
    assert decode(path, max_side=1000).frames.shape == (5, 320, 180, 3)


def test_start_and_duration_select_a_span_on_the_same_grid(tmp_path):
    path = write_indexed_video(
        tmp_path / "span.mp4", 120, 30, audio=np.arange(4 * 16000) / 64000, sample_rate=16000
    )
    decoded = decode(path, start=1.2, duration=0.8)
    assert decoded.frames.shape[0] == 20 and decoded.audio.shape == (20 * 640,)
    assert shown_indices(decoded.frames) == [
        int(Fraction(6, 5) * 30 + Fraction(k * 30, 25)) for k in range(20)
    ]
    full = decode(path)
    assert np.abs(decoded.audio - full.audio[30 * 640 : 50 * 640]).max() < 0.01


def test_no_audio_stream_gives_none_and_a_warning_or_a_typed_error(tmp_path):
    path = write_indexed_video(tmp_path / "silent.mp4", 10)
    with pytest.warns(MediaWarning, match="no audio stream"):
        decoded = decode(path)
    assert decoded.audio is None and decoded.audio_present is False
    assert decoded.warnings == ["no audio stream; audio is None"]
    with pytest.raises(NoAudioStreamError, match=r"silent\.mp4: no audio stream"):
        decode(path, require_audio=True)


def test_audio_only_file_needs_require_video_false(tmp_path):
    path = write_video(tmp_path / "speech.m4a", None, audio=tone(500, 1.0, 44100), sample_rate=44100)
    with pytest.raises(NoVideoStreamError, match=r"speech\.m4a: no video stream"):
        decode(path)
    decoded = decode(path, require_video=False)
    assert decoded.frames is None and decoded.audio_present
    assert len(decoded.audio) == 16000
    assert peak_frequency(decoded.audio, 16000) == pytest.approx(500, abs=2)


def test_one_frame_video_decodes_to_one_frame(tmp_path):
    path = write_video(tmp_path / "one.mp4", indexed_frame(5)[None], 25)
    decoded = decode(path)
    assert decoded.frames.shape == (1, 64, 64, 3) and read_index(decoded.frames[0]) == 5


def test_broken_files_raise_typed_errors_naming_file_and_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    good_mp4 = write_indexed_video(tmp_path / "good.mp4", 50, audio=tone(440, 2, 16000), sample_rate=16000)
    good_mkv = write_indexed_video(tmp_path / "good.mkv", 50, audio=tone(440, 2, 16000), sample_rate=16000)
    good_web = write_indexed_video(tmp_path / "web.mp4", 100, audio=tone(440, 4, 16000), faststart=True)
    cut_mp4, cut_mkv, cut_web = tmp_path / "cut.mp4", tmp_path / "cut.mkv", tmp_path / "cut_web.mp4"
    cut_mp4.write_bytes(good_mp4.read_bytes()[: good_mp4.stat().st_size // 2])
    cut_mkv.write_bytes(good_mkv.read_bytes()[: good_mkv.stat().st_size // 2])
    cut_web.write_bytes(good_web.read_bytes()[: good_web.stat().st_size * 4 // 5])
    cases = [
        (tmp_path / "missing.mp4", MissingFileError, "file does not exist"),
        (empty, EmptyFileError, r"file is empty \(0 bytes\)"),
        (text, NotMediaError, "not a media file FFmpeg recognises"),
        (cut_mp4, CorruptMediaError, "looks like MP4/MOV but FFmpeg cannot open it"),
        (
            cut_mkv,
            CorruptMediaError,
            r"truncated: the streams end at \d\.\d\d s but the container declares 2\.\d",
        ),
        (
            cut_web,
            CorruptMediaError,
            r"truncated: the streams end at \d\.\d\d s but the container declares 4\.00 s",
        ),
    ]
    for path, error_type, reason in cases:
        with pytest.raises(error_type, match=f"^{path}: {reason}") as caught:
            decode(path)
        assert isinstance(caught.value, MediaError) and caught.value.path == str(path)


def test_too_long_for_memory_points_to_the_streaming_api(tmp_path):
    path = write_indexed_video(tmp_path / "long.mp4", 75)
    with pytest.raises(
        MediaTooLongError, match=r"asked to load 3\.0 s .* max_duration=2 s; use iter_windows\(\)"
    ):
        decode(path, max_duration=2)
    assert decode(path, duration=2.0, max_duration=2).frames.shape[0] == 50


def test_windows_match_decode_and_flag_the_partial_tail(tmp_path):
    path = write_indexed_video(tmp_path / "w.mp4", 40, 25, audio=tone(700, 1.6, 16000), sample_rate=16000)
    full = decode(path)
    with pytest.warns(MediaWarning, match="last 8 frames"):
        windows = list(iter_windows(path, 16))
    assert [(w.index, w.start_frame, w.n_valid) for w in windows] == [(0, 0, 16), (1, 16, 16)]
    for window in windows:
        span = slice(window.start_frame, window.start_frame + 16)
        assert np.array_equal(window.frames, full.frames[span])
        assert np.allclose(window.audio, full.audio[span.start * 640 : span.stop * 640], atol=1e-6)
        assert window.end_time - window.start_time == pytest.approx(0.64)
    with pytest.warns(MediaWarning, match="last window has 8 real frames of 16"):
        padded = list(iter_windows(path, 16, partial="pad"))
    assert (
        padded[-1].n_valid == 8 and shown_indices(padded[-1].frames) == [32 + i for i in range(8)] + [39] * 8
    )
    assert np.abs(padded[-1].audio[8 * 640 :]).max() == 0
    with pytest.warns(MediaWarning, match="last window has 8 real frames of 16; kept short"):
        kept = list(iter_windows(path, 16, partial="keep"))
    assert [len(w.frames) for w in kept] == [16, 16, 8] and kept[-1].n_valid == 8
    assert np.array_equal(kept[-1].frames, padded[-1].frames[:8])
    assert np.array_equal(kept[-1].audio, padded[-1].audio[: 8 * 640])
    sliding = list(iter_windows(path, 16, hop=8))
    assert [w.start_frame for w in sliding] == [0, 8, 16, 24]
    assert np.array_equal(sliding[3].frames, full.frames[24:40])
    with pytest.raises(MediaTooShortError, match="shorter than one window of 64 frames"):
        list(iter_windows(path, 64))


def _peak_stream_memory(path) -> tuple[int, int, int]:
    """(windows, peak bytes allocated by Python/numpy, peak RSS growth incl. FFmpeg) while streaming."""
    process = psutil.Process()
    rss_before = rss_peak = process.memory_info().rss
    tracemalloc.start()
    count = 0
    for window in iter_windows(path, 16):
        count += 1
        if window.index % 25 == 0:
            rss_peak = max(rss_peak, process.memory_info().rss)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak, rss_peak - rss_before


def test_streaming_ten_minutes_uses_no_more_memory_than_one_minute(tmp_path):
    one_second = tone(300, 1.0, 16000)
    paths = {}
    for minutes in (1, 10):
        seconds = 60 * minutes
        # 5 fps sources keep writing fast; the output is still 25 fps, 15,000 frames for 10 minutes.
        paths[minutes] = write_indexed_video(
            tmp_path / f"{minutes}min.mkv",
            seconds * 5,
            5,
            audio=np.resize(one_second, seconds * 16000),
            sample_rate=16000,
            audio_codec="pcm_s16le",
            preset="ultrafast",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaWarning)
        count_1, peak_1, rss_1 = _peak_stream_memory(paths[1])
        count_10, peak_10, rss_10 = _peak_stream_memory(paths[10])
    assert (count_1, count_10) == (93, 937)
    # Holding the 10-minute file would take 15,000 frames * 12 KB + 38 MB of audio; streaming stays flat.
    assert peak_10 < 1.2 * peak_1 + 200_000
    assert peak_10 < 5_000_000
    assert rss_10 < rss_1 + 20_000_000


def test_frames_without_timestamps_are_spaced_at_the_source_rate_and_flagged(tmp_path):
    path = write_indexed_video(tmp_path / "raw.h264", 30, 25)  # an elementary stream carries no timestamps
    with pytest.warns(MediaWarning, match="30 video frames had no timestamp"):
        decoded = decode(path)
    assert shown_indices(decoded.frames) == list(range(30))


def test_timeline_zero_is_the_container_start_not_the_first_picture(tmp_path):
    path = flash_and_click(tmp_path / "event.ts", 1.0, 2.0, 25, 16000, channels=1)
    with av.open(str(path)) as container:
        zero = container.start_time / av.time_base
        stream = container.streams.video[0]
        video_start = float(stream.start_time * stream.time_base)
    assert video_start - zero > 0.02  # MPEG-TS: the audio (with its encoder priming) starts first
    with pytest.warns(
        MediaWarning, match=f"video starts {video_start - zero:.3f} s after the timeline start"
    ):
        decoded = decode(path)
    event = video_start + 1.0 - zero  # the flash and the click, on the container's clock
    flash_frame = int(np.argmax(decoded.frames.mean(axis=(1, 2, 3)) > 128))
    click_sample = int(np.argmax(np.abs(decoded.audio) > 0.3))
    assert flash_frame == math.ceil(event * 25)
    assert abs(click_sample - event * 16000) <= 32


def test_a_gap_in_audio_timestamps_is_filled_with_silence_and_flagged(tmp_path):
    path = write_audio_with_gap(tmp_path / "gap.mkv", 1.0, gap_at=0.5, gap=0.2)
    with pytest.warns(MediaWarning, match=r"gap of 0\.200 s in the audio at 0\.50 s; filled with silence"):
        decoded = decode(path, require_video=False)
    assert len(decoded.audio) == 1.2 * 16000
    silent = np.abs(decoded.audio) < 1e-3
    assert silent[8000 + 50 : 11200 - 50].all()  # the gap (soxr-free: the file is already at 16 kHz)
    assert not silent[7000:7900].all() and not silent[11300:12000].all()
    assert np.allclose(decoded.audio[11200:11300], tone(440, 1.0, 16000)[8000:8100], atol=1e-3)
