"""`avforensics evaluate RUN_DIR_OR_CHECKPOINT --out DIR`, `avforensics benchmark-protocol CONFIG --out DIR`,
`avforensics reproduce PAPER TABLE --out DIR`, `avforensics robustness RUN_DIR_OR_CHECKPOINT --out DIR`.

evaluate: score one part of a split (default test) and write predictions, metric tables and plots.
benchmark-protocol: train and evaluate one model per held-out category/method and write the paper table.
reproduce: train and evaluate every row of one of the three papers' tables and write it as the paper does.
robustness: re-score one part under perturbations at their severity levels (protocols/robustness.py).
Both return 0 on success, 1 with the error's message (naming the file or setting) when the inputs cannot
be evaluated (run with -v for the traceback), 2 for contradictory or missing options.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avforensics.eval.aggregate import HEADS
from avforensics.eval.metrics import LEVELS

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="score a trained detector on a split part: predictions, tables, ROC/PR plots")
    _scored_part_options(evaluate)
    split = evaluate.add_mutually_exclusive_group()
    split.add_argument("--protocol", metavar="NAME", help="protocol of the split (default: as trained)")
    split.add_argument("--split-file", metavar="F", help="saved split (CSV or JSON) instead of a protocol")
    evaluate.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
        help="change a data setting, value parsed as YAML (repeatable), e.g. "
             "data.options.protocol_params.held_out=RVFA")
    _common_options(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    benchmark = subparsers.add_parser(
        "benchmark-protocol",
        help="train + evaluate one model per held-out category/method; one paper-style table (resumable)")
    benchmark.add_argument("config", nargs="?",
                           help="experiment YAML path, or a shipped config name such as cad/paper")
    benchmark.add_argument("--out", help="output folder: runs/<held out>/ and table.md/.csv/.json")
    benchmark.add_argument("--table", metavar="NAME", help="a named paper table (see --list)")
    benchmark.add_argument("--protocol", metavar="NAME", help="leave-one-out protocol, with --held-out")
    benchmark.add_argument("--held-out", metavar="A,B,...", help="held-out values (default: the table's)")
    benchmark.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config value by dotted path (repeatable)")
    benchmark.add_argument("--part", default="test", choices=("val", "test"), help="part each row scores")
    benchmark.add_argument("--level", default="video", choices=[lv for lv in LEVELS if lv != "frame"],
                           help="metrics level of the rows")
    benchmark.add_argument("--head", default="overall", choices=tuple(HEADS), help="head of the rows")
    benchmark.add_argument("--list", action="store_true", help="list the named tables and exit")
    _common_options(benchmark)
    benchmark.set_defaults(run=run_benchmark_protocol)

    robustness = subparsers.add_parser(
        "robustness", help="re-score a split part under perturbations (compression, blur, noise, codecs, "
                           "offsets, a masked modality): AUC against severity per head")
    _scored_part_options(robustness)
    robustness.add_argument("--perturbations", metavar="A,B,...",
                            help="perturbations to apply (default: all; see docs/robustness.md)")
    robustness.add_argument("--levels", metavar="1,2,...",
                            help="severities to apply, 1 = mildest (default: every level)")
    robustness.add_argument("--seed", type=int, default=0, help="seed of the random perturbations")
    _device_options(robustness)
    robustness.set_defaults(run=run_robustness)
    reproduce = subparsers.add_parser(
        "reproduce", help="train + evaluate every row of a paper's table (docs/reproduce.md); resumable")
    reproduce.add_argument("paper", nargs="?", choices=("avprompt", "cad", "macbdf"), help="the paper")
    reproduce.add_argument("table", nargs="?", type=int, help="its table number (default: every table)")
    reproduce.add_argument("--out", help="output folder: runs/<row>/, <paper>_table<N>.md/.csv, <paper>.md")
    reproduce.add_argument("--data", action="append", default=[], metavar="DATASET=ROOT",
                           help="where a dataset the rows read lies (repeatable), e.g. kodf=/data/KoDF")
    reproduce.add_argument("--prepared", action="append", default=[], metavar="DATASET=DIR",
                           help="a dataset's cache written by avforensics prepare (repeatable)")
    reproduce.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config value of every row by dotted path (repeatable)")
    reproduce.add_argument("--list", action="store_true", help="list the rows and their commands, and exit")
    _common_options(reproduce)
    reproduce.set_defaults(run=run_reproduce)


def _scored_part_options(parser: argparse.ArgumentParser) -> None:
    """What a command that re-scores one part of a trained detector's split takes: the detector and data."""
    parser.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT",
                        help="run directory (its best checkpoint, else last) or a checkpoint file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", metavar="[DATASET=]ROOT",
                        help="dataset folder, optionally prefixed by its adapter (default: as trained)")
    parser.add_argument("--prepared", metavar="DIR", help="cache written by avforensics prepare")
    parser.add_argument("--part", default="test", choices=("train", "val", "test"), help="part to score")


def _device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, help="windows per forward pass (default: the config's)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")


def _common_options(parser: argparse.ArgumentParser) -> None:
    _device_options(parser)
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")


def parse_data_argument(text: str) -> tuple[str, str]:
    """`[DATASET=]ROOT` -> (dataset or "", root)."""
    dataset, sep, root = text.partition("=")
    if not sep:
        return "", text
    if not dataset or not root:
        raise ValueError(f"--data {text!r}: expected ROOT or DATASET=ROOT")
    return dataset, root


def run_evaluate(args: argparse.Namespace) -> int:
    # Imported here so `avforensics --help` does not pay for importing torch and Lightning.
    from avforensics.protocols.evaluate import DataSelection, evaluate

    dataset, root = parse_data_argument(args.data) if args.data else ("", "")
    selection = DataSelection(dataset=dataset, root=root, prepared=args.prepared or "",
                              protocol=args.protocol or "", split_file=args.split_file or "",
                              overrides=tuple(args.overrides))
    try:
        result = evaluate(args.source, args.out, data=selection, part=args.part, batch_size=args.batch_size,
                          device=args.device, plots=args.plots)
    except (OSError, ValueError, KeyError) as error:
        log.error("evaluate %s: %s", args.source, error, exc_info=args.verbose)
        return 1
    print((Path(args.out) / "metrics.md").read_text(encoding="utf-8"))
    if result.localization is not None:
        print((Path(args.out) / "localization.md").read_text(encoding="utf-8"))
    log.info("wrote %d files to %s", len(result.files), args.out)
    return 0


def run_robustness(args: argparse.Namespace) -> int:
    from avforensics.protocols.evaluate import DataSelection
    from avforensics.protocols.robustness import run_robustness as robustness

    try:
        names = _listed(args.perturbations)
        severities = [int(value) for value in _listed(args.levels)]
    except ValueError:
        log.error("robustness: --levels expects whole numbers such as 1,3, got %r", args.levels)
        return 2
    dataset, root = parse_data_argument(args.data) if args.data else ("", "")
    selection = DataSelection(dataset=dataset, root=root, prepared=args.prepared or "")
    try:
        robustness(args.source, args.out, data=selection, part=args.part, names=names, severities=severities,
                   seed=args.seed, batch_size=args.batch_size, device=args.device)
    except (OSError, ValueError, KeyError) as error:
        log.error("robustness %s: %s", args.source, error, exc_info=args.verbose)
        return 1
    print((Path(args.out) / "robustness.md").read_text(encoding="utf-8"))
    return 0


def _listed(text: str | None) -> list[str]:
    """A comma-separated option's values (none when the option was not given)."""
    return [value.strip() for value in (text or "").split(",") if value.strip()]


def run_benchmark_protocol(args: argparse.Namespace) -> int:
    from avforensics.experiment.config import load_config
    from avforensics.protocols.benchmark import BENCHMARKS, run_benchmark

    if args.list:
        for benchmark in BENCHMARKS.values():
            print(f"{benchmark.name}: {benchmark.protocol} over {', '.join(benchmark.held_out)}\n"
                  f"    {benchmark.description}")
        return 0
    if not args.config or not args.out:
        return _usage_error("CONFIG and --out are required (or --list)")
    if bool(args.table) == bool(args.protocol):
        return _usage_error("give --table NAME, or --protocol NAME --held-out A,B,...")
    if args.table:
        if args.table not in BENCHMARKS:
            return _usage_error(f"unknown table {args.table!r}; known: {sorted(BENCHMARKS)}")
        named = BENCHMARKS[args.table]
        protocol, held_out, title = named.protocol, named.held_out, named.description
    else:
        protocol, title = args.protocol, ""
        held_out = ()
    if args.held_out:
        held_out = tuple(value.strip() for value in args.held_out.split(",") if value.strip())
    try:
        config = load_config(args.config, args.overrides)
        table = run_benchmark(config, args.out, protocol=protocol, held_out=held_out, title=title,
                              part=args.part, level=args.level, head=args.head, batch_size=args.batch_size,
                              device=args.device, plots=args.plots)
    except (OSError, ValueError, KeyError) as error:
        log.error("benchmark-protocol %s: %s", args.config, error, exc_info=args.verbose)
        return 1
    print(table.to_markdown())
    return 0


def _usage_error(message: str) -> int:
    """Exit code 2, as argparse gives for other usage errors."""
    log.error("benchmark-protocol: %s", message)
    return 2


def run_reproduce(args: argparse.Namespace) -> int:
    from avforensics.experiment.config import ConfigError
    from avforensics.protocols.paper_tables import ROWS, ReproduceError, reproduce

    if args.list:
        for row in ROWS:
            if args.paper in (None, row.paper) and args.table in (None, row.table):
                print(f"{row.paper} table {row.table}: {row.name} / {row.subset}\n    {row.commands()}")
        return 0
    if not args.paper or not args.out:
        log.error("reproduce: PAPER and --out are required (or --list)")
        return 2
    try:
        roots = _by_dataset(args.data, "--data")
        prepared = _by_dataset(args.prepared, "--prepared")
        tables = reproduce(args.paper, None if args.table is None else [args.table], args.out, roots=roots,
                           prepared=prepared, overrides=args.overrides, batch_size=args.batch_size,
                           device=args.device, plots=args.plots)
    except (OSError, ValueError, KeyError, ConfigError, ReproduceError) as error:
        log.error("reproduce %s %s: %s", args.paper, args.table or "", error, exc_info=args.verbose)
        return 1
    print("\n".join(table.to_markdown() for table in tables))
    return 0


def _by_dataset(values: list[str], flag: str) -> dict[str, str]:
    """`DATASET=PATH` arguments as a mapping; a value without a dataset is an error naming the flag."""
    found = {}
    for value in values:
        dataset, root = parse_data_argument(value)
        if not dataset:
            raise ValueError(f"{flag} {value!r}: expected DATASET=PATH (e.g. {flag} kodf=/data/KoDF)")
        found[dataset] = root
    return found
