"""The JSON API under /api/v1, plus /healthz and /metrics.

Creating a job: the upload is streamed to disk (uploads.py), sniffed with the probe `detect` uses
(`media.probe`: not a video -> 415 with the reason), checked against the duration limit, and queued
(queue full -> 429). Every refusal is an HTTP status with a `detail` naming the file and the reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from avforensics.media.errors import MediaError, MissingFileError
from avforensics.media.probe import probe
from avforensics.serve.auth import require_token
from avforensics.serve.files import display_name, is_job_id, new_job_id
from avforensics.serve.store import Job, QueueFull
from avforensics.serve.uploads import FILE_FIELD, UploadError, receive_upload

router = APIRouter()
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": [FILE_FIELD],
            "properties": {
                FILE_FIELD: {"type": "string", "format": "binary", "description": "the video"},
                "models": {"type": "array", "items": {"type": "string"},
                           "description": "model keys (GET /api/v1/models); repeat the field or separate "
                                          "by commas; default: every model"},
                "fake_periods": {"type": "string", "description": "known fake periods in seconds, JSON "
                                 "[[start, end], ...]: shaded in the timeline"},
            },
        }}},
    }
}


class PathJobRequest(BaseModel):
    """A job on a file already on the server (only under the folder given by --server-paths)."""

    path: str
    models: list[str] = Field(default_factory=list)
    fake_periods: list[tuple[float, float]] = Field(default_factory=list)


def service_of(request: Request) -> Any:
    return request.app.state.service


@router.get("/healthz", tags=["service"])
def healthz(request: Request) -> dict[str, Any]:
    service = service_of(request)
    return {"status": "ok", "workers_alive": service.workers_alive, "queued": service.store.queued_count()}


@router.get("/metrics", tags=["service"], response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(service_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/models", tags=["models"], dependencies=[Depends(require_token)])
def list_models(request: Request) -> list[dict[str, Any]]:
    return [entry.public() for entry in service_of(request).catalogue.values()]


@router.post("/api/v1/jobs", tags=["jobs"], status_code=201, openapi_extra=_UPLOAD_BODY,
             dependencies=[Depends(require_token)])
async def create_job(request: Request) -> dict[str, Any]:
    """Upload a video (multipart part 'file') and queue it for the chosen models."""
    service = service_of(request)
    _check_queue(service)
    job_id = new_job_id()
    folder = service.files.folder(job_id)
    folder.mkdir()
    try:
        try:
            upload = await receive_upload(request, folder / "upload.part", service.settings.max_upload_bytes)
        except UploadError as error:
            raise _refused(service, error.status, error.reason) from error
        if upload.path is None:
            raise _refused(service, 400, f"no video: send it as the multipart part '{FILE_FIELD}'")
        name = display_name(upload.file_name)
        models = _models(service, [m for value in upload.fields.get("models", []) for m in value.split(",")])
        periods = _fake_periods(service, upload.fields.get("fake_periods", [""])[-1] or "[]")
        media = upload.path.rename(service.files.upload_path(job_id, upload.file_name))
        job = await _admit(service, Job(job_id, "queued", name, str(media), True, models, periods))
    except BaseException:
        service.files.remove(job_id)
        raise
    return _summary(job)


@router.post("/api/v1/jobs/path", tags=["jobs"], status_code=201, dependencies=[Depends(require_token)])
async def create_path_job(request: Request, body: PathJobRequest) -> dict[str, Any]:
    """Queue a file already on the server (off unless the server runs with --server-paths DIR)."""
    service = service_of(request)
    root = service.settings.server_paths
    if root is None:
        raise _refused(service, 403, "jobs from server paths are off; start with --server-paths DIR")
    path = (root / body.path).resolve()
    if not path.is_relative_to(root.resolve()):
        raise _refused(service, 403, f"{body.path}: outside the folder this server may read")
    _check_queue(service)
    models = _models(service, body.models)
    periods = _fake_periods(service, body.fake_periods)
    job = Job(new_job_id(), "queued", display_name(body.path), str(path), False, models, periods)
    return _summary(await _admit(service, job))


@router.get("/api/v1/jobs", tags=["jobs"], dependencies=[Depends(require_token)])
def list_jobs(request: Request, limit: int = 200) -> list[dict[str, Any]]:
    """The history: most recent jobs first."""
    return [_summary(job) for job in service_of(request).store.recent(max(1, min(limit, 1000)))]


@router.get("/api/v1/jobs/{job_id}", tags=["jobs"])
def job_status(request: Request, job_id: str) -> dict[str, Any]:
    """State and progress of one job (no token needed: the id is the key)."""
    return _summary(_job(request, job_id))


@router.get("/api/v1/jobs/{job_id}/report", tags=["jobs"])
def job_report(request: Request, job_id: str) -> dict[str, Any]:
    """The finished job's report: one `detect` record per model, with the URL of its timeline picture."""
    job = _job(request, job_id)
    if not job.finished_or_failed:
        raise HTTPException(409, f"job {job_id} is {job.state}; the report comes when it is done")
    return report_of(job)


@router.get("/api/v1/jobs/{job_id}/timeline/{index}.png", tags=["jobs"], response_class=FileResponse)
def job_timeline(request: Request, job_id: str, index: int) -> FileResponse:
    job = _job(request, job_id)
    picture = service_of(request).files.timeline(job.id, index)
    if not job.finished_or_failed or not picture.is_file():
        raise HTTPException(404, f"job {job_id} has no timeline {index}")
    return FileResponse(picture, media_type="image/png")


@router.delete("/api/v1/jobs/{job_id}", tags=["jobs"], status_code=204, dependencies=[Depends(require_token)])
def delete_job(request: Request, job_id: str) -> Response:
    """Delete a job, its report and its files (a running job is dropped when its worker finishes)."""
    service = service_of(request)
    _job(request, job_id)
    service.store.delete(job_id)
    service.files.remove(job_id)
    return Response(status_code=204)


def report_of(job: Job) -> dict[str, Any]:
    results = []
    for index, key in enumerate(job.models):
        record = job.results.get(key)
        if record is None:
            continue
        timeline = f"/api/v1/jobs/{job.id}/timeline/{index}.png" if record["status"] == "ok" else None
        results.append({"model": key, "timeline": timeline, **record})
    return {**_summary(job), "fake_periods": job.fake_periods, "results": results}


def _summary(job: Job) -> dict[str, Any]:
    links = {"self": f"/api/v1/jobs/{job.id}", "report": f"/api/v1/jobs/{job.id}/report",
             "page": f"/jobs/{job.id}"}
    return {**job.summary(), "links": links}


def _job(request: Request, job_id: str) -> Job:
    job = service_of(request).store.get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


def _check_queue(service: Any) -> None:
    queued, limit = service.store.queued_count(), service.settings.queue_limit
    if queued >= limit:
        raise _refused(service, 429, f"the queue is full ({queued} jobs waiting, at most {limit}); "
                       "retry later", {"Retry-After": "30"})


async def _admit(service: Any, job: Job) -> Job:
    """Sniff the file with detect's probe, check its duration, and queue it."""
    try:
        info = await run_in_threadpool(probe, job.media_path)
    except MissingFileError as error:
        raise _refused(service, 404, f"{job.input_name}: {error.reason}") from error
    except MediaError as error:
        raise _refused(service, 415, f"{job.input_name}: {error.reason}") from error
    if not info.has_video:
        raise _refused(service, 415, f"{job.input_name}: no video stream (an audio-only file?)")
    limit = service.settings.max_duration_s
    if info.duration is not None and info.duration > limit:
        raise _refused(service, 413,
                       f"{job.input_name}: {info.duration:.0f} s long, the limit is {limit:.0f} s")
    try:
        service.store.create(job, service.settings.queue_limit)
    except QueueFull as error:
        raise _refused(service, 429, f"the queue is full: {error}; retry later",
                       {"Retry-After": "30"}) from error
    service.metrics.created.inc()
    return job


def _models(service: Any, asked: list[str]) -> list[str]:
    asked = list(dict.fromkeys(key.strip() for key in asked if key.strip()))
    unknown = [key for key in asked if key not in service.catalogue]
    if unknown:
        raise _refused(service, 400, f"unknown model(s) {', '.join(unknown)}; this server has "
                                     f"{', '.join(service.catalogue)}")
    return asked or list(service.catalogue)


def _fake_periods(service: Any, given: str | list) -> list[tuple[float, float]]:
    """Known fake periods, from a form field (JSON text) or a JSON body (a list of pairs)."""
    try:
        pairs = json.loads(given) if isinstance(given, str) else given
        periods = [(float(start), float(end)) for start, end in pairs]
    except (ValueError, TypeError) as error:
        raise _refused(service, 400,
                       f"fake_periods must be JSON [[start, end], ...] in seconds: {error}") from error
    if not all(math.isfinite(s) and math.isfinite(e) and 0 <= s < e for s, e in periods):
        raise _refused(service, 400, "fake_periods: each period needs 0 <= start < end, in seconds")
    return periods


def _refused(service: Any, status: int, reason: str, headers: dict[str, str] | None = None) -> HTTPException:
    service.metrics.rejected.labels(str(status)).inc()
    return HTTPException(status, reason, headers=headers)

