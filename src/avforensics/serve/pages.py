"""The web page: upload (drag and drop), a job's progress and results, the history. Server-rendered
(Jinja2) with a little plain JavaScript (static/app.js) that calls the JSON API; no build step."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from avforensics.serve.api import report_of, service_of
from avforensics.serve.auth import TOKEN_COOKIE, is_authorised
from avforensics.serve.files import is_job_id

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.filters["when"] = lambda seconds: (
    "" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
)
templates.env.filters["probability"] = lambda value: "–" if value is None else f"{value:.3f}"


@router.get("/", response_class=HTMLResponse)
def upload_page(request: Request) -> Response:
    service = service_of(request)
    if not is_authorised(request):
        return _sign_in(request)
    settings = service.settings
    limits = {"max_upload_mb": settings.max_upload_mb, "max_duration_s": settings.max_duration_s}
    return templates.TemplateResponse(request, "upload.html", {
        "models": [entry.public() for entry in service.catalogue.values()], "limits": limits,
    })


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """The page's token form: a valid token is kept in an HttpOnly, SameSite=Strict cookie."""
    token = str((await request.form()).get("token", "")).strip()
    if not service_of(request).store.token_valid(token):
        return _sign_in(request, "that token is not valid", status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request) -> Response:
    """Webcam and microphone scored live: MediaRecorder chunks over the WebSocket, events on a timeline."""
    if not is_authorised(request):
        return _sign_in(request)
    models = [entry.public() for entry in service_of(request).catalogue.values()]
    return templates.TemplateResponse(request, "live.html", {"models": models})


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request) -> Response:
    if not is_authorised(request):
        return _sign_in(request)
    return templates.TemplateResponse(request, "history.html", {"jobs": service_of(request).store.recent()})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> Response:
    """A job's page; the link can be shared (the id is unguessable, no token needed to read it)."""
    job = service_of(request).store.get(job_id) if is_job_id(job_id) else None
    if job is None:
        return templates.TemplateResponse(request, "missing.html", {"job_id": job_id}, status_code=404)
    report: dict[str, Any] = report_of(job) if job.finished_or_failed else {}
    ok = [result for result in report.get("results", []) if result["status"] == "ok"]
    return templates.TemplateResponse(request, "job.html", {
        "job": job, "report": report, "scored": ok,
        "fakes": sum(result["verdict"] == "fake" for result in ok),
        "can_delete": is_authorised(request),
    })


def _sign_in(request: Request, error: str = "", status_code: int = 401) -> Response:
    return templates.TemplateResponse(request, "sign_in.html", {"error": error}, status_code=status_code)
