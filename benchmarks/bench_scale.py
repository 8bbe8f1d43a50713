"""The scaling line of `prepare`: seconds per video on the local engine and on Ray, with 1 and 2 workers.

Each run prepares the same synthetic corpus into a fresh folder (MTCNN every `--stride` frames, 224 px
crops), so the cost is decoding, face detection, cropping and the write; Ray's start-up (once, a few seconds)
is timed apart, its per-run cost (starting the actors, each loading MTCNN) is counted in. Ray runs privately
on this machine with `--num-cpus` CPUs, listening on the loopback address, usage statistics off.

    .venv/bin/python benchmarks/bench_scale.py [--videos 8] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

# Read by Ray when first imported: a one-node cluster on the loopback address, no usage statistics.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

from avforensics.data.adapters import get_adapter  # noqa: E402
from avforensics.data.prepare import PrepareOptions, prepare_dataset  # noqa: E402
from avforensics.data.workers import local_map  # noqa: E402
from avforensics.media.errors import MediaWarning  # noqa: E402
from avforensics.scale.ray_map import RayMap, ray_session  # noqa: E402
from avforensics.synth.corpus import generate_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8, help="size of the generated corpus")
    parser.add_argument("--stride", type=int, default=5, help="face detection every N frames")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the private Ray")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the one-worker local run prepares in this process, as each worker: one thread
    warnings.simplefilter("ignore", MediaWarning)
    options = PrepareOptions(stride=args.stride)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        print(f"generating {args.videos} synthetic videos ...")
        generate_corpus(work / "corpus", args.videos, seed=0, workers=2)
        records = get_adapter("synthetic").records(work / "corpus")

        def seconds_per_video(engine: str, workers: int, item_map=local_map) -> float:
            start = time.perf_counter()
            counts = prepare_dataset(records, work / f"{engine}{workers}", options, dataset="synthetic",
                                     workers=workers, item_map=item_map)
            assert counts["prepared"] == len(records), counts
            return (time.perf_counter() - start) / len(records)

        results = {("local", workers): seconds_per_video("local", workers) for workers in (1, 2)}
        start = time.perf_counter()
        with ray_session(num_cpus=args.num_cpus):
            started = time.perf_counter() - start
            results |= {("ray", workers): seconds_per_video("ray", workers, RayMap()) for workers in (1, 2)}
    print(f"{len(records)} videos, 224 px crops, MTCNN every {args.stride} frames, one thread per worker; "
          f"Ray started in {started:.1f} s ({args.num_cpus} CPUs)")
    print(f"{'engine':<8}{'workers':>8}{'s/video':>10}{'x 1 worker':>12}")
    for (engine, workers), seconds in results.items():
        print(f"{engine:<8}{workers:>8}{seconds:>10.2f}{results[engine, 1] / seconds:>12.2f}")


if __name__ == "__main__":
    main()
