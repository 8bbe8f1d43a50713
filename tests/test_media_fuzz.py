"""Damaged files decode or raise a MediaError: never another exception, a crash or a hang."""

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media_fixtures import tone, write_indexed_video

from avforensics.media.decode import decode
from avforensics.media.errors import CorruptMediaError, MediaFlags
from avforensics.media.timeline import AudioAligner

ROOT = Path(__file__).resolve().parents[1]


def test_seeded_mutations_of_valid_files_decode_or_raise_media_errors(tmp_path):
    """200 files (byte flips, truncations, duplicated chunks of 9 small mp4/mkv/webm/avi/mov/m4a/wav/mp3
    files), each decoded in a watched child process with 20 s to answer."""
    result_path = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "scripts" / "fuzz_decode.py"), "--files", "200", "--seed", "22"]
    finished = subprocess.run(
        [*command, "--json", str(result_path)], env=env, capture_output=True, text=True, timeout=300
    )
    result = json.loads(result_path.read_text())
    assert result["bad"] == [], finished.stdout
    assert finished.returncode == 0, finished.stderr
    counts = result["counts"]
    assert set(counts) <= {"decoded", "MediaError"} and sum(counts.values()) == 200
    # Both outcomes occur, so the mutations do damage files and do not only destroy them.
    assert counts["decoded"] >= 20 and counts["MediaError"] >= 20
    assert f"  decoded     {counts['decoded']}\n" in finished.stdout


def test_an_audio_codec_ffmpeg_cannot_decode_is_a_corrupt_media_error(tmp_path):
    """A damaged codec id left PyAV without a decoder (codec_context None): once an AttributeError."""
    good = write_indexed_video(tmp_path / "good.mkv", 10, audio=tone(440, 0.4, 16000), sample_rate=16000)
    data = good.read_bytes()
    assert data.count(b"A_AAC") == 1
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(data.replace(b"A_AAC", b"A_QQQ"))
    with pytest.raises(CorruptMediaError, match=r"damaged\.mkv: FFmpeg has no decoder for the audio stream"):
        decode(damaged, require_video=False)


def test_audio_timestamps_far_past_the_declared_end_are_damage_not_a_gap_to_fill(tmp_path):
    """Filling such a gap with silence once tried to allocate gigabytes (a MemoryError, not a MediaError)."""
    aligner = AudioAligner(Fraction(0), None, 16000, tmp_path / "x.avi", MediaFlags("x.avi"), Fraction(3, 5))
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
    frame.sample_rate, frame.time_base = 16000, Fraction(1, 16000)
    frame.pts = 0
    assert sum(map(len, aligner.push(frame))) == 1024
    frame.pts = 507_513_856  # 31,720 s, in a file declaring 0.6 s
    with pytest.raises(CorruptMediaError, match=r"x\.avi: damaged audio timestamps: a frame at 31719\.6 s"):
        list(aligner.push(frame))
    frame.pts = 16000 * 5  # a gap of a few seconds is still filled with silence
    with pytest.warns(UserWarning, match="gap of 4.936 s in the audio"):
        assert sum(map(len, aligner.push(frame))) == 5 * 16000 - 1024 + 1024
