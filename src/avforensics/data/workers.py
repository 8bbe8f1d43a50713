"""Work over many items on workers that each hold a costly state (a face detector, a model), built once.

`prepare` and `detect` describe their work as a `WorkerJob` and hand it to an `ItemMap`: `local_map` runs it
in this process or a process pool; another engine (scale/ on Ray) runs the same job on a cluster. The job's
functions are module-level, so any engine can ship them by reference to other processes or machines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class WorkerJob:
    """`setup(*setup_args)` builds a worker's state once; `apply(state, item)` does one item and returns its
    result (a record: failures of single items are results, not exceptions). An exception from `setup`
    (e.g. missing weights) is raised to the caller by the first item the worker takes.

    `threads`: torch threads (and CPUs) per worker. `wants_gpu`: the work is a model's forward pass that a
    GPU speeds up; an engine that places such a worker on a GPU builds it with `device="cuda"`, so setup
    takes a `device` keyword."""

    setup: Callable[..., Any]
    apply: Callable[[Any, Any], Any]
    setup_args: tuple[Any, ...] = ()
    threads: int = 1
    wants_gpu: bool = False
    setup_kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, **overrides: Any) -> Any:
        """The state of one worker; `overrides` replace keyword arguments of setup (e.g. device)."""
        return self.setup(*self.setup_args, **{**self.setup_kwargs, **overrides})


class ItemMap(Protocol):
    """Runs `job` over `items` on `workers` workers; yields each item's result as it finishes."""

    def __call__(self, job: WorkerJob, items: Sequence[Any], workers: int) -> Iterator[Any]: ...


def local_map(job: WorkerJob, items: Sequence[Any], workers: int) -> Iterator[Any]:
    """In this process (one worker or one item, in item order) or a pool of `workers` processes (in order
    of completion)."""
    if workers <= 1 or len(items) <= 1:
        state = job.build() if items else None
        yield from (job.apply(state, item) for item in items)
        return
    with ProcessPoolExecutor(workers, initializer=_init_process, initargs=(job,)) as pool:
        yield from (future.result() for future in as_completed([pool.submit(_apply, item) for item in items]))


_PROCESS: dict[str, Any] = {}


def _init_process(job: WorkerJob) -> None:
    import torch

    torch.set_num_threads(job.threads)  # workers share the cores: their threads are each one's share
    _PROCESS["job"] = job
    try:
        _PROCESS["state"] = job.build()
    except Exception as error:
        # Raised from an initializer, it would only break the pool (BrokenProcessPool, its reason lost);
        # raised from the first item, it reaches the caller as itself.
        _PROCESS["error"] = error


def _apply(item: Any) -> Any:
    if "error" in _PROCESS:
        raise _PROCESS["error"]
    return _PROCESS["job"].apply(_PROCESS["state"], item)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
