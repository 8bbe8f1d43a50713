"""Sub-commands of the data room: `audit` a dataset for shortcuts, `prepare` a face/audio cache, make a
protocol `split` and `verify-split` files."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from avforensics.data.adapters import DatasetLayoutError, DatasetMetadataError, get_adapter, list_adapters
from avforensics.data.protocols import ProtocolError, get_protocol, list_protocols
from avforensics.data.splits import SplitIntegrityError, load_split

log = logging.getLogger(__name__)


def _reports_data_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A dataset that is not where or what it should be is a failed input: one clear line, exit code 1."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (DatasetLayoutError, DatasetMetadataError, ProtocolError) as error:
            print(f"avforensics {getattr(args, 'command', 'data')}: {error}", file=sys.stderr)
            return 1

    return wrapper


def _add_dataset_and_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(list_adapters()), metavar="DATASET")
    parser.add_argument("root", type=Path, metavar="ROOT")


def _add_adapter_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter-option",
        action="append",
        default=[],
        metavar="DATASET.KEY=VALUE",
        help="adapter option, e.g. faceforensics.compression=c40",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    datasets = ", ".join(sorted(list_adapters()))
    audit = subparsers.add_parser(
        "audit",
        help="per-class statistics that reveal dataset shortcuts",
        description=f"Datasets: {datasets}.",
    )
    _add_dataset_and_root(audit)
    audit.add_argument("--max-per-class", type=int, default=None, help="audit a seeded sample per label")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--workers", type=int, default=1, help="decoding processes")
    audit.add_argument("--json", type=Path, default=None, help="write the full report here")
    _add_adapter_option(audit)
    audit.set_defaults(run=run_audit)

    prepare = subparsers.add_parser(
        "prepare",
        help="decode, track and crop faces, store crops + audio + labels",
        description=f"Datasets: {datasets}. Resumes where a killed run stopped.",
    )
    _add_dataset_and_root(prepare)
    prepare.add_argument(
        "--out", required=True, help="output folder or fsspec URL, e.g. s3://bucket/prepared (resumable)"
    )
    prepare.add_argument("--workers", type=int, default=1, help="worker processes")
    prepare.add_argument(
        "--size", type=int, default=224, help="face crop side in pixels (the model's image size is enough)"
    )
    prepare.add_argument(
        "--exact",
        action="store_true",
        help="store crops and audio losslessly (30-50x larger; default: compact H.264 + FLAC, "
        "PSNR >= 40 dB, docs/datasets.md)",
    )
    prepare.add_argument("--stride", type=int, default=5, help="run the face detector every N frames")
    prepare.add_argument("--max-side", type=int, default=640, help="downscale decoded frames to this side")
    prepare.add_argument(
        "--no-face",
        choices=("center", "skip"),
        default="center",
        help="videos without a face: centre crops (flagged) or no crops",
    )
    prepare.add_argument(
        "--trim-silence", action="store_true", help="cut leading silence (video kept in step)"
    )
    prepare.add_argument("--retry-failed", action="store_true", help="try failed videos again")
    _add_adapter_option(prepare)
    prepare.set_defaults(run=run_prepare)

    split = subparsers.add_parser("split", help="make a protocol split and save it (CSV or JSON, hashed)")
    split.add_argument("--protocol", choices=sorted(list_protocols()), metavar="NAME", help="see --list")
    split.add_argument("--list", action="store_true", help="list the protocols and exit")
    split.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="[DATASET=]ROOT",
        help=f"a dataset to read (repeat for cross-dataset protocols); datasets: {datasets}",
    )
    split.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="protocol parameter (JSON value or plain text; lists comma-separated)",
    )
    split.add_argument("--seed", type=int, default=0)
    _add_adapter_option(split)
    split.add_argument("--out", type=Path, help="split file to write (.json, else CSV)")
    split.set_defaults(run=run_split)

    verify = subparsers.add_parser("verify-split", help="check a split file's hash (and an expected one)")
    verify.add_argument("file", type=Path)
    verify.add_argument("--sha256", default=None, help="the hash a paper or colleague published")
    verify.set_defaults(run=run_verify)


@_reports_data_errors
def run_audit(args: argparse.Namespace) -> int:
    from avforensics.data.audit import format_report, iter_audit, sample_per_class, summarize

    records = sample_per_class(
        load_records(args.dataset, args.root, args.adapter_option), args.max_per_class, args.seed
    )
    videos = list(
        tqdm(
            iter_audit(records, args.workers),
            total=len(records),
            unit="video",
            desc=f"audit {args.dataset}",
            file=sys.stderr,
            disable=None,
        )
    )
    report = summarize(args.dataset, videos)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    return 1 if report.failed else 0


@_reports_data_errors
def run_prepare(args: argparse.Namespace) -> int:
    """`args.item_map`, when an engine extension of the command line set one (see cli.COMMAND_EXTENSIONS),
    runs the work instead of local processes."""
    from avforensics.data.cache_format import CacheFormatError
    from avforensics.data.prepare import (
        FaceDetectorUnavailable,
        PrepareConfigError,
        PrepareOptions,
        prepare_dataset,
    )
    from avforensics.data.workers import local_map

    options = PrepareOptions(
        size=args.size,
        stride=args.stride,
        max_side=args.max_side,
        no_face=args.no_face,
        trim_silence=args.trim_silence,
        encoding="exact" if args.exact else "compact",
    )
    records = load_records(args.dataset, args.root, args.adapter_option)

    def bar(entries: Iterator[dict], total: int) -> tqdm:
        return tqdm(
            entries, total=total, unit="video", desc=f"prepare {args.dataset}", file=sys.stderr, disable=None
        )

    try:
        counts = prepare_dataset(
            records,
            args.out,
            options,
            dataset=args.dataset,
            workers=args.workers,
            retry_failed=args.retry_failed,
            progress=bar,
            item_map=getattr(args, "item_map", local_map),
        )
    except (FaceDetectorUnavailable, PrepareConfigError, CacheFormatError) as error:
        print(f"avforensics prepare: {error}", file=sys.stderr)
        return 1
    print(f"{args.out}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 1 if counts["failed_total"] else 0


def load_records(dataset: str, root: str | Path, adapter_options: list[str]) -> list:
    """The dataset's records, its adapter built with the `DATASET.KEY=VALUE` options meant for it."""
    options = {}
    for item in adapter_options:
        target, separator, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not separator or not dot:
            raise SystemExit(f"avforensics: --adapter-option {item!r} is not DATASET.KEY=VALUE")
        if name == dataset:
            options[key] = parse_value(value)
    try:
        adapter = get_adapter(dataset, **options)
    except TypeError as error:
        raise SystemExit(
            f"avforensics: adapter {dataset!r} does not take options {sorted(options)}"
        ) from error
    return adapter.records(root)


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@_reports_data_errors
def run_split(args: argparse.Namespace) -> int:
    if args.list:
        for name, protocol in sorted(list_protocols().items()):
            uses = f" [{protocol.paper}]" if protocol.paper else ""
            print(f"{name:<26}{protocol.description}{uses}")
        return 0
    if not args.protocol or not args.out or not args.data:
        raise SystemExit("avforensics split: --protocol, --data and --out are required (or --list)")
    protocol = get_protocol(args.protocol)
    records = []
    for spec in args.data:
        name, separator, root = spec.partition("=")
        if not separator or name not in list_adapters():
            name, root = "", spec
        if not name:
            if len(protocol.datasets) != 1:
                raise SystemExit(f"avforensics split: write --data DATASET=ROOT for {args.protocol}")
            name = protocol.datasets[0]
        records += load_records(name, root, args.adapter_option)
    params = {}
    for item in args.param:
        key, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"avforensics split: --param {item!r} is not KEY=VALUE")
        params[key] = parse_value(value)
    split = protocol(records, args.seed, **params)
    split.save(args.out)
    print(
        f"{args.out}: {args.protocol} train {len(split.train)} val {len(split.val)} test {len(split.test)} "
        f"sha256 {split.sha256}"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    try:
        split = load_split(args.file, expected_sha256=args.sha256)
    except SplitIntegrityError as error:
        print(f"INVALID {error}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK {split.protocol} seed {split.seed} sha256 {split.sha256}")
    return 0
