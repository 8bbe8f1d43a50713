"""The service's live WebSocket: a WebM stream sent in chunks (as the browser's MediaRecorder sends it) gets
one event per window, scored exactly as `detect --causal` scores the finished file; tokens and unknown
models are refused before the stream starts."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from inference_fixtures import talking_video
from starlette.websockets import WebSocketDisconnect

from avforensics.inference.detector import Detector
from avforensics.serve.app import create_app
from avforensics.serve.settings import ServeSettings

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg (scripts/test.sh installs it)")
CHUNK = 8192


@pytest.fixture(scope="module")
def webm(tmp_path_factory) -> Path:
    """A 2-s talking clip as WebM (VP8 + Opus), MediaRecorder's format."""
    folder = tmp_path_factory.mktemp("live_ws")
    clip = talking_video(folder / "clip.mp4", 2.0, size=64)
    target = folder / "clip.webm"
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libvpx", "-b:v", "500k",
                    "-c:a", "libopus", "-f", "webm", str(target)], check=True)
    return target


@pytest.fixture
def settings(trained_tiny, tmp_path) -> ServeSettings:
    return ServeSettings(models=[trained_tiny["checkpoint"]], data=tmp_path / "data", workers=0)


def model_key(client: TestClient) -> str:
    return client.get("/api/v1/models").json()[0]["key"]


def test_a_chunked_webm_stream_gets_the_causal_scores_of_the_file(settings, webm, trained_tiny) -> None:
    data = webm.read_bytes()
    with TestClient(create_app(settings)) as client, client.websocket_connect(
        f"/api/v1/live/{model_key(client)}"
    ) as socket:
        for offset in range(0, len(data), CHUNK):
            socket.send_bytes(data[offset : offset + CHUNK])
        socket.send_text("end")
        events = []
        while not events or events[-1]["type"] != "end":
            events.append(socket.receive_json())
    windows = [event for event in events if event["type"] == "window"]
    skipped = sum(event["count"] for event in events if event["type"] == "skipped")
    end = events[-1]
    assert end["reason"] == "end of stream"
    assert end["windows_scored"] == len(windows) >= 1 and end["windows_skipped"] == skipped
    starts = [window["start"] for window in windows]
    assert starts == sorted(starts)
    offline = Detector.from_checkpoint(trained_tiny["checkpoint"], batch_size=1).predict(webm, causal=True)
    assert len(offline.segments) == len(windows) + skipped
    by_start = {round(segment.start, 6): segment for segment in offline.segments}
    for window in windows:
        assert window["p_fake"] == by_start[round(window["start"], 6)].p_fake
        assert window["state"] in ("CLEAR", "SUSPICIOUS", "ALERT")


def test_unknown_models_and_missing_tokens_are_refused_before_the_stream(settings) -> None:
    with TestClient(create_app(settings)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/v1/live/nope"):
            pass
        assert refused.value.code == 1008 and "unknown model 'nope'" in refused.value.reason
    with TestClient(create_app(replace(settings, require_token=True))) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/v1/live/any"):
            pass
        assert refused.value.code == 1008 and "requires an API token" in refused.value.reason


def test_the_live_page_offers_the_loaded_models(settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/live")
        assert page.status_code == 200
        assert model_key(client) in page.text and "/static/live.js" in page.text
        assert client.get("/static/live.js").status_code == 200
