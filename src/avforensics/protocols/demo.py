"""`avforensics demo [--out DIR] [--quick] [--seed N ...]`: the whole toolkit end to end on this machine.

Generates a synthetic corpus, prepares it (faces + audio), trains every registered detector's demo
configuration (shipped `configs/<name>/demo.yaml`: its small configuration with a shorter budget than the
detector's own runs; `small.yaml` where there is none) under two protocols, an intra-corpus split and a
leave-one-method-out split, two trainings at a time (one CPU thread each), evaluates each on its test part,
calibrates it on its validation part, prints one comparison table, scores a few held-out videos with
`detect` and writes the report folder. Every step skips what an earlier run in the same folder finished.

Layout of OUT: corpus/ (videos + manifest.csv), prepared/, runs/<detector>/<protocol>/ (training run,
evaluation/ with metrics, predictions and ROC curves, calibrated.ckpt), comparison.md/.csv/.json,
detect/<detector>.jsonl and detect/timelines/. With several `--seed`s each seed's demo goes to
OUT/seed-N/ and OUT/comparison.md/.csv/.json holds every metric's mean and standard deviation over them: a
48-60-video test part moves an AUC by several points from one corpus draw to the next, so comparisons of
detectors or settings are made on that mean.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avforensics.experiment.config import shipped_configs

log = logging.getLogger(__name__)

SEED = 3  # the demo corpus and its splits
HEADS = (("overall", ""), ("video", "video "), ("audio", "audio "))


@dataclass(frozen=True)
class Budget:
    """How big the demo is: corpus size and clip lengths, training epochs (None: each demo
    configuration's own), the largest batch (a tiny training part must still fill one batch), videos
    scored by detect."""

    videos: int
    durations: tuple[float, float]
    epochs: int | None
    max_batch: int
    detect_videos: int


# 240 clips: identity folds of 144 / 48 / 48. At the same number of training steps, more scenes taught
# every detector more than more epochs over fewer (docs/inference.md), and a 48-video test part (12 real)
# gives steadier AUCs than 32 (8 real).
FULL = Budget(videos=240, durations=(2.0, 4.0), epochs=None, max_batch=32, detect_videos=4)
QUICK = Budget(videos=24, durations=(1.0, 1.6), epochs=1, max_batch=4, detect_videos=2)

# name -> (data protocol, its parameters); the held-out method is a video forgery absent from training.
# Leave-one-method-out keeps identities (= scenes) disjoint: otherwise a test real's scene is seen in
# training as a fake of another method and a faceswap's scene as real, and the video heads, which
# recognise scenes, scored faceswap below chance (docs/robustness.md).
PROTOCOLS: dict[str, tuple[str, dict[str, Any]]] = {
    # scene-disjoint: every synthetic scene has its own person, so identity folds keep a scene's four
    # renders (one per category) together and every fold holds all four categories
    "intra": ("identity-kfold", {"k": 5, "fold": 0, "val_fold": True}),
    "leave-one-method-out": ("leave-one-method-out",
                             {"held_out": "faceswap", "val_fraction": 0.2, "disjoint_identities": True}),
}
# Share of a detector's demo epochs each protocol trains for. The held-out-method run shows the protocol
# and how far a detector generalises to an unseen forgery; at a half budget the demo stays within its
# 20 minutes on 2 cores (docs/inference.md), and its table says how many epochs each row had.
EPOCH_SHARE: dict[str, float] = {"intra": 1.0, "leave-one-method-out": 0.5}


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="synthetic corpus -> train every detector -> compare -> detect")
    demo.add_argument("--out", default="avforensics-demo", help="report folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="tiny corpus and budget: a smoke test")
    demo.add_argument("--models", nargs="+", metavar="NAME", help="only these detectors (default: all)")
    demo.add_argument("--workers", type=int, default=2, help="processes for rendering and preparing")
    demo.add_argument("--jobs", type=int, default=2, help="trainings run side by side (default: %(default)s)")
    demo.add_argument("--seed", type=int, nargs="+", default=[SEED], metavar="N",
                      help="corpus and split seed(s) (default: %(default)s); several: one demo per seed in "
                           "OUT/seed-N and a table of means over them in OUT")
    demo.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), default=list(PROTOCOLS),
                      help="train under these protocols only (default: all)")
    demo.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override every detector's demo configuration, e.g. "
                           "--set 'data.augment={flip: 0.5, self_blend: 0.5}' (repeatable)")
    demo.add_argument("--exact", action="store_true",
                      help="prepare lossless face crops and audio instead of the compact cache")
    demo.set_defaults(run=run_demo)


@dataclass(frozen=True)
class Setting:
    """What one demo trains with beyond the budget: the corpus and split seed, the protocols, the
    configuration overrides given with --set and the cache encoding."""

    seed: int = SEED
    protocols: tuple[str, ...] = tuple(PROTOCOLS)
    overrides: tuple[str, ...] = ()
    exact: bool = False


def run_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    budget = QUICK if args.quick else FULL
    out = Path(args.out).absolute()  # the runs record their data paths: valid from any working folder
    detectors, skipped = demo_detectors(args.models)
    for name, reason in skipped.items():
        print(f"skipping detector {name}: {reason}")
    if not detectors:
        print("avforensics demo: error: no detector to train (see the reasons above)")
        return 2
    if args.jobs < 1:
        print(f"avforensics demo: error: --jobs must be >= 1, got {args.jobs}")
        return 2
    seeds = list(dict.fromkeys(args.seed))
    failures = 0
    per_seed = {}
    for seed in seeds:
        setting = Setting(seed, tuple(args.protocols), tuple(args.overrides), args.exact)
        seed_out = out if len(seeds) == 1 else out / f"seed-{seed}"
        if len(seeds) > 1:
            print(f"\n== corpus seed {seed} into {seed_out}")
        rows = run_one_seed(detectors, seed_out, budget, setting, args)
        failures += sum("error" in row for row in rows)
        per_seed[seed] = comparison_records(rows)
    if len(seeds) > 1:
        print("\n" + write_seed_means(per_seed, out))
    print(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min; everything is in {out}/:")
    for line in (
        "corpus/               synthetic videos and manifest.csv (labels, fake periods)",
        "runs/<detector>/<protocol>/evaluation/   metrics.md, predictions, plots/roc_*.png",
        "runs/<detector>/<protocol>/calibrated.ckpt   the trained detector, ready for `avforensics detect`",
        "comparison.md/.csv/.json   the table above",
        "detect/<detector>.jsonl, detect/timelines/*.png   reports of held-out videos",
    ):
        print(f"  {'seed-N/' if len(seeds) > 1 and not line.startswith('comparison') else ''}{line}")
    return 1 if failures else 0


def run_one_seed(detectors: list[str], out: Path, budget: Budget, setting: Setting, args: argparse.Namespace
                 ) -> list[dict[str, Any]]:
    """One corpus seed's demo: render, prepare, train, compare, detect; the comparison rows."""
    corpus, prepared = build_corpus(out, budget, args.workers, crop_size(detectors), setting)
    rows = train_all(detectors, corpus, prepared, out, budget, args.jobs, setting)
    print("\n" + write_comparison(rows, out))
    print(run_detect(rows, corpus, out, budget, setting.seed))
    return rows


def train_all(detectors: list[str], corpus: Path, prepared: Path, out: Path, budget: Budget, jobs: int,
              setting: Setting) -> list[dict[str, Any]]:
    """Every (detector, protocol) trained and evaluated, `jobs` at a time in fresh processes sharing the
    CPU cores (on 2 cores, two small trainings side by side with one thread each finish sooner than one
    after the other with two); a failure becomes its row's error and the others go on."""
    tasks = [(name, protocol) for name in detectors for protocol in setting.protocols]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train_and_evaluate, name, protocol, corpus, prepared, out, budget, threads,
                               setting)
                   for name, protocol in tasks]
        rows = []
        for (name, protocol), future in zip(tasks, futures, strict=True):
            try:
                rows.append(future.result())
            except Exception as error:  # one detector failing must not hide the others' results
                log.error("%s under %s failed: %s", name, protocol, error, exc_info=error)
                reason = f"{type(error).__name__}: {error}"
                rows.append({"detector": name, "protocol": protocol, "error": reason})
    return rows


def demo_detectors(only: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """Registered detectors that have a small configuration, and the reason for each one left out."""
    from avforensics.models.registry import registered_models

    names = sorted(registered_models())
    skipped = {}
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            skipped.update(dict.fromkeys(unknown, f"not registered (registered: {', '.join(names)})"))
        names = [name for name in names if name in only]
    for name in names:
        if not demo_config_path(name).is_file():
            skipped[name] = f"no demo or small configuration in {shipped_configs() / name}"
    return [name for name in names if name not in skipped], skipped


def demo_config_path(name: str) -> Path:
    """Shipped `configs/<name>/demo.yaml` (the small config with the demo's budget), else `small.yaml`."""
    demo = shipped_configs() / name / "demo.yaml"
    return demo if demo.is_file() else shipped_configs() / name / "small.yaml"


def crop_size(detectors: list[str]) -> int:
    """The largest image size the detectors' demo configurations consume: larger crops would be resized
    down at every load and only cost cache bytes."""
    from avforensics.experiment.config import load_config

    return max(int(load_config(demo_config_path(name)).data.options.get("image_size", 224))
               for name in detectors)


def build_corpus(out: Path, budget: Budget, workers: int, size: int, setting: Setting) -> tuple[Path, Path]:
    """Render the synthetic corpus and prepare it once for every detector (`size` px face crops, compact
    unless the setting asks for exact ones)."""
    from avforensics.data.adapters import get_adapter
    from avforensics.data.prepare import PrepareOptions, prepare_dataset
    from avforensics.synth.corpus import generate_corpus, summarise

    corpus, prepared = out / "corpus", out / "prepared"
    if not (corpus / "manifest.csv").is_file():
        print(f"1/4 rendering {budget.videos} synthetic videos into {corpus}")
        videos = generate_corpus(corpus, budget.videos, setting.seed, workers=workers, progress=True,
                                 durations=budget.durations)
        print(summarise(videos))
    records = get_adapter("synthetic").records(corpus)
    print(f"2/4 preparing faces and audio into {prepared}")
    options = PrepareOptions(size=size, encoding="exact" if setting.exact else "compact")
    counts = prepare_dataset(records, prepared, options, dataset="synthetic",
                             workers=workers, progress=_progress_bar("prepare"))
    if counts["failed_total"]:
        log.warning("%d video(s) could not be prepared; see %s/manifest.jsonl", counts["failed_total"],
                    prepared)
    return corpus, prepared


def demo_config(name: str, protocol: str, corpus: Path, prepared: Path, budget: Budget, threads: int,
                extra: Sequence[str] = (), seed: int = SEED) -> Any:
    """The detector's demo configuration on the demo corpus (split with `seed`), split by `protocol`,
    validated once at the end, with `threads` CPU threads for torch, and `extra` overrides (e.g. another
    training seed) last."""
    from avforensics.experiment.config import load_config

    configured = load_config(demo_config_path(name))
    data_protocol, params = PROTOCOLS[protocol]
    epochs = max(1, round((budget.epochs or configured.optim.epochs) * EPOCH_SHARE[protocol]))
    overrides = [
        "data.dataset=synthetic", f"data.root={corpus}", f"data.protocol={data_protocol}",
        "data.split_file=''", f"data.options.prepared={prepared}", f"data.options.seed={seed}",
        f"data.options.protocol_params={_flow(params)}", "data.val_split=val",
        f"data.batch_size={min(configured.data.batch_size, budget.max_batch)}",
        f"optim.epochs={epochs}", f"trainer.val_every_n_epochs={epochs}",
        "trainer.checkpoint_every_n_steps=1000000", "trainer.progress_bar=false",
        "trainer.early_stopping_patience=0",
    ]
    if budget.epochs is not None:  # a fixed short budget: no schedule that assumes the configured length
        overrides += ["optim.milestones=[]", "optim.schedule=constant", "optim.warmup_epochs=0"]
    overrides.append(f"trainer.threads={threads}")
    return load_config(demo_config_path(name), [*overrides, *extra])


def train_and_evaluate(name: str, protocol: str, corpus: Path, prepared: Path, out: Path, budget: Budget,
                       threads: int, setting: Setting) -> dict[str, Any]:
    """Train (unless finished before), evaluate on the test part, calibrate; the comparison row."""
    from avforensics.eval.tables import row_from_report
    from avforensics.inference.calibrate import calibrate_checkpoint
    from avforensics.protocols.evaluate import evaluate
    from avforensics.train.run import LAST_CHECKPOINT, train

    run_dir = out / "runs" / name / protocol
    config = demo_config(name, protocol, corpus, prepared, budget, threads, setting.overrides, setting.seed)
    tick = time.perf_counter()
    if not (run_dir / LAST_CHECKPOINT).is_file():
        print(f"3/4 training {name} ({protocol}, {config.optim.epochs} epoch(s)) in {run_dir}", flush=True)
        train(config, run_dir)
    evaluation = evaluate(run_dir, run_dir / "evaluation", part="test")
    calibrated = run_dir / "calibrated.ckpt"
    calibrate_checkpoint(evaluation.checkpoint, calibrated)
    heads = {}
    for head, _ in HEADS:
        try:
            heads[head] = row_from_report(evaluation.report, name, "video", head)
        except KeyError:
            heads[head] = None
    return {"detector": name, "protocol": protocol, "heads": heads, "checkpoint": calibrated,
            "epochs": config.optim.epochs, "minutes": (time.perf_counter() - tick) / 60}


def comparison_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparison rows as plain records: detector, protocol, videos, each head's ACC/AUC/AP as a
    fraction (None where undefined), epochs and minutes; or detector, protocol and error."""
    records = []
    for row in rows:
        if "error" in row:
            records.append({"detector": row["detector"], "protocol": row["protocol"], "error": row["error"]})
            continue
        values = {column: getattr(row["heads"][head], metric) if row["heads"][head] else None
                  for head, column, metric in _cells()}
        records.append({"detector": row["detector"], "protocol": row["protocol"],
                        "videos": row["heads"]["overall"].n, **values,
                        "epochs": row["epochs"], "minutes": round(row["minutes"], 2)})
    return records


def write_comparison(rows: list[dict[str, Any]], out: Path) -> str:
    """One table: video-level ACC (at the validation threshold), AUC and AP, overall and per modality."""
    import csv
    import io
    import json

    from avforensics.eval.metrics import csv_value, json_value, percent_text, write_report_files

    columns = [column for _, column, _ in _cells()]
    lines = ["| detector | protocol | videos | " + " | ".join(columns) + " | epochs | minutes |",
             "|---|---|---|" + "---|" * len(columns) + "---|---|"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["detector", "protocol", "videos", *columns, "epochs", "minutes", "error"])
    records = comparison_records(rows)
    for record in records:
        if "error" in record:
            lines.append(f"| {record['detector']} | {record['protocol']} | failed: {record['error']} |")
            blanks = [""] * (len(columns) + 2)  # metrics, epochs, minutes
            writer.writerow([record["detector"], record["protocol"], "", *blanks, record["error"]])
            continue
        values = [record[column] for column in columns]
        lines.append(f"| {record['detector']} | {record['protocol']} | {record['videos']} | "
                     + " | ".join("-" if v is None else percent_text(v) for v in values)
                     + f" | {record['epochs']} | {record['minutes']:.1f} |")
        csv_cells = ("" if v is None else csv_value(v) for v in values)
        writer.writerow([record["detector"], record["protocol"], record["videos"], *csv_cells,
                         record["epochs"], f"{record['minutes']:.2f}", ""])
    plain = [{key: json_value(value) if key in columns and value is not None else value
              for key, value in record.items()} for record in records]
    markdown = ("### Detectors compared on the synthetic corpus (test part, video level, percent)\n\n"
                + "\n".join(lines) + "\n")
    write_report_files(out, "comparison", markdown, buffer.getvalue(), json.dumps(plain, indent=2))
    return markdown


def write_seed_means(per_seed: dict[int, list[dict[str, Any]]], out: Path) -> str:
    """Mean and sample standard deviation over the corpus seeds of every metric of every (detector,
    protocol), over the seeds where it is defined (`n`); written as OUT/comparison.md/.csv/.json."""
    import csv
    import io
    import json
    import statistics

    from avforensics.eval.metrics import write_report_files

    columns = [column for _, column, _ in _cells()]
    keys = list(dict.fromkeys((r["detector"], r["protocol"])
                              for records in per_seed.values() for r in records))
    seeds = ", ".join(map(str, per_seed))
    lines = [f"### Detectors compared on the synthetic corpus: mean ± sd over corpus seeds {seeds} "
             "(test part, video level, percent)\n",
             "| detector | protocol | seeds | " + " | ".join(columns) + " | minutes |",
             "|---|---|---|" + "---|" * len(columns) + "---|"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["detector", "protocol", "seeds", *(f"{c} {s}" for c in columns for s in ("mean", "sd")),
                     "minutes"])
    records = []
    for detector, protocol in keys:
        found = [r for records in per_seed.values() for r in records
                 if (r["detector"], r["protocol"]) == (detector, protocol) and "error" not in r]
        stats = {}
        for column in columns:
            values = [100 * r[column] for r in found if isinstance(r[column], float)]
            stats[column] = (statistics.fmean(values) if values else None,
                             statistics.stdev(values) if len(values) > 1 else None)
        minutes = statistics.fmean(r["minutes"] for r in found) if found else None
        cells = [_mean_text(*stats[column]) for column in columns]
        lines.append(f"| {detector} | {protocol} | {len(found)} | " + " | ".join(cells)
                     + f" | {'-' if minutes is None else f'{minutes:.1f}'} |")
        writer.writerow([detector, protocol, len(found), *(v for c in columns for v in stats[c]), minutes])
        records.append({"detector": detector, "protocol": protocol, "seeds": len(found),
                        **{c: {"mean": stats[c][0], "sd": stats[c][1]} for c in columns}, "minutes": minutes})
    markdown = "\n".join(lines) + "\n"
    write_report_files(out, "comparison", markdown, buffer.getvalue(), json.dumps(records, indent=2))
    return markdown


def _cells() -> list[tuple[str, str, str]]:
    """(head, column, metric attribute) of every comparison cell, e.g. ("video", "video AUC", "auc")."""
    return [(head, f"{prefix}{metric.upper()}", metric)
            for head, prefix in HEADS for metric in ("acc", "auc", "ap")]


def _mean_text(mean: float | None, sd: float | None) -> str:
    """`mean ± sd` in percent with one decimal; the mean alone from one seed; "-" from none."""
    if mean is None:
        return "-"
    return f"{mean:.1f}" if sd is None else f"{mean:.1f} ± {sd:.1f}"


def run_detect(rows: list[dict[str, Any]], corpus: Path, out: Path, budget: Budget, seed: int) -> str:
    """Score a few videos of the intra split's test part with each calibrated detector, with timelines."""
    from avforensics.data.adapters import get_adapter
    from avforensics.data.protocols import make_split
    from avforensics.inference.cli import score_one, summary_table
    from avforensics.inference.detector import Detector
    from avforensics.inference.inputs import known_fake_periods
    from avforensics.inference.plots import plot_timeline
    from avforensics.inference.report import Report
    from avforensics.inference.results import ResultsLog

    records = get_adapter("synthetic").records(corpus)
    protocol, params = PROTOCOLS["intra"]
    test_ids = set(make_split(protocol, records, seed, **params).test)
    held_out = [r for r in records if r.id in test_ids]
    chosen = [r for r in held_out if r.label == 1][: budget.detect_videos // 2]
    chosen += [r for r in held_out if r.label == 0][: budget.detect_videos - len(chosen)]
    periods = known_fake_periods(corpus / "manifest.csv")
    summaries = []
    for row in rows:
        if row["protocol"] != "intra" or "error" in row:
            continue
        print(f"4/4 detect with {row['detector']} on {len(chosen)} held-out videos")
        detector = Detector.from_checkpoint(row["checkpoint"])
        results = ResultsLog(out / "detect" / f"{row['detector']}.jsonl")
        for record in chosen:
            key = str(Path(record.path).absolute())
            if key not in results:
                results.append(score_one(detector, key))
            result = results.records[key]
            if result["status"] == "ok":
                stem = f"{row['detector']}-{Path(record.path).stem}.png"
                picture = out / "detect" / "timelines" / stem
                plot_timeline(Report.from_dict(result), picture, periods.get(key, ()))
        results.close()
        summaries.append(f"detect ({row['detector']}):\n"
                         + summary_table([results.records[str(Path(r.path).absolute())] for r in chosen], 0))
    return "\n".join(summaries)


def _progress_bar(description: str) -> Callable[[Iterator[dict], int], Iterator[dict]]:
    from tqdm import tqdm

    return lambda entries, total: tqdm(entries, total=total, desc=description, unit="video")


def _flow(params: dict[str, Any]) -> str:
    """A mapping as a YAML flow mapping, the value syntax of `--set`."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in params.items()) + "}"
