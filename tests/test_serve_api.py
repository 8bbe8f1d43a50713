"""The service's HTTP API in-process (FastAPI's test client, no worker processes): every endpoint, every
limit, every bad input, the token rules, and a job scored by the worker code against `avforensics detect`."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from inference_fixtures import talking_video

from avforensics.cli import main
from avforensics.inference.detector import Detector
from avforensics.media.encode import write_video
from avforensics.serve.app import create_app
from avforensics.serve.settings import ServeSettings
from avforensics.serve.worker import run_job


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("serve_media")
    paths = {"video": talking_video(folder / "clip.mp4", 0.7), "silent": talking_video(
        folder / "silent.mp4", 0.7, audio=False, seed=1)}
    data = paths["video"].read_bytes()
    paths["truncated"] = folder / "cut.mp4"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["text"] = folder / "notes.mp4"
    paths["text"].write_text("not a video\n" * 100)
    paths["empty"] = folder / "empty.mp4"
    paths["empty"].write_bytes(b"")
    tone = (0.2 * np.sin(np.arange(16000) * 2 * np.pi * 300 / 16000)).astype(np.float32)
    paths["audio"] = write_video(folder / "voice.wav", None, audio=tone, audio_codec="pcm_s16le")
    return paths


@pytest.fixture
def serve(trained_tiny, tmp_path) -> Callable[..., Iterator[TestClient]]:
    """`serve(**settings)`: a test client of an app with those settings (no workers), fresh data folder."""

    @contextmanager
    def client(**options) -> Iterator[TestClient]:
        settings = ServeSettings(models=[trained_tiny["checkpoint"]], data=tmp_path / "data", workers=0)
        with TestClient(create_app(replace(settings, **options))) as test_client:
            yield test_client

    return client


def upload(client: TestClient, path: Path, name: str | None = None, **fields) -> object:
    with path.open("rb") as handle:
        return client.post("/api/v1/jobs", files={"file": (name or path.name, handle, "video/mp4")},
                           data=fields)


def job_folders(client: TestClient) -> list[str]:
    return sorted(p.name for p in client.app.state.service.files.root.iterdir())


def metric(client: TestClient, line_start: str) -> float:
    text = client.get("/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


def test_service_endpoints_models_health_openapi_and_pages(serve) -> None:
    with serve() as client:
        assert client.get("/healthz").json() == {"status": "ok", "workers_alive": 0, "queued": 0}
        [model] = client.get("/api/v1/models").json()
        assert re.fullmatch(r"tiny_av/small@[0-9a-f]{12}", model["key"])
        assert model == {"key": model["key"], "detector": "tiny_av", "checkpoint": "last.ckpt",
                         "calibrated": False, "threshold": 0.5}
        schema = client.get("/openapi.json").json()
        assert {"/api/v1/jobs", "/api/v1/jobs/path", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/report",
                "/api/v1/models", "/healthz", "/metrics"} <= set(schema["paths"])
        body = schema["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"]["required"] == ["file"]
        assert "swagger-ui" in client.get("/docs").text
        page = client.get("/")
        assert page.status_code == 200 and model["key"] in page.text and 'id="drop"' in page.text
        assert client.get("/history").status_code == 200
        assert "followJob" in client.get("/static/app.js").text
        assert 'avforensics_jobs{state="queued"} 0.0' in client.get("/metrics").text


def test_upload_is_queued_under_a_server_side_name(serve, media) -> None:
    with serve() as client:
        response = upload(client, media["video"], name="../../etc/evil name.mp4")
        assert response.status_code == 201, response.text
        job = response.json()
        assert job["state"] == "queued" and job["input_name"] == "evil name.mp4" and job["progress"] == 0
        assert len(job["id"]) == 22 and job["links"]["page"] == f"/jobs/{job['id']}"
        folder = client.app.state.service.files.folder(job["id"])
        assert [p.name for p in folder.iterdir()] == ["input.mp4"]
        assert (folder / "input.mp4").read_bytes() == media["video"].read_bytes()
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "queued"
        assert client.get(f"/api/v1/jobs/{job['id']}/report").status_code == 409
        assert client.get(f"/api/v1/jobs/{job['id']}/timeline/0.png").status_code == 404
        assert [j["id"] for j in client.get("/api/v1/jobs").json()] == [job["id"]]
        assert "evil name.mp4" in client.get("/history").text
        assert 'id="pending"' in client.get(f"/jobs/{job['id']}").text
        assert metric(client, 'avforensics_jobs{state="queued"}') == 1
        assert metric(client, "avforensics_jobs_created_total") == 1
        assert client.get("/healthz").json()["queued"] == 1


@pytest.mark.parametrize(("key", "status", "reason"), [
    ("text", 415, "notes.mp4: not a media file FFmpeg recognises"),
    ("truncated", 415, "cut.mp4: looks like MP4/MOV but FFmpeg cannot open it (truncated"),
    ("empty", 415, "empty.mp4: file is empty (0 bytes)"),
    ("audio", 415, "voice.wav: no video stream"),
])
def test_files_that_are_not_videos_get_415_with_the_reason(serve, media, key, status, reason) -> None:
    with serve() as client:
        response = upload(client, media[key])
        assert response.status_code == status and response.json()["detail"].startswith(reason), response.text
        assert job_folders(client) == [] and client.get("/api/v1/jobs").json() == []
        assert metric(client, f'avforensics_requests_rejected_total{{status="{status}"}}') == 1


def test_limits_and_bad_requests(serve, media) -> None:
    size = media["video"].stat().st_size
    with serve(max_upload_mb=(size - 1) / 2**20, max_duration_s=0.5) as client:
        response = upload(client, media["video"])
        assert response.status_code == 413 and "larger than the limit" in response.json()["detail"]
    with serve(max_duration_s=0.5) as client:
        response = upload(client, media["video"])
        assert response.status_code == 413
        assert response.json()["detail"] == "clip.mp4: 1 s long, the limit is 0 s"
        cases = {
            "no multipart": client.post("/api/v1/jobs", json={"file": "x"}),
            "no file": client.post("/api/v1/jobs", files={"models": (None, "x")}),
            "other part": client.post("/api/v1/jobs", files={"video": ("a.mp4", b"123", "video/mp4")}),
            "two files": client.post("/api/v1/jobs",
                                     files=[("file", ("a.mp4", b"1")), ("file", ("b.mp4", b"2"))]),
            "malformed": client.post("/api/v1/jobs", content=b"--xyz\r\nnonsense",
                                     headers={"content-type": "multipart/form-data; boundary=abc"}),
        }
        assert {name: r.status_code for name, r in cases.items()} == {
            "no multipart": 415, "no file": 400, "other part": 400, "two files": 400, "malformed": 400,
        }, {name: r.text for name, r in cases.items()}
        assert "multipart part 'file'" in cases["no file"].json()["detail"]
        assert job_folders(client) == []
    with serve() as client:
        response = upload(client, media["video"], models="nope/x@1")
        assert response.status_code == 400
        assert "unknown model(s) nope/x@1; this server has tiny_av" in response.text
        for periods in ("[[1, 0.5]]", "[[1]]", "not json", '[["a", 2]]'):
            response = upload(client, media["video"], fake_periods=periods)
            assert response.status_code == 400 and "fake_periods" in response.json()["detail"], periods
        key = client.get("/api/v1/models").json()[0]["key"]
        response = upload(client, media["video"], models=key, fake_periods="[[0.1, 0.4]]")
        assert response.status_code == 201 and response.json()["models"] == [key]
        assert len(job_folders(client)) == 1
        for missing in ("AAAAAAAAAAAAAAAAAAAAAA", "../../etc", "x"):
            assert client.get(f"/api/v1/jobs/{missing}").status_code == 404
            assert client.delete(f"/api/v1/jobs/{missing}").status_code == 404
        assert client.get("/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_a_full_queue_answers_429(serve, media) -> None:
    with serve(queue_limit=2) as client:
        first, second = (upload(client, media["video"]).json()["id"] for _ in range(2))
        response = upload(client, media["video"])
        assert response.status_code == 429 and response.headers["retry-after"] == "30"
        assert "queue is full (2 jobs waiting, at most 2)" in response.json()["detail"]
        assert sorted(job_folders(client)) == sorted([first, second])
        assert client.delete(f"/api/v1/jobs/{first}").status_code == 204
        assert upload(client, media["video"]).status_code == 201


def test_tokens_are_required_when_asked_and_stored_hashed(serve, media, tmp_path) -> None:
    assert ServeSettings(models=[], data=tmp_path, host="0.0.0.0").token_required
    assert not ServeSettings(models=[], data=tmp_path, host="127.0.0.1").token_required
    assert ServeSettings(models=[], data=tmp_path, host="::1", require_token=True).token_required
    with serve(require_token=True) as client:
        token = client.app.state.service.store.add_token("tests")
        good, bad = {"Authorization": f"Bearer {token}"}, {"Authorization": "Bearer nope"}
        for method, url in (("get", "/api/v1/models"), ("get", "/api/v1/jobs"), ("post", "/api/v1/jobs"),
                            ("post", "/api/v1/jobs/path")):
            for headers in ({}, bad):
                response = client.request(method, url, headers=headers)
                assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", url
        assert client.get("/api/v1/models", headers=good).status_code == 200
        with media["video"].open("rb") as handle:
            job = client.post("/api/v1/jobs", files={"file": ("a.mp4", handle)}, headers=good).json()
        # A job's own link needs no token (the id is the key); listing, deleting and the pages do.
        assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 200
        assert client.get(f"/jobs/{job['id']}").status_code == 200
        assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 401
        assert client.get("/").status_code == 401 and 'action="/sign-in"' in client.get("/").text
        assert client.get("/history").status_code == 401
        assert client.post("/sign-in", data={"token": "nope"}).status_code == 401
        signed = client.post("/sign-in", data={"token": token}, follow_redirects=False)
        assert signed.status_code == 303 and "httponly" in signed.headers["set-cookie"].lower()
        assert "samesite=strict" in signed.headers["set-cookie"].lower()
        assert client.get("/").status_code == 200 and client.get("/history").status_code == 200
        assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204  # with the page's cookie
        client.cookies.clear()
        database = client.app.state.service.settings.database
    stored = sqlite3.connect(database).execute("SELECT hash FROM tokens").fetchall()
    assert len(stored) == 2  # one made at start (logged once), one by the test
    assert (hashlib.sha256(token.encode()).hexdigest(),) in stored
    assert token.encode() not in database.read_bytes() + Path(f"{database}-wal").read_bytes()


def test_jobs_from_server_paths_only_when_enabled_and_inside_the_folder(serve, media) -> None:
    with serve() as client:
        response = client.post("/api/v1/jobs/path", json={"path": str(media["video"])})
        assert response.status_code == 403 and "--server-paths" in response.json()["detail"]
    with serve(server_paths=media["video"].parent) as client:
        assert client.post("/api/v1/jobs/path", json={"path": "../x.mp4"}).status_code == 403
        assert client.post("/api/v1/jobs/path", json={"path": "/etc/passwd"}).status_code == 403
        assert client.post("/api/v1/jobs/path", json={"path": "gone.mp4"}).status_code == 404
        assert client.post("/api/v1/jobs/path", json={"path": "notes.mp4"}).status_code == 415
        response = client.post("/api/v1/jobs/path", json={"path": "clip.mp4", "fake_periods": [[0, 0.3]]})
        assert response.status_code == 201 and response.json()["input_name"] == "clip.mp4"
        assert client.delete(f"/api/v1/jobs/{response.json()['id']}").status_code == 204
        assert media["video"].is_file()  # the server's own file is not the job's to delete


def test_cors_is_off_unless_origins_are_given(serve) -> None:
    preflight = {"Origin": "https://tools.example", "Access-Control-Request-Method": "POST"}
    with serve() as client:
        assert "access-control-allow-origin" not in client.options("/api/v1/jobs", headers=preflight).headers
        assert "access-control-allow-origin" not in client.get("/api/v1/models", headers=preflight).headers
    with serve(cors_origins=["https://tools.example"]) as client:
        response = client.options("/api/v1/jobs", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://tools.example"


def test_a_job_is_scored_like_detect_and_finished_once(serve, media, trained_tiny, tmp_path, capsys) -> None:
    checkpoint = trained_tiny["checkpoint"]
    detected = tmp_path / "detect.jsonl"
    assert main(["detect", str(media["silent"]), "--model", str(checkpoint), "--jsonl", str(detected)]) == 0
    expected = json.loads(detected.read_text())
    with serve() as client:
        service = client.app.state.service
        job_id = upload(client, media["silent"], name="my clip.mp4", fake_periods="[[0.2, 0.5]]").json()["id"]
        job = service.store.claim("test-worker")
        detector = Detector.from_checkpoint(checkpoint)
        assert run_job(job, service.store, service.files, {}, lambda key: detector)
        assert not service.store.finish(job, "done", {})  # the claim is spent: no second finish
        assert service.store.events(job_id) == ["queued", "running", "done"]
        report = client.get(f"/api/v1/jobs/{job_id}/report").json()
        [result] = report["results"]
        assert report["state"] == "done" and report["fake_periods"] == [[0.2, 0.5]]
        server_copy = str(service.files.upload_path(job_id, "x.mp4"))
        for field in ("p_fake", "p_video_fake", "p_audio_fake", "verdict", "threshold", "calibrated",
                      "duration", "segments", "faces_found", "flags", "model"):
            assert result[field] == expected[field], field
        renamed = [warning.replace(str(media["silent"]), "my clip.mp4") for warning in expected["warnings"]]
        assert result["warnings"] == renamed
        assert any("no audio track" in w for w in result["warnings"])
        assert server_copy not in json.dumps(report)
        picture = client.get(result["timeline"])
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
        page = client.get(f"/jobs/{job_id}").text
        assert f'id="p_fake-0">{result["p_fake"]:.3f}<' in page and 'id="timeline-0"' in page
        assert "no audio track" in page and "known fake periods shaded" in page
        assert metric(client, "avforensics_job_processing_seconds_count") == 1
        assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
        assert job_folders(client) == [] and client.get(f"/api/v1/jobs/{job_id}").status_code == 404
        # Deleted while it runs (here: as its model loads): the result and the files it wrote are dropped.
        upload(client, media["video"])
        running = service.store.claim("test-worker")

        def delete_then_load(key: str) -> Detector:
            assert client.delete(f"/api/v1/jobs/{running.id}").status_code == 204
            return detector

        assert not run_job(running, service.store, service.files, {}, delete_then_load)
        assert job_folders(client) == [] and service.store.get(running.id) is None
