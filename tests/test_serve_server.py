"""`avforensics serve` as a real process on 127.0.0.1: memory during a 500 MB upload, a headless Chromium
that uses the page, 50 concurrent uploads, and a `kill -9` while jobs are queued and running.

Numbers and the browser's screenshot are written to test-artefacts/ (or $AVFORENSICS_TEST_ARTEFACTS).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from inference_fixtures import talking_video
from PIL import Image
from serve_fixtures import ServerProcess, upload, wait_finished

from avforensics.serve.store import JobStore

pytestmark = pytest.mark.slow
ARTEFACTS = Path(os.environ.get("AVFORENSICS_TEST_ARTEFACTS", Path(__file__).parents[1] / "test-artefacts"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MIB = 1 << 20


@pytest.fixture(scope="module")
def server(trained_tiny, tmp_path_factory):
    """One server with two workers for this module's tests (the crash test, last, kills it)."""
    data = tmp_path_factory.mktemp("served") / "data"
    with ServerProcess(trained_tiny["checkpoint"], data, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def short_videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("short_videos")
    return [talking_video(folder / f"short{seed}.mp4", 0.7, seed=seed) for seed in range(5)]


def test_a_500_mb_upload_streams_to_disk_in_flat_memory(server) -> None:
    """The server's resident memory grows by less than 100 MB while it receives 500 MB (then sniffs it:
    zeros are not a video, so 415, and the file is removed)."""
    boundary = secrets.token_hex(12)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk, count = bytes(MIB), 500

    def body():
        yield head
        for _ in range(count):
            yield chunk
        yield tail

    process = psutil.Process(server.pid)
    start = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = httpx.post(f"{server.url}/api/v1/jobs", content=body(), timeout=300, headers={
            "content-type": f"multipart/form-data; boundary={boundary}",
            "content-length": str(len(head) + count * MIB + len(tail)),
        })
    finally:
        done.set()
        sampler.join()
    growth = (peak - start) / MIB
    print(f"\nserver RSS grew by {growth:.1f} MiB while receiving {count} MiB")
    assert response.status_code == 415 and response.json()["detail"].startswith("big.mp4: not a media file")
    assert growth < 100, growth
    assert list((server.data / "jobs").iterdir()) == []


def test_a_browser_uploads_a_video_and_sees_the_result(server, tmp_path) -> None:
    """Headless Chromium: drop a synthetic video on the page with a known fake period, wait for the result,
    check verdict, scores, warnings and the shaded timeline against the API's report, screenshot, delete."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed for this test (scripts/test.sh installs it)")
    video = talking_video(tmp_path / "interview.mp4", 1.6, seed=7)
    fake_start, fake_end = 0.4, 1.0
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.goto(f"{server.url}/")
        transfer = page.evaluate_handle(
            """([data, name]) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], name, {type: "video/mp4"}));
                return transfer;
            }""",
            [base64.b64encode(video.read_bytes()).decode(), "interview.mp4"],
        )
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        assert "interview.mp4" in page.inner_text("#chosen")
        page.click("summary")
        page.fill("#fake-periods", json.dumps([[fake_start, fake_end]]))
        page.click("#submit")
        page.wait_for_url(re.compile(r"/jobs/[A-Za-z0-9_-]{22}$"), timeout=60_000)
        page.wait_for_selector("#verdict", timeout=180_000)
        job_id = page.url.rsplit("/", 1)[1]
        [result] = httpx.get(f"{server.url}/api/v1/jobs/{job_id}/report").json()["results"]
        assert page.inner_text("#verdict-0") == result["verdict"]
        assert page.inner_text("#verdict").startswith("FAKE" if result["verdict"] == "fake" else "REAL")
        for head in ("p_fake", "p_video_fake", "p_audio_fake"):
            assert page.inner_text(f"#{head}-0") == f"{result[head]:.3f}", head
        assert "not calibrated" in page.inner_text("#scores")
        assert result["warnings"] and page.inner_text("#warnings-0").splitlines() == result["warnings"]
        assert page.eval_on_selector("#timeline-0", "img => img.complete && img.naturalWidth") == 900
        page.screenshot(path=str(ARTEFACTS / "serve-browser.png"), full_page=True)
        png = httpx.get(server.url + result["timeline"]).content
        picture = np.asarray(Image.open(BytesIO(png)).convert("RGB"))
        shaded = np.all(np.abs(picture.astype(int) - (249, 223, 223)) <= 3, axis=-1)
        assert shaded.sum() > 2000  # the known fake period, shaded red
        page.goto(f"{server.url}/history")
        page.on("dialog", lambda dialog: dialog.accept())
        page.click(f"#job-{job_id} button.delete")
        page.wait_for_selector(f"#job-{job_id}", state="detached")
        browser.close()
    assert httpx.get(f"{server.url}/api/v1/jobs/{job_id}").status_code == 404
    assert not (server.data / "jobs" / job_id).exists()


def test_fifty_concurrent_uploads_each_finish_once(server, short_videos) -> None:
    """50 uploads from 8 client threads (below the queue bound of 200): none lost, none duplicated; the
    throughput and the time from upload to report are printed and written to the artefacts."""
    total, threads = 50, 8
    store = JobStore(server.data / "jobs.sqlite")

    def one(index: int) -> tuple[str, float]:
        started = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=120) as client:
            response = upload(client, short_videos[index % len(short_videos)])
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]
            wait_finished(client, [job_id], timeout=600)
            report = client.get(f"/api/v1/jobs/{job_id}/report").json()
            assert report["state"] == "done" and [r["status"] for r in report["results"]] == ["ok"]
        return job_id, time.monotonic() - started

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(one, range(total)))
    elapsed = time.monotonic() - began
    ids = [job_id for job_id, _ in outcomes]
    assert len(set(ids)) == total
    assert all(store.events(job_id) == ["queued", "running", "done"] for job_id in ids)
    seconds = sorted(s for _, s in outcomes)
    numbers = {"jobs": total, "client_threads": threads, "workers": server.workers,
               "wall_s": round(elapsed, 2), "jobs_per_s": round(total / elapsed, 3),
               "p50_time_to_report_s": round(statistics.median(seconds), 2),
               "p95_time_to_report_s": round(seconds[int(0.95 * (total - 1))], 2)}
    print(f"\nload: {numbers}")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "serve-load.json").write_text(json.dumps(numbers, indent=2) + "\n")


def test_killed_workers_are_replaced_and_their_jobs_run_again(server, tmp_path) -> None:
    """kill -9 the worker processes (not the server) while a job runs: the server starts new workers and
    the interrupted job is queued again and finished once."""
    videos = [talking_video(tmp_path / f"worker{seed}.mp4", 1.0, seed=seed) for seed in range(3)]
    store = JobStore(server.data / "jobs.sqlite")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        ids = [upload(client, video).json()["id"] for video in videos]
        deadline = time.monotonic() + 120
        while not any(store.get(job_id).state == "running" for job_id in ids):
            assert time.monotonic() < deadline, "no job started"
            time.sleep(0.02)
        workers = [child for child in psutil.Process(server.pid).children()
                   if "multiprocessing.spawn" in " ".join(child.cmdline())]
        assert len(workers) == server.workers
        for worker in workers:
            worker.kill()
        wait_finished(client, ids, timeout=240)
        assert client.get("/healthz").json()["workers_alive"] == server.workers
    events = {job_id: store.events(job_id) for job_id in ids}
    assert all(e.count("done") == 1 and e[-1] == "done" for e in events.values()), events
    assert any(e[:4] == ["queued", "running", "requeued", "running"] for e in events.values()), events


def test_kill_9_while_jobs_run_then_restart_finishes_each_job_once(server, trained_tiny, tmp_path) -> None:
    """kill -9 the server (last in this module) with jobs done, running and queued; the workers die with it;
    the restarted server runs the interrupted and queued jobs; every job is done exactly once, and reports
    finished before the crash are unchanged."""
    videos = [talking_video(tmp_path / f"crash{seed}.mp4", 0.7, seed=seed) for seed in range(6)]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        ids = [upload(client, video).json()["id"] for video in videos]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            states = [client.get(f"/api/v1/jobs/{job_id}").json()["state"] for job_id in ids]
            if "done" in states and "running" in states and "queued" in states:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"never saw done, running and queued jobs together: {states}")
        before = {job_id: client.get(f"/api/v1/jobs/{job_id}/report").json()
                  for job_id, state in zip(ids, states, strict=True) if state == "done"}
    workers = psutil.Process(server.pid).children(recursive=True)
    server.kill()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], "worker processes outlived their killed server"
    store = JobStore(server.data / "jobs.sqlite")
    at_kill = {job_id: store.get(job_id).state for job_id in ids}
    running = [job_id for job_id, state in at_kill.items() if state == "running"]
    assert running and "queued" in at_kill.values(), at_kill
    with ServerProcess(trained_tiny["checkpoint"], server.data, workers=1) as second, \
            httpx.Client(base_url=second.url, timeout=60) as client:
        status = wait_finished(client, ids, timeout=300)
        assert {s["state"] for s in status.values()} == {"done"}
        for job_id, report in before.items():
            assert client.get(f"/api/v1/jobs/{job_id}/report").json() == report
    events = {job_id: store.events(job_id) for job_id in ids}
    assert all(e.count("done") == 1 and e[-1] == "done" for e in events.values()), events
    assert all(events[job_id] == ["queued", "running", "requeued", "running", "done"] for job_id in running)
    assert sum("requeued" in e for e in events.values()) == len(running)
