"""The `avforensics` command: one sub-command per job, each registered by the room that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from avforensics import __version__

# Each module defines `register(subparsers)`, adding its sub-commands with `set_defaults(run=...)`,
# where `run(args) -> int` returns the exit code (0 ok, 1 some inputs failed; argparse uses 2).
COMMAND_MODULES: list[str] = [
    "avforensics.backbones.cli",
    "avforensics.data.cli",
    "avforensics.synth.cli",
    "avforensics.train.cli",
    "avforensics.protocols.cli",
    "avforensics.inference.cli",
    "avforensics.serve.cli",
    "avforensics.protocols.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avforensics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"avforensics {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
