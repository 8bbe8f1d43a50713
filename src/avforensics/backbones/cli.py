"""`avforensics weights install NAME` and `avforensics weights list`."""

from __future__ import annotations

import argparse
import logging

from avforensics.backbones import weights

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="install and list offline pretrained weights")
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="fetch, verify and convert weights into the user cache")
    install.add_argument("name", choices=sorted(weights.REGISTRY), metavar="NAME", help="one of: %(choices)s")
    install.add_argument("--force", action="store_true", help="reinstall even if already installed")
    install.set_defaults(run=run_install)
    listing = actions.add_parser("list", help="show installed and installable weights")
    listing.set_defaults(run=run_list)


def run_install(args: argparse.Namespace) -> int:
    try:
        path = weights.install(args.name, force=args.force)
    except weights.WeightsInstallError as error:
        log.error("%s", error)
        return 1
    print(f"{args.name}: installed in {path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    present = {entry.name: entry for entry in weights.installed()}
    print(f"weights directory: {weights.weights_home()}")
    for name, entry in sorted(weights.REGISTRY.items()):
        if name in present:
            item = present[name]
            print(f"{name:<18} installed  {item.size_bytes / 1e6:7.1f} MB  sha256 {item.sha256}  {item.path}")
        else:
            print(f"{name:<18} available  {entry.size / 1e6:7.1f} MB  `avforensics weights install {name}`")
    return 0
