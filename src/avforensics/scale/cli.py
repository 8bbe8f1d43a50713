"""`--engine ray` for `prepare` and `detect`: options this room adds to commands other rooms own (see
cli.COMMAND_EXTENSIONS), so data/ and inference/ never import Ray. Ray itself is imported only when a run
asks for it: `detect --help` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Callable

Run = Callable[[argparse.Namespace], int]


def extend(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the engine options to `command`'s parser and run it through `run_on_engine`."""
    group = parser.add_argument_group("engine (docs/scale.md)")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="where the work runs: local processes (--workers) or --workers Ray actors")
    group.add_argument("--address", metavar="ADDRESS", help="Ray cluster to join: 'auto' (the one `ray "
                       "start` runs on this machine) or HOST:PORT; default: a private Ray on this machine")
    group.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of the private Ray (default: all)")
    if command == "detect":
        group.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per model worker "
                           "(default: 1 when the cluster has GPUs, else 0); a worker with GPUs uses cuda")
    parser.set_defaults(run=functools.partial(run_on_engine, parser.get_default("run")))


def run_on_engine(run: Run, args: argparse.Namespace) -> int:
    """`run(args)` with `args.item_map` set to a Ray engine when --engine ray, else unchanged."""
    ray_only = [flag for flag, value in (("--address", args.address), ("--num-cpus", args.num_cpus),
                                         ("--gpus-per-worker", getattr(args, "gpus_per_worker", None)))
                if value is not None]
    if args.engine == "local":
        if ray_only:
            return _usage(args, f"{', '.join(ray_only)}: only with --engine ray")
        return run(args)
    if getattr(args, "live", None) is not None:
        return _usage(args, "--live scores one stream in this process; it does not take --engine ray")
    if args.address and args.num_cpus is not None:
        return _usage(args, "--num-cpus sizes a private Ray; a cluster joined with --address has its own")
    if args.num_cpus is not None and args.num_cpus < 1:
        return _usage(args, "--num-cpus must be >= 1")
    try:
        from avforensics.scale.ray_map import RayMap, ray_session
    except ImportError as error:
        return _usage(args, f"--engine ray needs Ray: pip install 'avforensics[scale]' ({error})")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(ray_session(args.address, args.num_cpus))
        except (ConnectionError, RuntimeError, ValueError) as error:
            return _usage(args, f"cannot start or join Ray at {args.address or 'this machine'}: {error}")
        args.item_map = RayMap(getattr(args, "gpus_per_worker", None))
        return run(args)


def _usage(args: argparse.Namespace, message: str) -> int:
    print(f"avforensics {args.command}: error: {message}", file=sys.stderr)
    return 2
