"""Decode throughput (seconds of video per second): our decode() and iter_windows() against PyAV's plain loop.

The reference decodes every video frame to RGB and every audio frame to an array, with no frame-rate or
sample-rate conversion, alignment or rotation: the floor any PyAV-based decoder pays. The ratio shows what
our timeline work costs on top. Sources are 30 fps H.264 with 44.1 kHz stereo AAC, converted to 25 fps and
16 kHz mono.

    .venv/bin/python benchmarks/bench_decode.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from avforensics.media.decode import decode, iter_windows
from avforensics.media.encode import write_video
from avforensics.media.errors import MediaWarning

SOURCE_FPS = 30
SOURCE_RATE = 44100


def moving_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """A drifting colour gradient with a little noise: realistic to encode and decode, cheap to make."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    for index in range(count):
        red = (x + 4 * index) % 256
        green = (y + 2 * index) % 256
        blue = ((x + y) // 2 + index) % 256
        frame = np.stack([red, green, blue], axis=-1).astype(np.int16)
        frame += rng.integers(-8, 9, size=frame.shape, dtype=np.int16)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def make_source(directory: Path, width: int, height: int, seconds: float) -> Path:
    t = np.arange(round(seconds * SOURCE_RATE)) / SOURCE_RATE
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(
        np.float32
    )
    count = round(seconds * SOURCE_FPS)
    return write_video(
        directory / f"{height}p.mp4",
        moving_frames(count, width, height),
        SOURCE_FPS,
        audio,
        SOURCE_RATE,
        size=(width, height),
    )


def plain_pyav(path: Path, keep: bool = False) -> list[np.ndarray]:
    """Every frame to an array; `keep` holds the RGB frames in memory, as a whole-file decode must."""
    kept = []
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for frame in container.decode(video=0, audio=0):
            array = (
                frame.to_ndarray(format="rgb24") if isinstance(frame, av.VideoFrame) else frame.to_ndarray()
            )
            if keep and array.dtype == np.uint8:
                kept.append(array)
    return kept


def plain_pyav_kept(path: Path) -> None:
    plain_pyav(path, keep=True)


def ours_decode(path: Path) -> None:
    decode(path)


def ours_windows(path: Path) -> None:
    for _ in iter_windows(path, 16):
        pass


def cpu_seconds() -> float:
    """User + system time of this process, all threads: robust to other load on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_times(run: Callable[[Path], None], path: Path, repeats: int) -> tuple[float, float]:
    """Fastest (wall, CPU) seconds of `repeats` runs: the least disturbed by other processes."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        run(path)
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each test video")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", MediaWarning)
    runs = (plain_pyav, plain_pyav_kept, ours_windows, ours_decode)
    print("throughput = seconds of video per second of wall time (per CPU second in brackets)")
    header = ("plain PyAV", "plain, kept", "iter_windows", "decode()", "windows/plain", "decode/kept")
    print(f"{'size':>6}" + "".join(f"{name:>18}" for name in header))
    with tempfile.TemporaryDirectory() as directory:
        for width, height in ((640, 360), (1280, 720)):
            path = make_source(Path(directory), width, height, args.seconds)
            times = [best_times(run, path, args.repeats) for run in runs]
            cells = [f"{args.seconds / wall:7.1f}x ({args.seconds / cpu:5.1f}x)" for wall, cpu in times]
            for ours, reference in ((2, 0), (3, 1)):
                (wall, cpu), (ref_wall, ref_cpu) = times[ours], times[reference]
                cells.append(f"{ref_wall / wall:7.2f} ({ref_cpu / cpu:5.2f})")
            print(f"{height:>5}p" + "".join(f"{cell:>18}" for cell in cells))
    print("ratios: our speed as a fraction of the plain loop's (1.00 = no overhead); the streaming form is")
    print("compared with the loop that discards frames, decode() with the loop that keeps them in memory")


if __name__ == "__main__":
    main()
