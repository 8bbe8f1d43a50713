"""An ItemMap on Ray: one actor per worker holds the job's state (a face detector, a model, loaded once) and
takes items as Ray's ActorPool hands them out; results come back as they finish, exactly as the local
engine's would, since the actors run the same job functions.

Workers whose job wants a GPU (a model's forward pass) get `gpus_per_worker` GPUs each when the cluster has
any, and their setup is told `device="cuda"`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray.util import ActorPool

from avforensics.data.workers import WorkerJob

log = logging.getLogger(__name__)


class _Worker:
    """One worker: builds the job's state once; an error building it is raised by every item it takes (the
    first one reaches the caller, as from the local engine)."""

    def __init__(self, job: WorkerJob, overrides: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(job.threads)
        self.job, self.error, self.state = job, None, None
        try:
            self.state = job.build(**overrides)
        except Exception as error:
            self.error = error

    def apply(self, item: Any) -> Any:
        if self.error is not None:
            raise self.error
        return self.job.apply(self.state, item)


class RayMap:
    """Runs a WorkerJob over items with `workers` Ray actors (ray must be initialised: see `ray_session`).

    `gpus_per_worker`: GPUs per actor of a job that wants a GPU; None = 1 when the cluster has GPUs."""

    def __init__(self, gpus_per_worker: float | None = None) -> None:
        self.gpus_per_worker = gpus_per_worker

    def _gpus(self, job: WorkerJob) -> float:
        if not job.wants_gpu:
            return 0.0
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def __call__(self, job: WorkerJob, items: Sequence[Any], workers: int) -> Iterator[Any]:
        if not items:
            return
        gpus = self._gpus(job)
        overrides = {"device": "cuda"} if gpus > 0 else {}
        # A worker that dies (a node lost, out of memory) is restarted and its item retried, twice at most.
        actor = ray.remote(num_cpus=job.threads, num_gpus=gpus, max_restarts=2, max_task_retries=2)(_Worker)
        actors = [actor.remote(job, overrides) for _ in range(max(1, min(workers, len(items))))]
        log.info("%d Ray workers (%g CPU, %g GPU each), %d items", len(actors), job.threads, gpus, len(items))
        try:
            yield from ActorPool(actors).map_unordered(lambda worker, item: worker.apply.remote(item), items)
        finally:
            for worker in actors:
                ray.kill(worker)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration: the one this process already joined, the cluster at `address` ("auto": the one
    `ray start` runs on this machine), or else a private instance on this machine with `num_cpus` CPUs,
    shut down afterwards. Usage statistics stay off unless RAY_USAGE_STATS_ENABLED says otherwise."""
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Joining a cluster takes its resources as they are; a private instance gets ours, without a dashboard.
    start = {} if address else {"num_cpus": num_cpus, "include_dashboard": False}
    ray.init(address=address, log_to_driver=False, **start)
    try:
        yield
    finally:
        ray.shutdown()
