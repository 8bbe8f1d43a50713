"""Preparation throughput (videos per second): `prepare_dataset` with 1 and 2 workers against plain decoding.

Plain decoding is `media.decode.decode()` of each file at 25 fps / 16 kHz and nothing else: the floor of any
preparation. Preparation adds face detection (MTCNN every `--stride` frames), tracking, cropping and the
compressed write; reading an entry back from the cache is what training pays instead, every epoch, so
that is timed too. Runs on a synthetic corpus generated for the occasion (or `--root` of an existing one).

    .venv/bin/python benchmarks/bench_prepare.py [--videos 8] [--root CORPUS]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PreparedStore, PrepareOptions, prepare_dataset
from avforensics.media.decode import decode
from avforensics.media.errors import MediaWarning
from avforensics.synth.corpus import generate_corpus


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8, help="size of the generated corpus")
    parser.add_argument("--root", type=Path, help="an existing synthetic corpus instead")
    parser.add_argument("--size", type=int, default=224, help="face crop side")
    parser.add_argument("--stride", type=int, default=5, help="face detection every N frames")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads of this process, which prepares in-process with 1 worker (workers use 1 each)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", MediaWarning)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        root = args.root
        if root is None:
            root = work / "corpus"
            print(f"generating {args.videos} synthetic videos ...")
            generate_corpus(root, args.videos, seed=0, workers=2)
        records = get_adapter("synthetic").records(root)
        options = PrepareOptions(size=args.size, stride=args.stride)
        count = len(records)
        results = {"plain decode": timed(lambda: [decode(record.path) for record in records])}
        for workers in (1, 2):
            out = work / f"prepared{workers}"
            results[f"prepare, {workers} worker(s)"] = timed(
                lambda out=out, workers=workers: prepare_dataset(
                    records, out, options, dataset="synthetic", workers=workers
                )
            )
        store = PreparedStore(work / "prepared1")
        results["read back from cache"] = timed(lambda: [store.load(entry["id"]) for entry in store.ok()])
    reference = count / results["plain decode"]
    print(f"{count} videos, {args.size} px crops, MTCNN every {args.stride} frames, {args.threads} thread(s)")
    print(f"{'':<24}{'videos/s':>10}{'x plain decode':>16}")
    for name, seconds in results.items():
        rate = count / seconds
        print(f"{name:<24}{rate:>10.2f}{rate / reference:>16.2f}")


if __name__ == "__main__":
    main()
