"""`avforensics synth OUT_DIR --videos N --seed S`: generate the synthetic audio-visual forgery corpus."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from avforensics.synth.corpus import DEFAULT_DIFFICULTY, generate_corpus, summarise
from avforensics.synth.manifest import MANIFEST_CSV
from avforensics.synth.plan import DEFAULT_DURATIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic audio-visual deepfake corpus (real .mp4 files + manifest)",
        description=__doc__,
    )
    parser.add_argument("out_dir", type=Path, help="output directory (videos/ and manifest.csv/.json)")
    parser.add_argument("--videos", type=int, default=40, help="number of videos (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument(
        "--difficulty",
        type=float,
        default=DEFAULT_DIFFICULTY,
        help=f"0 = blatant artefacts .. 1 = subtle (default {DEFAULT_DIFFICULTY})",
    )
    parser.add_argument(
        "--durations",
        type=float,
        nargs=2,
        default=DEFAULT_DURATIONS,
        metavar=("MIN", "MAX"),
        help=f"clip length range in seconds (default {DEFAULT_DURATIONS[0]:g} {DEFAULT_DURATIONS[1]:g})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="worker processes (default: cores, max 4)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        videos = generate_corpus(
            args.out_dir,
            args.videos,
            args.seed,
            difficulty=args.difficulty,
            workers=args.workers,
            progress=True,
            durations=tuple(args.durations),
        )
    except ValueError as error:
        raise SystemExit(f"synth: {error}") from error
    print(summarise(videos))
    print(f"written to {args.out_dir / 'videos'}, manifest {args.out_dir / MANIFEST_CSV}")
    return 0
