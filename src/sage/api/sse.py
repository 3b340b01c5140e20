"""The one Server-Sent Events response, for chat answers and the market stream alike.

A small ASGI response rather than StreamingResponse, because a stream needs three things
StreamingResponse does not do:
- bytes at once: the headers and an opening comment carrying `retry:` go out before the
  stream has anything to say (a model may think for a while), so the client and every
  proxy between see the response start, and learn the reconnect delay;
- the client's disconnect the moment it happens: `receive()` is watched while the stream
  is quiet, so a disconnect ends the stream (and, for chat, the upstream model call)
  instead of waiting for the next write to fail;
- shutdown: uvicorn waits for open responses during its grace period and then cuts them
  with no final byte. When shutdown begins (`StreamDrain.start`), every open stream ends
  at once with its own last words (chat: a `reconnect` event naming where to resume), so
  clients move to another task while this one finishes its work.
A stream yields wire frames (bytes, one or more whole events) or None when a keep-alive
interval passed idle; the response remembers the last `id:` it sent for the farewell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_MS = 3000
KEEPALIVE = b": keepalive\n\n"
OPENING = b": keepalive\nretry: " + str(RETRY_MS).encode() + b"\n\n"
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",  # no-transform: no proxy may compress or buffer it
    "X-Accel-Buffering": "no",
}

Frames = AsyncGenerator[bytes | None, None]  # None: a keep-alive interval passed with nothing to send


class StreamDrain:
    """Set once, when the process starts shutting down: every open event stream ends then.

    `on_start` callbacks run first, synchronously, so a domain can prepare (the chat keeps
    answers running once their readers are told to move) before any stream is closed.
    """

    def __init__(self) -> None:
        self._started = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def on_start(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        if self._started.is_set():
            return
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("a shutdown callback failed")
        self._started.set()

    async def wait(self) -> None:
        await self._started.wait()


def stream_drain(request: Request) -> StreamDrain | None:
    """The app's drain (set up by create_app), if any."""
    drain = getattr(request.app.state, "stream_drain", None)
    return drain if isinstance(drain, StreamDrain) else None


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        frames: Frames,
        *,
        drain: StreamDrain | None = None,
        farewell: Callable[[str | None], bytes] | None = None,
        status_code: int = 200,
    ) -> None:
        self.frames = frames
        self.drain = drain
        # the last frame when the server closes the stream at shutdown, given the id of the
        # last event sent (what the client will send as Last-Event-ID)
        self.farewell = farewell
        self.last_event_id: str | None = None
        self.status_code = status_code  # the parameter also tells OpenAPI the default status
        self.background = None
        self._started = False
        self.init_headers(SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(_until_disconnect(receive))
        drained = asyncio.create_task(self.drain.wait()) if self.drain is not None else None
        tasks = {t for t in (pump, watch, drained) if t is not None}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if drained is not None and drained in done and not pump.done() and not watch.done():
                # Cancelled, the pump sends nothing more (a send cancelled while it waits for
                # the socket writes nothing), so the response ends here at once; the stream's
                # own cleanup (closing a subscription, say) runs in the pump meanwhile.
                pump.cancel()
                await self._close_for_shutdown(send)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(self, send: Send) -> None:
        if not self._started:
            self._started = True
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": OPENING, "more_body": True})

    async def _pump(self, send: Send) -> None:
        async with contextlib.aclosing(self.frames) as frames:
            try:
                await self._start(send)
                async for frame in frames:
                    if frame is None:
                        await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                        continue
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                    if frame.startswith(b"id: "):  # noted once sent: the client's Last-Event-ID
                        self.last_event_id = frame[4 : frame.index(b"\n")].decode()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                return  # the client went away mid-write

    async def _close_for_shutdown(self, send: Send) -> None:
        with contextlib.suppress(OSError):
            await self._start(send)
            last = self.farewell(self.last_event_id) if self.farewell is not None else b""
            await send({"type": "http.response.body", "body": last, "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
