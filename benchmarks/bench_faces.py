"""Frames per second of decode + face detection + tracking + cropping, side by side with decode alone.

A moving, zooming view of a real face photo (skimage's astronaut) is encoded at 360p and 720p; each file
is then decoded alone, and decoded and run through `extract_faces` at stride 1 and at the default stride.
The ratio printed is (decode alone fps) / (full pipeline fps): how many times face extraction slows
decoding down. Frames per wall second and per CPU second (all threads of this process) are both given:
on a shared machine the CPU figure is the steadier one. Run: .venv/bin/python benchmarks/bench_faces.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from avforensics.media.decode import decode
from avforensics.media.encode import write_video
from avforensics.media.faces import FaceTrackerConfig, extract_faces
from avforensics.media.mtcnn import MTCNN

SIZES = {"360p": (640, 360), "720p": (1280, 720)}


def moving_view(count: int, width: int, height: int) -> np.ndarray:
    """`count` frames of a camera panning and zooming over the astronaut photo (face always in view)."""
    photo = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1)[None].float()
    frames = []
    for progress in np.linspace(0, 1, count):
        half_width = 250 - 90 * progress
        centre_x, centre_y = 250 - 30 * progress, 170 - 40 * progress
        xs = torch.linspace(centre_x - half_width, centre_x + half_width, width) / 256 - 1
        ys = torch.linspace(-1, 1, height) * half_width * height / width / 256 + centre_y / 256 - 1
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([grid_x, grid_y], dim=-1)[None].float()
        frame = F.grid_sample(photo, grid, padding_mode="border", align_corners=False)[0]
        frames.append(frame.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())
    return np.stack(frames)


def timed(run) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds and the result of `run()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the test files have no audio track; decode() says so every time
    detector = MTCNN()
    default_stride = FaceTrackerConfig().stride
    print(f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f}")
    print(f"{'':12}{'frames per wall second':^31}{'frames per CPU second':^31}")
    columns = f" {'decode':>9} {'pipeline':>9} {'ratio':>9}"
    print(f"{'size':>5} {'stride':>6}{columns}{columns} {'found':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for name, (width, height) in SIZES.items():
            path = write_video(Path(folder) / f"{name}.mp4", moving_view(args.frames, width, height), fps=25)
            decode_wall, decode_cpu, _ = timed(lambda path=path: decode(path))
            for stride in (1, default_stride):
                config = FaceTrackerConfig(stride=stride)
                wall, cpu, crops = timed(
                    lambda path=path, config=config: extract_faces(
                        decode(path).frames, detector, config, path
                    )
                )
                row = f"{name:>5} {stride:>6}"
                for base, full in ((decode_wall, wall), (decode_cpu, cpu)):
                    row += f" {args.frames / base:>9.1f} {args.frames / full:>9.1f} {full / base:>9.1f}"
                print(row + f" {crops.found_ratio:>6.0%}")

if __name__ == "__main__":
    main()
