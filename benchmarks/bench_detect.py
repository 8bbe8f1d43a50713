"""Detect throughput (seconds of video scored per second) per registered detector, side by side with
decoding alone, the media pipeline without the model (decode + faces + windows), and the machine's
matmul-bound limit for the model's FLOPs (GFLOP/s of a large matmul measured in the same run; the model's
FLOPs per window counted with torch.utils.flop_counter).

Then, on a 720p and a 1080p 30 fps talking-head clip (talking_head.py), the real-time factor (seconds of
work per second of video; below 1 keeps up with the stream) of each stage of `detect` and of the whole,
per detector, beside the targets of the speed issue:

    .venv/bin/python benchmarks/bench_detect.py [--seconds 20] [--models avprompt cad macbdf]
        [--sizes 720p 1080p] [--inputs DIR]

Models are built from their small configuration with untrained weights: throughput does not depend on
the weights' values.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from talking_head import SECONDS, SIZES, talking_head
from torch.utils.flop_counter import FlopCounterMode

from avforensics.experiment.config import load_config
from avforensics.experiment.data import collate_windows
from avforensics.inference.detector import Detector
from avforensics.inference.preprocessing import Preprocessing, VideoChunks, window_items
from avforensics.media.clips import samples_per_frame
from avforensics.media.decode import iter_windows
from avforensics.media.encode import write_video
from avforensics.media.faces import crop_faces, track_faces
from avforensics.media.mtcnn import MTCNN
from avforensics.models.registry import build_model
from avforensics.protocols.demo import demo_config_path, demo_detectors

FPS, RATE = 25, 16000
STAGES = ("decode", "faces", "crops", "windows", "model")
TARGET_TOTAL = {"720p": 0.25, "1080p": 0.5}  # time / clip duration, model loading excluded


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


def stage_seconds(video: Path, detector: Detector, clock=time.perf_counter) -> dict[str, float]:
    """Seconds (of `clock`) spent in each stage of `detect` on `video`, each stage run on the previous
    one's output through the same public functions `Detector.predict` chains, then the whole `predict`
    once (after the stages, so it finds kernels chosen and memory allocated, as a long run does)."""
    preprocessing, faces = detector.preprocessing, detector.face_detector
    options, tracker = preprocessing.options, preprocessing.options.tracker()
    spf = samples_per_frame(options.fps, options.sample_rate)
    chunk_frames = VideoChunks(video, preprocessing, faces, detector.chunk_seconds).chunk_frames
    spent = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, run, *arguments):
        start = clock()
        result = run(*arguments)
        spent[stage] += clock() - start
        return result

    # As VideoChunks reads: a short last chunk kept short where iter_windows can (older versions pad it).
    modes = str(inspect.signature(iter_windows).parameters["partial"].annotation)
    partial = "keep" if "keep" in modes else "pad"
    pieces = timed("decode", list, iter_windows(video, chunk_frames, fps=options.fps,
                                                 sample_rate=options.sample_rate, max_side=options.max_side,
                                                 partial=partial))
    for piece in pieces:
        frames = piece.frames[: piece.n_valid]
        audio = piece.audio[: piece.n_valid * spf] if piece.audio is not None else None
        track = timed("faces", track_faces, frames, faces, tracker, video)
        crops = timed("crops", crop_faces, frames, track, tracker, video)
        windows = timed("windows", window_items, crops.frames, audio, preprocessing, str(video))
        timed("model", detector.window_logits, windows)
    start = clock()
    detector.predict(video)
    spent["total"] = clock() - start
    return spent


def print_stage_table(sizes: list[str], names: list[str], inputs: Path, cpu: bool) -> None:
    """Real-time factor of each stage and of `detect` as a whole, per input size and detector."""
    faces = MTCNN()
    clock = time.process_time if cpu else time.perf_counter
    print(f"\nreal-time factor = {'CPU' if cpu else 'wall'} seconds of work / {SECONDS} s of video (30 fps "
          f"talking head); {torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")
    header = ("input", "detector", *STAGES, "sum", "detect", "target", "met")
    rows = [header]
    for size in sizes:
        video = talking_head(inputs, size)
        for name in names:
            config = load_config(demo_config_path(name))
            preprocessing = Preprocessing.from_config(config)
            model = build_model(config.model.name, config.model.config, **config.model.overrides).eval()
            detector = Detector(model, preprocessing, face_detector=faces)  # `detect`'s own batching
            spent = stage_seconds(video, detector, clock)
            factors = {stage: seconds / SECONDS for stage, seconds in spent.items()}
            total, target = factors["total"], TARGET_TOTAL[size]
            rows.append((size, name, *(f"{factors[s]:.3f}" for s in STAGES),
                         f"{sum(factors[s] for s in STAGES):.3f}", f"{total:.3f}", f"<= {target}",
                         "yes" if total <= target else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test video")
    parser.add_argument("--models", nargs="+", help="detectors (default: every registered one)")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES),
                        help="talking-head inputs to time stage by stage (none: skip)")
    parser.add_argument("--inputs", type=Path, help="folder keeping the talking-head videos between runs")
    parser.add_argument("--skip-limit", action="store_true", help="skip the 320x240 matmul-bound table")
    parser.add_argument("--cpu", action="store_true", help="time stages in CPU seconds of this process "
                        "(all threads): steadier than wall time on a shared machine")
    args = parser.parse_args()
    names, skipped = demo_detectors(args.models)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}")
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_limit:
            print_limit_table(Path(folder), names, args.seconds)
        if args.sizes:
            inputs = args.inputs or Path(folder)
            inputs.mkdir(parents=True, exist_ok=True)
            print_stage_table(args.sizes, names, inputs, args.cpu)


def print_limit_table(folder: Path, names: list[str], seconds: float) -> None:
    """Detect throughput on a 320x240 clip against the matmul-bound limit of each model's FLOPs."""
    video = talking_video(Path(folder) / "bench.mp4", seconds)
    gflops = matmul_gflops()
    decode_only = seconds_per_second(seconds, decode_all, video)
    print(f"machine: {torch.get_num_threads()} torch threads, matmul {gflops:.1f} GFLOP/s; "
          f"decoding alone {decode_only:.1f} s/s on a {seconds:.0f} s 320x240 video")
    header = ("detector", "GFLOP/window", "pipeline s/s", "detect s/s", "matmul-bound s/s",
              "detect/limit")
    rows = [header]
    faces = MTCNN()
    for name in names:
        config = load_config(demo_config_path(name))
        preprocessing = Preprocessing.from_config(config)
        model = build_model(config.model.name, config.model.config, **config.model.overrides).eval()
        detector = Detector(model, preprocessing, face_detector=faces, batch_size=config.data.batch_size)
        pipeline = seconds_per_second(seconds, prepare_all, video, preprocessing, faces)
        windows = next(iter(VideoChunks(video, preprocessing, faces))).windows[:1]
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(collate_windows(windows))
        flops_per_second = counter.get_total_flops() * FPS / preprocessing.clip_frames
        detect = seconds_per_second(seconds, detector.predict, video)
        limit = gflops * 1e9 / flops_per_second
        rows.append((name, f"{counter.get_total_flops() / 1e9:.2f}", f"{pipeline:.2f}", f"{detect:.2f}",
                     f"{limit:.2f}", f"{detect / limit:.1%}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
