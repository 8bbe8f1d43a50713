"""Live detection latency and real-time factor per detector, on a 640x480 25 fps talking-head stream.

A moving, zooming view of a real face photo (skimage's astronaut, as in bench_faces.py) with a modulated
tone is encoded as H.264 + AAC MPEG-TS, then sent at its real pace by `ffmpeg -re ... -f mpegts pipe:1`
into `run_live` (the code behind `detect --live -`), with MTCNN and each detector's small configuration
(untrained weights: speed does not depend on their values). Per configuration it reports:

- stream -> event: wall time from the moment the window's last frame was due on the wire (sender start +
  window end) to its event, median and 95th percentile; ready -> event: from the decoded window to its
  event (the event's `latency_s`); scored and skipped windows;
- wall RTF: scorer wall seconds per window / seconds between windows (the `end` record's real-time
  factor; above 1 the loop skips windows);
- CPU per stream second: CPU seconds of the whole process (decoding, faces, model, all threads) per second
  of stream during the live run, the figure that decides whether 2 idle cores keep up (below 2).

The machine is shared, so a second table measures the costs one after the other in CPU seconds (steadier
than wall time under load): decoding per stream second, and faces (causal tracking + crops) and model per
window; `CPU/stream s` = decoding + (faces + model) x windows per second, for each window stride.

    .venv/bin/python benchmarks/bench_live.py [--seconds 20] [--models avprompt] [--strides 4 8 16 25]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from bench_faces import moving_view

from avforensics.experiment.config import load_config
from avforensics.inference.causal import CausalWindows
from avforensics.inference.detector import Detector
from avforensics.inference.live import LiveOptions, run_live
from avforensics.inference.preprocessing import Preprocessing
from avforensics.media.decode import AVWindow
from avforensics.media.encode import write_video
from avforensics.media.live import chunk_source, live_windows
from avforensics.media.mtcnn import MTCNN
from avforensics.models.registry import build_model

FPS, RATE = 25, 16000


def talking_head(folder: Path, seconds: float) -> Path:
    """`seconds` of 640x480 25 fps talking head as MPEG-TS (H.264 with a 1-s GOP, AAC)."""
    count = round(seconds * FPS)
    frames = moving_view(count, 640, 480)
    t = np.arange(count * RATE // FPS) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    clip = write_video(folder / "head.mp4", frames, FPS, audio, RATE)
    stream = folder / "head.ts"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset",
                    "veryfast", "-tune", "zerolatency", "-g", "25", "-c:a", "aac", "-f", "mpegts",
                    str(stream)], check=True)
    return stream


def live_run(detector: Detector, stream: Path, stride: int) -> tuple[list[dict], dict, float, float]:
    """(window events, summary, sender start time, process CPU seconds) of one real-time pass."""
    # A low-latency sender, as a live encoder is set up: no muxing delay, packets flushed as written.
    sender = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-i", str(stream), "-c", "copy",
                               "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1", "-f", "mpegts",
                               "pipe:1"], stdout=subprocess.PIPE)
    started, cpu = time.time(), time.process_time()
    chunks = iter(lambda: sender.stdout.read1(1 << 16), b"")
    events: list[dict] = []
    summary = run_live(detector, chunk_source(chunks, "bench"), events.append,
                       LiveOptions(window_stride=stride))
    cpu = time.process_time() - cpu
    sender.wait()
    return [e for e in events if e["type"] == "window"], summary, started, cpu


def stage_costs(detector: Detector, stream: Path, seconds: float) -> tuple[float, float, float]:
    """CPU seconds: decoding per stream second, faces per window, model per window (one after the other)."""
    prep = detector.preprocessing
    cpu = time.process_time()
    windows = [w for w in live_windows(chunk_source([stream.read_bytes()], "bench"), prep.clip_frames)
               if isinstance(w, AVWindow)]
    decode = (time.process_time() - cpu) / seconds
    causal = CausalWindows(prep, detector.face_detector, "bench")
    cpu = time.process_time()
    chunks = [causal.chunk(window) for window in windows]
    faces = (time.process_time() - cpu) / len(chunks)
    cpu = time.process_time()
    for chunk in chunks:
        detector.window_probabilities(chunk.windows)
    model = (time.process_time() - cpu) / len(chunks)
    return decode, faces, model


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("| " + " | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--models", nargs="+", default=["avprompt", "cad", "macbdf"])
    parser.add_argument("--strides", nargs="+", type=int, default=[4, 8, 16, 25],
                        help="window strides in frames (4 = consecutive windows of the small configs)")
    parser.add_argument("--min-face", type=int, default=20, help="MTCNN's smallest face in pixels")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    faces = MTCNN(min_face_size=args.min_face)
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}, MTCNN min face {args.min_face} px\n")
    live_rows = [("detector", "stride", "every", "scored", "skipped", "stream->event p50", "p95",
                  "ready->event p50", "wall RTF", "CPU/stream s")]
    cost_rows = [("detector", "decode CPU/stream s", "faces CPU/window", "model CPU/window",
                  *(f"CPU/stream s @{stride}" for stride in args.strides))]
    with tempfile.TemporaryDirectory() as folder:
        stream = talking_head(Path(folder), args.seconds)
        for name in args.models:
            config = load_config(f"{name}/small")
            preprocessing = Preprocessing.from_config(config)
            model = build_model(config.model.name, config.model.config, **config.model.overrides).eval()
            detector = Detector(model, preprocessing, face_detector=faces, batch_size=1)
            decode, face_cost, model_cost = stage_costs(detector, stream, args.seconds)  # also warms up
            cost_rows.append((name, f"{decode:.3f}", f"{face_cost:.3f}", f"{model_cost:.3f}",
                              *(f"{decode + (face_cost + model_cost) * FPS / stride:.2f}"
                                for stride in args.strides)))
            print(*cost_rows[-1], flush=True)
            for stride in args.strides:
                if stride < preprocessing.clip_frames:
                    continue
                windows, summary, started, cpu = live_run(detector, stream, stride)
                delays = np.array([w["time"] - started - w["end"] for w in windows])
                live_rows.append((name, str(stride), f"{stride / FPS:.2f} s", str(summary["windows_scored"]),
                                  str(summary["windows_skipped"]), f"{np.median(delays):.2f} s",
                                  f"{np.percentile(delays, 95):.2f} s",
                                  f"{np.median([w['latency_s'] for w in windows]):.2f} s",
                                  f"{summary['real_time_factor']:.2f}",
                                  f"{cpu / args.seconds:.2f}"))
                print(*live_rows[-1], flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}\n")
    print_table(cost_rows)
    print_table(live_rows)


if __name__ == "__main__":
    main()
