"""The `avforensics` command: one sub-command per job, each registered by the room that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from avforensics import __version__
from avforensics.backbones.errors import BackboneWeightsError

# Each module defines `register(subparsers)`, adding its sub-commands with `set_defaults(run=...)`,
# where `run(args) -> int` returns the exit code (0 ok, 1 some inputs failed; argparse uses 2). The names
# are the sub-commands each adds, so a command line imports only the module it runs: importing them all
# (torch, transformers, peft, scikit-learn) costs seconds of start-up.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "avforensics.backbones.cli": ("weights",),
    "avforensics.data.cli": ("audit", "prepare", "split", "verify-split"),
    "avforensics.synth.cli": ("synth",),
    "avforensics.train.cli": ("train", "models"),
    "avforensics.protocols.cli": ("evaluate", "benchmark-protocol", "robustness", "reproduce"),
    "avforensics.inference.cli": ("detect", "calibrate"),
    "avforensics.serve.cli": ("serve", "serve-token"),
    "avforensics.protocols.demo": ("demo",),
}

# Options a room adds to sub-commands other rooms own: module -> the sub-commands its `extend(parser,
# command)` adds to, after their owner registered them. scale/ adds `--engine ray` to prepare and detect,
# so data/ and inference/ never import Ray; they run what `args.item_map` gives them.
COMMAND_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "avforensics.scale.cli": ("prepare", "detect"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `command` alone when it is a known sub-command, else of every sub-command."""
    parser = argparse.ArgumentParser(prog="avforensics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"avforensics {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    owners = [module for module, names in COMMAND_MODULES.items() if command in names]
    for name in owners or COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for module, commands in COMMAND_EXTENSIONS.items():
        for command_name in (name for name in commands if name in subparsers.choices):
            importlib.import_module(module).extend(subparsers.choices[command_name], command_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(next((word for word in argv if not word.startswith("-")), None))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except BackboneWeightsError as error:  # e.g. hub weights offline: the message says what to do instead
        logging.getLogger("avforensics").error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
