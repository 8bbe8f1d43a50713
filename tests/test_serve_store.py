"""The job store on its own: claims make finishing exactly-once, recovery after a crash or a dead worker,
the queue bound, token digests, one server per data folder."""

from __future__ import annotations

import pytest

from avforensics.cli import main
from avforensics.serve.app import DataFolderBusy, Service
from avforensics.serve.files import JobFiles, display_name, new_job_id
from avforensics.serve.settings import ServeSettings
from avforensics.serve.store import Job, JobStore, QueueFull


def queued(store: JobStore, count: int, limit: int = 100) -> list[str]:
    ids = [new_job_id() for _ in range(count)]
    for job_id in ids:
        store.create(Job(job_id, "queued", "a.mp4", "/x/a.mp4", True, ["m"], [(0.5, 1.0)]), limit)
    return ids


def test_claims_run_jobs_in_order_and_finish_them_once(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    first, second = queued(store, 2)
    job = store.claim("w1")
    assert job.id == first and job.state == "running" and job.attempts == 1
    assert job.fake_periods == [(0.5, 1.0)]
    assert store.progress(job, 0.5, "half")
    assert store.get(first).progress == 0.5 and store.get(first).stage == "half"
    assert store.finish(job, "done", {"m": {"status": "ok", "p_fake": 0.25}})
    assert not store.finish(job, "done", {})  # a second finish changes nothing
    assert store.get(first).results == {"m": {"status": "ok", "p_fake": 0.25}}
    assert store.claim("w1").id == second and store.claim("w1") is None
    with pytest.raises(ValueError, match="done or failed"):
        store.finish(job, "running", {})
    assert store.counts() == {"queued": 0, "running": 1, "done": 1, "failed": 0}
    assert store.processing_seconds()[0] == 1


def test_recovery_requeues_interrupted_jobs_and_stale_claims_lose(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    [job_id] = queued(store, 1)
    stale = store.claim("w1")
    assert store.recover(max_attempts=3) == ([job_id], [])  # the server was killed: run it again
    fresh = store.claim("w2")
    assert not store.progress(stale, 0.9, "late") and not store.finish(stale, "done", {"m": {}})
    assert store.finish(fresh, "done", {"m": {"status": "ok"}})
    assert store.events(job_id) == ["queued", "running", "requeued", "running", "done"]


def test_a_dead_worker_releases_only_its_jobs_and_a_job_is_tried_at_most_max_attempts(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    mine, other = queued(store, 2)
    store.claim("w1"), store.claim("w2")
    assert store.recover(max_attempts=2, worker="w1") == ([mine], [])
    assert store.get(other).state == "running"
    store.claim("w3")  # second attempt of `mine`
    assert store.recover(max_attempts=2, worker="w3") == ([], [mine])
    failed = store.get(mine)
    assert failed.state == "failed" and "interrupted 2 times" in failed.error
    assert store.events(mine)[-1] == "failed"


def test_the_queue_bound_counts_waiting_jobs_only(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    queued(store, 2, limit=2)
    with pytest.raises(QueueFull, match="at most 2"):
        queued(store, 1, limit=2)
    store.claim("w1")  # running jobs do not count against the bound
    queued(store, 1, limit=2)
    assert store.queued_count() == 2


def test_tokens_are_kept_as_digests_and_made_or_revoked_by_the_command(tmp_path, capsys) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    assert not store.has_tokens() and not store.token_valid("x")
    token = store.add_token("someone")
    assert store.has_tokens() and store.token_valid(token) and not store.token_valid(token + "x")
    assert len(token) >= 43
    assert main(["serve-token", "--data", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert store.token_valid(printed)
    assert main(["serve-token", "--data", str(tmp_path), "--revoke", printed]) == 0
    assert not store.token_valid(printed) and store.token_valid(token)
    assert main(["serve-token", "--data", str(tmp_path), "--revoke", printed]) == 1
    assert "no such token" in capsys.readouterr().err


def test_one_server_per_data_folder_and_orphan_folders_are_swept(tmp_path) -> None:
    settings = ServeSettings(models=[], data=tmp_path / "data", workers=0)
    first = Service(settings, catalogue={})
    orphan = JobFiles(settings.jobs_folder).folder(new_job_id())
    orphan.mkdir(parents=True)  # an upload cut off by a crash: no job in the store
    first.start()
    try:
        assert not orphan.exists()
        with pytest.raises(DataFolderBusy, match="another avforensics server"):
            Service(settings, catalogue={}).start()
    finally:
        first.stop()
    second = Service(settings, catalogue={})
    second.start()
    second.stop()


def test_client_file_names_are_only_shown(tmp_path) -> None:
    assert display_name("C:\\Users\\me\\clip 1.mp4") == "clip 1.mp4"
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("\x00\n") == "upload" and display_name(None) == "upload"
    files = JobFiles(tmp_path / "jobs")
    job_id = new_job_id()
    assert files.upload_path(job_id, "../x.MOV").name == "input.mov"
    assert files.upload_path(job_id, "evil.sh").name == "input.bin"
    with pytest.raises(ValueError, match="not a job id"):
        files.folder("../../etc")
