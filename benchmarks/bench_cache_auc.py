"""What the compact cache costs in accuracy: one detector's demo configuration trained under the demo's intra
protocol on two prepared caches of the same corpus (e.g. --exact and the default compact encoding), once
per training seed, and the test part's video-level AUCs (overall, video, audio) side by side.

    .venv/bin/python benchmarks/bench_cache_auc.py --corpus DEMO/corpus --prepared exact=EXACT \
        --prepared compact=COMPACT --model macbdf --seeds 0 1 2 --out RUNS [--jobs 2]

Runs already finished in --out are evaluated, not trained again.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def train_and_score(model: str, corpus: Path, prepared: Path, run_dir: Path, seed: int, threads: int
                    ) -> tuple[dict[str, float], float]:
    """(AUC per head, minutes) of one intra training."""
    from avforensics.eval.tables import row_from_report
    from avforensics.protocols.demo import FULL, HEADS, demo_config
    from avforensics.protocols.evaluate import evaluate
    from avforensics.train.run import LAST_CHECKPOINT, train

    start = time.perf_counter()
    config = demo_config(model, "intra", corpus, prepared, FULL, threads, [f"trainer.seed={seed}"])
    if not (run_dir / LAST_CHECKPOINT).is_file():
        train(config, run_dir)
    report = evaluate(run_dir, run_dir / "evaluation", part="test", plots=False).report
    aucs = {head: 100 * row_from_report(report, model, "video", head).auc for head, _ in HEADS}
    return aucs, (time.perf_counter() - start) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--prepared", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--model", default="macbdf")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2, help="trainings side by side, one thread each")
    args = parser.parse_args()
    caches = dict(item.split("=", 1) for item in args.prepared)
    tasks = [(name, seed) for seed in args.seeds for name in caches]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            task: pool.submit(train_and_score, args.model, args.corpus, Path(caches[task[0]]),
                              args.out / f"{task[0]}-seed{task[1]}", task[1], 1)
            for task in tasks
        }
        results = {}
        for (name, seed), future in futures.items():
            aucs, minutes = future.result()
            results[name, seed] = aucs
            scores = ", ".join(f"{head} AUC {value:.2f}" for head, value in aucs.items())
            print(f"{args.model} intra {name} seed {seed}: {scores} ({minutes:.1f} min)", flush=True)
    for name in caches:
        heads = results[name, args.seeds[0]]
        means = {head: np.mean([results[name, seed][head] for seed in args.seeds]) for head in heads}
        print(f"{name}: mean over seeds {args.seeds}: " + ", ".join(f"{h} {v:.2f}" for h, v in means.items()))


if __name__ == "__main__":
    main()
