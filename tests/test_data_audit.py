"""Leading-silence measurement and trimming, the dataset audit, and the data sub-commands."""

from __future__ import annotations

import argparse
import json

import data_fixtures as fx
import numpy as np
import pytest

from avforensics.cli import COMMAND_MODULES
from avforensics.data.audit import VideoStats, summarize
from avforensics.data.cli import register
from avforensics.data.silence import (
    frame_offset,
    leading_silence_seconds,
    loudness_db,
    trim_clip,
    trim_leading_silence,
)

SR = 16000


def main(argv: list[str]) -> int:
    """Run a data sub-command through its own parser (the full CLI would import every room)."""
    assert "avforensics.data.cli" in COMMAND_MODULES
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.run(args)


def tone(seconds: float, amplitude: float = 0.3, frequency: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def with_silence(silence: float, speech: float = 0.5, noise_db: float | None = None) -> np.ndarray:
    lead = np.zeros(round(silence * SR), np.float32)
    if noise_db is not None:
        lead += np.random.default_rng(0).normal(0, 10 ** (noise_db / 20), len(lead)).astype(np.float32)
    return np.concatenate([lead, tone(speech)])


def test_leading_silence_is_measured_to_the_window():
    assert leading_silence_seconds(with_silence(0.30)) == pytest.approx(0.30, abs=0.01)
    assert leading_silence_seconds(with_silence(0.25, noise_db=-70)) == pytest.approx(0.25, abs=0.01)
    assert leading_silence_seconds(tone(0.5)) == 0.0
    assert leading_silence_seconds(np.zeros(8000, np.float32)) == 0.5  # all silent: the whole clip
    assert leading_silence_seconds(np.zeros(0, np.float32)) == 0.0
    assert loudness_db(tone(1.0, amplitude=1.0)) == pytest.approx(-3.01, abs=0.01)


def test_trim_keeps_video_aligned():
    audio = with_silence(0.33)
    trimmed, seconds = trim_leading_silence(audio, SR, fps=25)
    assert seconds == pytest.approx(0.32) and frame_offset(seconds, 25) == 8
    assert len(audio) - len(trimmed) == 8 * 640
    _, capped = trim_leading_silence(audio, SR, fps=25, max_seconds=0.1)
    _, kept = trim_leading_silence(audio, SR, fps=25, keep_seconds=0.1)
    assert (capped, kept) == (pytest.approx(0.08), pytest.approx(0.2))
    frames = np.arange(30)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    frames_out, audio_out, seconds = trim_clip(frames, audio, fps=25, sample_rate=SR)
    assert frames_out[0, 0, 0, 0] == 8 and len(frames_out) == 22 and len(audio_out) == len(audio) - 5120


def test_summary_auc_of_each_statistic_alone():
    videos = [VideoStats(f"r{i}", 0, "RVRA", True, 5.0 + i, 0.0 + 0.01 * i, -20.0) for i in range(4)]
    videos += [VideoStats(f"f{i}", 1, "FVFA", True, 8.0 - i, 0.2 + 0.01 * i, -20.0) for i in range(4)]
    videos.append(VideoStats("bad", 1, "FVFA", error="CorruptMediaError: x"))
    report = summarize("toy", videos)
    assert report.auc["leading_silence"] == 1.0 and report.auc["loudness_db"] == 0.5
    assert report.auc["duration"] == pytest.approx(0.5)
    assert report.category_auc["FVFA"]["leading_silence"] == 1.0
    assert report.classes["fake"]["leading_silence"]["median"] == pytest.approx(0.215)
    assert [video.id for video in report.failed] == ["bad"]


def test_statistic_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    positive, scores = rng.random(40) > 0.5, rng.integers(0, 5, 40).astype(float)
    videos = [
        VideoStats(f"v{i}", int(fake), "X", True, 1.0, float(score), -20.0)
        for i, (fake, score) in enumerate(zip(positive, scores, strict=True))
    ]
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert summarize("toy", videos).auc["leading_silence"] == pytest.approx(expected)
    only_real = [video for video in videos if video.label == 0]
    assert summarize("toy", only_real).auc == dict.fromkeys(("duration", "leading_silence", "loudness_db"))


def test_audit_command_on_decoded_videos(tmp_path, capsys):
    rows = []
    for index, silence in enumerate((0.0, 0.0, 0.24, 0.32)):
        path = f"v{index}.mp4"
        fx.write_tiny_video(tmp_path / path, with_silence(silence, speech=0.64 - silence), frames=16)
        rows.append({"path": path, "label": int(silence > 0), "category": "FVFA" if silence else "RVRA"})
    fx.write_tiny_video(tmp_path / "mute.mp4", None, frames=16)
    rows.append({"path": "mute.mp4", "label": 0, "category": "RVRA"})
    fx.write_manifest(tmp_path, rows)  # rewrites nothing: the mp4 files exist already
    out = tmp_path / "audit.json"
    assert main(["audit", "manifest", str(tmp_path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["auc"]["leading_silence"] == 1.0
    silences = {v["id"]: v["leading_silence"] for v in report["videos"]}
    assert silences["manifest/v3.mp4"] == pytest.approx(0.32, abs=0.03)
    assert silences["manifest/v0.mp4"] < 0.05 and silences["manifest/mute.mp4"] is None
    mute = next(v for v in report["videos"] if v["id"] == "manifest/mute.mp4")
    assert mute["audio_present"] is False and "no audio stream" in mute["warnings"][0]
    assert report["classes"]["real"]["duration"]["median"] == pytest.approx(0.64)
    assert "leading_silence" in capsys.readouterr().out
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    fx.write_manifest(tmp_path, [*rows, {"path": "broken.mp4", "label": 1, "category": "FVFA"}])
    assert main(["audit", "manifest", str(tmp_path)]) == 1
    assert "FAILED manifest/broken.mp4" in capsys.readouterr().out


def test_split_and_verify_commands(tmp_path, capsys):
    root = fx.write_fakeavceleb(tmp_path / "favc")
    out = tmp_path / "loco.csv"
    argv = ["split", "--protocol", "leave-one-category-out", "--data", str(root), "--seed", "2", "--out",
            str(out), "--param", "held_out=FVFA-GAN", "--param", "real_test_fraction=0.5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "test 15" in printed
    sha = printed.split("sha256 ")[1].strip()
    assert main(["verify-split", str(out), "--sha256", sha]) == 0
    out.write_text(out.read_text().replace('"seed": 2', '"seed": 3'))
    assert main(["verify-split", str(out)]) == 1
    assert "does not match the recorded" in capsys.readouterr().err


def test_adapter_options_reach_the_adapter(tmp_path, capsys):
    root = fx.write_faceforensics(tmp_path / "ffpp")
    out = str(tmp_path / "s.json")
    argv = ["split", "--protocol", "random", "--data", f"faceforensics={root}", "--out", out]
    assert main(argv) == 0
    assert main([*argv, "--adapter-option", "faceforensics.compression=c40"]) == 1
    assert "no c40 videos" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="does not take options"):
        main([*argv, "--adapter-option", "faceforensics.quality=high"])
