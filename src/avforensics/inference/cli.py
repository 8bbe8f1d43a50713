"""`avforensics detect PATH... --model CKPT`, `detect --live SOURCE` and `avforensics calibrate CKPT`.

detect: exit 0 when every input was scored, 1 when some failed (each has an error record with the reason),
2 for usage errors (bad options, a pattern matching nothing, a checkpoint that cannot be loaded).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    detect = subparsers.add_parser(
        "detect", help="score videos with a trained detector: JSON per input, table, timelines"
    )
    detect.add_argument("paths", nargs="*", metavar="PATH", help="video files, folders (recursive), globs; "
                        "local or fsspec URLs (s3://bucket/videos/)")
    detect.add_argument("--model", required=True, metavar="CKPT", help="checkpoint (calibrated or not)")
    detect.add_argument("--jsonl", metavar="OUT", help="append one record per input here (a path or an "
                        "fsspec URL); a rerun skips inputs already recorded (default: records to stdout)")
    detect.add_argument("--plots", metavar="DIR", help="write a timeline PNG per scored video into DIR")
    detect.add_argument("--labels", metavar="MANIFEST", help="manifest CSV with path, label, fake_periods: "
                        "known fake periods are shaded in the timelines")
    detect.add_argument("--workers", type=int, default=1, help="processes scoring videos in parallel")
    detect.add_argument("--batch-size", type=int,
                        help="windows per forward pass (default: as many as hold 128 frames)")
    detect.add_argument("--chunk-seconds", type=float, default=30.0,
                        help="seconds of video decoded and face-tracked at once (bounds memory)")
    detect.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    detect.add_argument("--min-face-size", type=int, metavar="PX", help="MTCNN's smallest face (default 20); "
                        "a larger one is much faster on footage with big faces, e.g. 80 for a 640x480 webcam")
    detect.add_argument("--causal", action="store_true", help="make windows as a live stream would (faces "
                        "from the past only, one window at a time): the scores --live gives")
    detect.add_argument("--window-stride", type=int, metavar="FRAMES", help="with --causal or --live: frames "
                        "from one scored window's start to the next (default: consecutive windows)")
    live = detect.add_argument_group("live streams (docs/live.md)")
    live.add_argument("--live", metavar="SOURCE", help="score a stream as it arrives: '-' (MPEG-TS or "
                      "Matroska on stdin), a udp/tcp/rtp/rtsp/rtmp/http(s) URL, a capture device with "
                      "--live-format, or a file still being written; one JSON event per window")
    live.add_argument("--live-format", metavar="FORMAT", help="FFmpeg input format, e.g. mpegts, matroska, "
                      "v4l2 (default: probed)")
    live.add_argument("--idle-timeout", type=float, default=10.0, metavar="S", help="a network stream or "
                      "followed file without data for S seconds has ended")
    live.add_argument("--stall-seconds", type=float, default=5.0, metavar="S",
                      help="report a stall after S seconds without a new window")
    live.add_argument("--reconnects", type=int, default=3, help="reopen attempts in a row for network and "
                      "device sources")
    detect.set_defaults(run=run_detect)

    calibrate = subparsers.add_parser(
        "calibrate", help="fit temperature and threshold on validation data and store them in a checkpoint"
    )
    calibrate.add_argument("checkpoint", metavar="CKPT")
    calibrate.add_argument("--out", metavar="PATH", help="write the calibrated checkpoint here (default: "
                           "update CKPT in place)")
    calibrate.add_argument("--split", help="part of the config's split to fit on (default: its val split)")
    calibrate.add_argument("--batch-size", type=int, default=8)
    calibrate.set_defaults(run=run_calibrate)


def run_detect(args: argparse.Namespace) -> int:
    from avforensics.inference.inputs import expand_inputs, known_fake_periods
    from avforensics.inference.results import ResultsFileError, ResultsLog

    if args.workers < 1 or (args.batch_size is not None and args.batch_size < 1) or args.chunk_seconds <= 0:
        return _usage("--workers and --batch-size must be >= 1 and --chunk-seconds > 0")
    if args.min_face_size is not None and args.min_face_size < 1:
        return _usage("--min-face-size must be >= 1")
    if args.live is not None:
        if args.paths:
            return _usage("--live scores one stream; give no PATH with it")
        return run_live_detect(args)
    if not args.paths:
        return _usage("give at least one PATH, or --live SOURCE")
    inputs, unmatched = expand_inputs(args.paths)
    if unmatched:
        return _usage(f"no file matches {', '.join(unmatched)}")
    if not inputs:
        return _usage("no video found in " + ", ".join(args.paths))
    options = {"batch_size": args.batch_size, "chunk_seconds": args.chunk_seconds, "device": args.device,
               "min_face_size": args.min_face_size}
    try:
        detector = _load_detector(args.model, options)
        periods = known_fake_periods(args.labels) if args.labels else {}
        results = ResultsLog(args.jsonl) if args.jsonl else None
    except (OSError, ValueError, KeyError, ResultsFileError) as error:
        return _usage(str(error))
    if results is not None and results.repaired:
        log.warning("%s: the last record was cut off by an interrupted run; scoring that input again",
                    args.jsonl)
    pending = [item for item in inputs if results is None or item not in results]
    records: dict[str, dict[str, Any]] = {} if results is None else {
        item: results.records[item] for item in inputs if item in results
    }
    out: TextIO = sys.stdout
    try:
        for record in _progress(_scored(pending, detector, args, options), len(pending)):
            if results is not None:
                results.append(record)
            else:
                out.write(_json_line(record))
                out.flush()
            if args.plots and record["status"] == "ok":
                _plot(record, Path(args.plots), periods.get(record["input"], ()))
            records[record["input"]] = record
    finally:
        if results is not None:
            results.close()
    table_out = sys.stdout if results is not None else sys.stderr
    table_out.write(summary_table([records[item] for item in inputs], len(inputs) - len(pending)))
    return 0 if all(record["status"] == "ok" for record in records.values()) else 1


def run_live_detect(args: argparse.Namespace) -> int:
    """`detect --live SOURCE`: events as JSON lines (to --jsonl, appended and flushed, else stdout); exit 0
    when the stream ended (or was interrupted), 1 when an error ended it, 2 for usage errors."""
    from avforensics.inference.live import LiveOptions, run_live
    from avforensics.media.errors import MediaWarning
    from avforensics.media.live import parse_source

    warnings.simplefilter("ignore", MediaWarning)  # each one is a "warning" event already

    if args.idle_timeout <= 0 or args.stall_seconds <= 0 or args.reconnects < 0:
        return _usage("--idle-timeout and --stall-seconds must be > 0 and --reconnects >= 0")
    try:
        source = parse_source(args.live, format=args.live_format, idle_timeout=args.idle_timeout)
        detector = _load_detector(args.model, {"batch_size": 1, "device": args.device,
                                               "min_face_size": args.min_face_size})
        options = LiveOptions(args.window_stride, args.stall_seconds, args.reconnects)
        out: TextIO = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else sys.stdout  # noqa: SIM115
    except (OSError, ValueError, KeyError) as error:
        return _usage(str(error))

    def emit(event: dict[str, Any]) -> None:
        out.write(_json_line(event))
        out.flush()

    try:
        summary = run_live(detector, source, emit, options)
    except ValueError as error:
        return _usage(str(error))
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{source.name}: {summary['reason']}; {summary['windows_scored']} windows scored, "
          f"{summary['windows_skipped']} skipped, final state {summary['final_state']}", file=sys.stderr)
    return 1 if summary["reason"].startswith("error") else 0


def score_one(detector: Any, item: str, **predict: Any) -> dict[str, Any]:
    """The record of one input: the report, or the error's type and reason. Never raises for bad media.
    `predict`: options of `Detector.predict` (causal, window_stride)."""
    from avforensics.data.storage import local_copy
    from avforensics.media.errors import MediaError

    try:
        with local_copy(item) as path:
            report = detector.predict(path, **predict)
        if path != item:  # scored from a download of a URL: the report names the URL
            report = dataclasses.replace(report, path=item,
                                         warnings=[note.replace(path, item) for note in report.warnings])
    except MediaError as error:
        return error_record(item, type(error).__name__, error.reason)
    except Exception as error:  # a batch tool records every failure and carries on with the rest
        log.debug("scoring %s failed", item, exc_info=True)
        return error_record(item, type(error).__name__, str(error))
    values = [report.p_fake, report.p_video_fake, report.p_audio_fake]
    if not all(math.isfinite(value) for value in values if value is not None):
        return error_record(item, "NonFiniteScore", f"the model produced a non-finite score {values}")
    return {"input": item, "status": "ok", **report.to_dict()}


def error_record(item: str, kind: str, reason: str) -> dict[str, Any]:
    return {"input": item, "status": "error", "error": kind, "reason": reason}


def summary_table(records: list[dict[str, Any]], skipped: int) -> str:
    """A short table: verdict, p_fake and the threshold it was compared with (calibrated on validation data
    or the uncalibrated 0.5), the video and audio heads, faces, file (or the error reason), then counts."""
    rows = [("verdict", "p_fake", "threshold", "video", "audio", "faces", "file")]
    for record in records:
        name = Path(record["input"]).name
        if record["status"] == "ok":
            kind = "calibrated" if record["calibrated"] else "uncalibrated"
            threshold = f"{record['threshold']:.3f} {kind}"
            rows.append((record["verdict"], _cell(record["p_fake"]), threshold,
                         _cell(record["p_video_fake"]), _cell(record["p_audio_fake"]),
                         f"{record['faces_found']:.0%}", name))
        else:
            rows.append(("ERROR", "", "", "", "", "", f"{name}: {record['error']}: {record['reason']}"))
    columns = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:columns], widths, strict=True)), row[-1]])
             for row in rows]
    failed = sum(record["status"] != "ok" for record in records)
    lines.append(f"{len(records) - failed} scored, {failed} failed"
                 + (f" ({skipped} recorded by an earlier run)" if skipped else ""))
    return "\n".join(lines) + "\n"


def run_calibrate(args: argparse.Namespace) -> int:
    from avforensics.inference.calibrate import calibrate_checkpoint
    from avforensics.inference.calibration import CalibrationError

    try:
        calibration = calibrate_checkpoint(args.checkpoint, args.out, args.split, args.batch_size)
    except CalibrationError as error:
        log.error("%s: %s", args.checkpoint, error)
        return 1
    except (OSError, ValueError, KeyError) as error:
        return _usage(str(error), "calibrate")
    for head, values in calibration.heads.items():
        print(f"{head}: temperature {values.temperature:.3f}, threshold {values.threshold:.3f}")
    print(f"calibrated checkpoint: {args.out or args.checkpoint}")
    return 0


def _load_detector(checkpoint: str, options: dict[str, Any]) -> Any:
    """The Detector; option `min_face_size` (pixels) configures its MTCNN."""
    from avforensics.inference.detector import Detector

    options = dict(options)
    min_face = options.pop("min_face_size", None)
    if min_face is not None:
        from avforensics.media.mtcnn import MTCNN

        options["face_detector"] = MTCNN(min_face_size=min_face)
    return Detector.from_checkpoint(checkpoint, **options)


def _detect_worker(checkpoint: str, options: dict[str, Any], predict: dict[str, Any], threads: int = 1,
                   device: str | None = None) -> tuple[Any, dict[str, Any]]:
    """A worker's state: its own Detector (the model loaded once), its torch and FFmpeg threads being its
    share of the cores; `device` (from an engine that placed the worker on a GPU) overrides --device."""
    import torch

    torch.set_num_threads(threads)
    options = {**options, "decoder_threads": threads, **({"device": device} if device else {})}
    return _load_detector(checkpoint, options), predict


def _detect_item(state: tuple[Any, dict[str, Any]], item: str) -> dict[str, Any]:
    detector, predict = state
    return score_one(detector, item, **predict)


def worker_threads(workers: int, cores: int) -> int:
    """Threads per worker process so that workers x threads <= cores; with more workers than cores each
    gets one thread (the stated choice: processes then take turns on the cores, with a warning)."""
    if workers > cores:
        log.warning("%d workers on %d cores: one thread each, the cores are oversubscribed; "
                    "use --workers %d or fewer to avoid it", workers, cores, cores)
    return max(1, cores // workers)


def _scored(pending: list[str], detector: Any, args: argparse.Namespace, options: dict[str, Any]
            ) -> Iterator[dict[str, Any]]:
    """Records of the pending inputs as they finish (in input order in this process). `args.item_map`, when
    an engine extension of the command line set one (cli.COMMAND_EXTENSIONS), runs the work instead of
    local processes; it places the workers, so it chooses their threads."""
    from avforensics.data.workers import WorkerJob, available_cores, local_map

    predict = {"causal": args.causal, "window_stride": args.window_stride}
    item_map = getattr(args, "item_map", None)
    if item_map is None and (args.workers == 1 or len(pending) <= 1):
        yield from (score_one(detector, item, **predict) for item in pending)
        return
    threads = worker_threads(args.workers, available_cores()) if item_map is None else 1
    job = WorkerJob(setup=_detect_worker, apply=_detect_item, setup_args=(args.model, options, predict),
                    setup_kwargs={"threads": threads}, threads=threads, wants_gpu=True)
    yield from (item_map or local_map)(job, pending, args.workers)


def _progress(records: Iterator[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    from tqdm import tqdm

    return tqdm(records, total=total, desc="detect", unit="video", file=sys.stderr, disable=total < 2)


def _plot(record: dict[str, Any], folder: Path, periods: Any) -> None:
    from avforensics.inference.plots import plot_timeline
    from avforensics.inference.report import Report

    tag = hashlib.sha1(record["input"].encode("utf-8")).hexdigest()[:8]
    plot_timeline(Report.from_dict(record), folder / f"{Path(record['input']).stem}-{tag}.png", periods)


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, allow_nan=False) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _usage(message: str, command: str = "detect") -> int:
    print(f"avforensics {command}: error: {message}", file=sys.stderr)
    return 2
