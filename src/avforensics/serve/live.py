"""Live detection over a WebSocket: media chunks in (the browser's MediaRecorder, WebM), one event per scored
window out, as `avforensics detect --live` writes them.

The loop is the command line's (`inference.live.run_live` over `media.live.chunk_source`); it decodes and
scores in a thread per connection, since both block. Received chunks wait in a bounded queue, so a client
sending faster than the stream decodes is slowed down rather than held in memory without limit; the loop
itself skips windows when scoring falls behind (reported in the events). A connection ends with the loop's
`end` summary after the client sends the text message `end` or closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from avforensics.inference.detector import Detector
from avforensics.inference.live import LiveOptions, run_live
from avforensics.media.live import chunk_source
from avforensics.serve.auth import is_authorised

router = APIRouter()
QUEUED_CHUNKS = 64  # MediaRecorder slices of 250 ms: about 16 s of media waiting at most
_POLICY_VIOLATION = 1008


class LiveDetectors:
    """One Detector per model for the live connections of a server process (loaded on first use)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Detector] = {}
        self._lock = threading.Lock()

    def get(self, key: str, checkpoint: Any, device: str) -> Detector:
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = Detector.from_checkpoint(checkpoint, batch_size=1, device=device)
            return self._loaded[key]


_DETECTORS = LiveDetectors()


@router.websocket("/api/v1/live/{model_key:path}")
async def live_stream(websocket: WebSocket, model_key: str) -> None:
    """Binary messages: the stream's bytes (WebM/Matroska or MPEG-TS); text `end`: the stream ended.
    Each event is sent as a JSON text message; the last is `{"type": "end", ...}`."""
    service = websocket.app.state.service
    if not is_authorised(websocket):
        await websocket.close(_POLICY_VIOLATION, "this server requires an API token (sign in first)")
        return
    entry = service.catalogue.get(model_key)
    if entry is None:
        await websocket.close(_POLICY_VIOLATION, f"unknown model {model_key!r}; see /api/v1/models")
        return
    await websocket.accept()
    loop = asyncio.get_running_loop()
    detector = await loop.run_in_executor(
        None, _DETECTORS.get, model_key, entry.checkpoint, service.settings.device
    )
    chunks: queue.Queue[bytes | None] = queue.Queue(QUEUED_CHUNKS)
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def received() -> Iterator[bytes]:
        while (chunk := chunks.get()) is not None:
            yield chunk

    def emit(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    source = chunk_source(received(), name=f"websocket:{model_key}")
    scoring = loop.run_in_executor(None, run_live, detector, source, emit, LiveOptions())
    receiving = asyncio.create_task(_receive(websocket, chunks))
    try:
        await _send_events(websocket, events, scoring)
    finally:
        receiving.cancel()
        await loop.run_in_executor(None, _close, chunks)
    await websocket.close()


async def _receive(websocket: WebSocket, chunks: queue.Queue[bytes | None]) -> None:
    """Client messages into the chunk queue (blocking puts off the event loop: backpressure)."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect" or message.get("text") == "end":
                break
            if message.get("bytes"):
                await loop.run_in_executor(None, chunks.put, message["bytes"])
    except WebSocketDisconnect:
        pass
    await loop.run_in_executor(None, _close, chunks)


def _close(chunks: queue.Queue[bytes | None]) -> None:
    """End the stream for the reader. A full queue whose reader has stopped (the loop ended on an error)
    would never drain: its oldest chunk is dropped to make room, since nothing will read it anyway."""
    while True:
        try:
            chunks.put(None, timeout=0.5)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                chunks.get_nowait()


async def _send_events(websocket: WebSocket, events: asyncio.Queue[dict[str, Any]],
                       scoring: asyncio.Future) -> None:
    """Every event as it comes, until the loop's `end` summary (or the loop's own failure)."""
    while True:
        waiting = asyncio.ensure_future(events.get())
        done, _ = await asyncio.wait({waiting, scoring}, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            waiting.cancel()
            error = scoring.exception()
            while not events.empty():
                await websocket.send_text(json.dumps(events.get_nowait()))
            if error is not None:
                await websocket.send_text(json.dumps({"type": "error", "reason": str(error)}))
            return
        event = waiting.result()
        try:
            await websocket.send_text(json.dumps(event, allow_nan=False))
        except (WebSocketDisconnect, RuntimeError):
            return
        if event.get("type") == "end":
            return
