"""`detect` start-up: a fresh process scoring a one-frame file (imports, model load, face detector, one
decode), per checkpoint, side by side with the floor every start pays (a Python process importing torch)
and the 2-second target of the speed issue.

    .venv/bin/python benchmarks/bench_startup.py --model runs/macbdf/intra/calibrated.ckpt [--model ...]
        [--repeats 3]

Wall seconds depend on what else the machine runs; CPU seconds (user + system of the child) much less,
so both are printed, each the median of the repeats.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avforensics.media.encode import write_video

TARGET_SECONDS = 2.0


def one_frame_video(path: Path) -> Path:
    """One 640x480 frame of noise and 40 ms of a tone: the smallest file detect scores."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    audio = (0.2 * np.sin(2 * np.pi * 440 * np.arange(640) / 16000)).astype(np.float32)
    return write_video(path, [frame], 25, audio, 16000)


def timed(command: list[str], repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of running `command` to completion."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="CKPT", help="checkpoint(s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        video = one_frame_video(Path(folder) / "one-frame.mp4")
        floor = timed([sys.executable, "-c", "import torch"], args.repeats)
        rows = [("python -c 'import torch' (floor)", *floor)]
        for checkpoint in args.model:
            command = [sys.executable, "-m", "avforensics.cli", "detect", str(video), "--model", checkpoint]
            rows.append((f"detect one frame, {checkpoint}", *timed(command, args.repeats)))
    print(f"| start | wall s | CPU s | wall / {TARGET_SECONDS:g} s target | wall / floor |")
    print("|---|---|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / TARGET_SECONDS:.2f} | {wall / floor[0]:.2f} |")


if __name__ == "__main__":
    main()
