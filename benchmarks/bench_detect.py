"""Detect throughput (seconds of video scored per second) per registered detector, side by side with
decoding alone, the media pipeline without the model (decode + faces + windows), and the machine's
matmul-bound limit for the model's FLOPs (GFLOP/s of a large matmul measured in the same run; the model's
FLOPs per window counted with torch.utils.flop_counter).

    .venv/bin/python benchmarks/bench_detect.py [--seconds 20] [--models avprompt cad macbdf]

Models are built from their small configuration with untrained weights: throughput does not depend on
the weights' values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from avforensics.experiment.config import load_config
from avforensics.experiment.data import collate_windows
from avforensics.inference.detector import Detector
from avforensics.inference.preprocessing import Preprocessing, VideoChunks
from avforensics.media.decode import iter_windows
from avforensics.media.encode import write_video
from avforensics.media.mtcnn import MTCNN
from avforensics.models.registry import build_model
from avforensics.protocols.demo import demo_config_path, demo_detectors

FPS, RATE = 25, 16000


def talking_video(path: Path, seconds: float, width: int = 320, height: int = 240) -> Path:
    """A face-like ellipse moving slowly over a noisy background, with a modulated tone."""
    rng = np.random.default_rng(0)
    count = round(seconds * FPS)
    yy, xx = np.mgrid[:height, :width]
    background = rng.integers(20, 60, (height, width, 3), dtype=np.uint8)

    def frames():
        for index in range(count):
            frame = background.copy()
            cx = width / 2 + 20 * np.sin(index / 25)
            inside = ((xx - cx) / 45) ** 2 + ((yy - height / 2) / 60) ** 2 <= 1
            frame[inside] = (205, 165, 135)
            yield frame

    t = np.arange(count * RATE // FPS) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    return write_video(path, frames(), FPS, audio, RATE, size=(width, height))


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def seconds_per_second(video_seconds: float, run, *arguments) -> float:
    start = time.perf_counter()
    run(*arguments)
    return video_seconds / (time.perf_counter() - start)


def decode_all(video: Path) -> None:
    for _ in iter_windows(video, 750, partial="pad"):
        pass


def prepare_all(video: Path, preprocessing: Preprocessing, faces: MTCNN) -> None:
    for _ in VideoChunks(video, preprocessing, faces):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test video")
    parser.add_argument("--models", nargs="+", help="detectors (default: every registered one)")
    args = parser.parse_args()
    names, skipped = demo_detectors(args.models)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}")
    with tempfile.TemporaryDirectory() as folder:
        video = talking_video(Path(folder) / "bench.mp4", args.seconds)
        gflops = matmul_gflops()
        decode_only = seconds_per_second(args.seconds, decode_all, video)
        print(f"machine: {torch.get_num_threads()} torch threads, matmul {gflops:.1f} GFLOP/s; "
              f"decoding alone {decode_only:.1f} s/s on a {args.seconds:.0f} s 320x240 video")
        header = ("detector", "GFLOP/window", "pipeline s/s", "detect s/s", "matmul-bound s/s",
                  "detect/limit")
        rows = [header]
        faces = MTCNN()
        for name in names:
            config = load_config(demo_config_path(name))
            preprocessing = Preprocessing.from_config(config)
            model = build_model(config.model.name, config.model.config, **config.model.overrides).eval()
            detector = Detector(model, preprocessing, face_detector=faces, batch_size=config.data.batch_size)
            pipeline = seconds_per_second(args.seconds, prepare_all, video, preprocessing, faces)
            windows = next(iter(VideoChunks(video, preprocessing, faces))).windows[:1]
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                model(collate_windows(windows))
            flops_per_second = counter.get_total_flops() * FPS / preprocessing.clip_frames
            detect = seconds_per_second(args.seconds, detector.predict, video)
            limit = gflops * 1e9 / flops_per_second
            rows.append((name, f"{counter.get_total_flops() / 1e9:.2f}", f"{pipeline:.2f}", f"{detect:.2f}",
                         f"{limit:.2f}", f"{detect / limit:.1%}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
