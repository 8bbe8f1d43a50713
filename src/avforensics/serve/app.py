"""The application factory: `create_app(settings)` -> a FastAPI app with the API, the pages and the workers.

The job store, the job files, the model catalogue and the worker pool live in one `Service`, reached from
handlers as `request.app.state.service`. Other rooms add endpoints by passing their routers
(`create_app(settings, routers=[...])`), which share the service and its token rules (`auth.require_token`).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from avforensics import __version__
from avforensics.serve import api, live, pages
from avforensics.serve.catalogue import ModelEntry, load_catalogue
from avforensics.serve.files import JobFiles
from avforensics.serve.metrics import ServiceMetrics
from avforensics.serve.settings import ServeSettings
from avforensics.serve.store import JobStore
from avforensics.serve.worker import WorkerConfig, WorkerPool

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class DataFolderBusy(RuntimeError):
    """Another server already runs on this data folder (one server per job store)."""


class Service:
    """Everything the endpoints share. `start` recovers jobs a killed server left and starts the workers."""

    def __init__(self, settings: ServeSettings, catalogue: dict[str, ModelEntry] | None = None) -> None:
        self.settings = settings
        self.store = JobStore(settings.database)
        self.files = JobFiles(settings.jobs_folder)
        self.catalogue = load_catalogue(settings.models) if catalogue is None else catalogue
        self.metrics = ServiceMetrics(self)
        self.pool: WorkerPool | None = None
        self._lock: IO[str] | None = None

    @property
    def workers_alive(self) -> int:
        return self.pool.alive if self.pool else 0

    def start(self) -> None:
        self._lock = _lock_data_folder(self.settings.data)
        requeued, failed = self.store.recover(self.settings.max_attempts)
        if requeued or failed:
            log.info("after a restart: %d interrupted job(s) queued again, %d failed", len(requeued),
                     len(failed))
        self.files.sweep(self.store.ids())
        if self.settings.token_required and not self.store.has_tokens():
            token = self.store.add_token("first")
            log.warning("this server requires an API token; a first one was made (shown once): %s", token)
        if self.settings.workers > 0:
            threads = max(1, (os.cpu_count() or 1) // self.settings.workers)
            config = WorkerConfig(self.settings.database, self.settings.jobs_folder,
                                  {key: entry.checkpoint for key, entry in self.catalogue.items()}, threads,
                                  self.settings.batch_size, self.settings.device)
            self.pool = WorkerPool(config, self.settings.workers, self.store, self.settings.max_attempts)
            self.pool.start()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self._lock is not None:
            self._lock.close()


def create_app(settings: ServeSettings, *, catalogue: dict[str, ModelEntry] | None = None,
               routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The service as an ASGI app; the workers start and stop with it (its lifespan)."""
    service = Service(settings, catalogue)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="avforensics", version=__version__, lifespan=lifespan,
                  description="Audio-visual deepfake detection as a service: jobs, reports, timelines.")
    app.state.service = service
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization"])
    for router in (api.router, live.router, *routers, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _lock_data_folder(data: Path) -> IO[str]:
    data.mkdir(parents=True, exist_ok=True)
    handle = (data / "server.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        handle.close()
        raise DataFolderBusy(f"{data}: another avforensics server is using this data folder") from error
    return handle
