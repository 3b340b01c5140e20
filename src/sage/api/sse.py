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

A stream fed by one loop for thousands of clients (the market stream's hub) is given a `feed`
instead: the response hands it a `FrameWriter`, and the hub pushes each frame into every
writer from its own loop. No task per client wakes per frame: a push runs the ASGI send at
once, and only a client whose socket is full gets a task, until it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, Literal

from fastapi import FastAPI, Request
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

# Where the app notes, in each HTTP request's scope, the server's own (receive, send): below
# the middleware, for the frames a hub pushes (see `EventStreamResponse._serve_feed`).
SERVER_CHANNEL = "sage.server_channel"

Frames = AsyncGenerator[bytes | None, None]  # None: a keep-alive interval passed with nothing to send
Feed = Callable[["FrameWriter"], Awaitable[None]]  # registers the writer, writes, returns once it has ended
EndReason = Literal["done", "gone", "overflow", "shutdown"]


class StreamDrain:
    """Set once, when the process starts shutting down: every open event stream ends then.

    `on_start` callbacks run first, synchronously, so a domain can prepare (the chat keeps
    answers running once their readers are told to move) before any stream is closed.
    """

    def __init__(self) -> None:
        self._started = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._watchers: dict[object, Callable[[], None]] = {}

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def on_start(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` once shutdown has begun (at once if it has), without a task waiting
        for it; returns the function that stops watching (a stream that ended on its own)."""
        if self.started:
            callback()
            return lambda: None
        token = object()
        self._watchers[token] = callback
        return lambda: self._watchers.pop(token, None) and None

    def start(self) -> None:
        if self._started.is_set():
            return
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("a shutdown callback failed")
        self._started.set()
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher()

    async def wait(self) -> None:
        await self._started.wait()


class StreamingApp(FastAPI):
    """FastAPI noting the server's (receive, send) in each HTTP request's scope (`SERVER_CHANNEL`),
    so a feed-mode event stream writes its pushed frames below the middleware stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_CHANNEL] = (receive, send)
        await super().__call__(scope, receive, send)


def stream_drain(request: Request) -> StreamDrain | None:
    """The app's drain (set up by create_app), if any."""
    drain = getattr(request.app.state, "stream_drain", None)
    return drain if isinstance(drain, StreamDrain) else None


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        frames: Frames | None = None,
        *,
        feed: Feed | None = None,
        backlog: int = 256,
        overflow: bytes = b"",
        drain: StreamDrain | None = None,
        farewell: Callable[[str | None], bytes] | None = None,
        status_code: int = 200,
    ) -> None:
        if (frames is None) == (feed is None):
            raise TypeError("an event stream has either frames or a feed")
        self.frames = frames
        # feed mode: at most `backlog` frames wait for a slow client's socket; past that the
        # stream ends with `overflow` as its last frame
        self.feed = feed
        self.backlog = backlog
        self.overflow = overflow
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
        if self.feed is not None:
            await self._serve_feed(self.feed, scope, receive, send)
            return
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

    async def _serve_feed(self, feed: Feed, scope: Scope, receive: Receive, send: Send) -> None:
        # The response's start and its last frame pass through the middleware (request id,
        # CORS, metrics); the frames in between go straight to the server, when the app
        # noted its channel in the scope: nothing in the middleware looks at body frames, and
        # a hub pushing to 10,000 clients would otherwise run that chain 10,000 times a flush.
        server_receive, server_send = scope.get(SERVER_CHANNEL) or (receive, send)
        writer = FrameWriter(server_send, self.backlog, server_receive)
        unwatch = self.drain.watch(lambda: writer.end("shutdown")) if self.drain is not None else None
        try:
            await self._start(send)
            await feed(writer)
        except OSError:
            writer.end("gone")
        finally:
            writer.end("done")
            if unwatch is not None:
                unwatch()
            await writer.stop()
        if writer.reason == "gone":
            return
        last = b""
        if writer.reason == "shutdown" and self.farewell is not None:
            last = self.farewell(writer.last_event_id)
        elif writer.reason == "overflow":
            last = self.overflow
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": last, "more_body": False})

    async def _pump(self, send: Send) -> None:
        assert self.frames is not None
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


_KEEPALIVE_BODY: dict[str, Any] = {"type": "http.response.body", "body": KEEPALIVE, "more_body": True}
_last_body: tuple[bytes, dict[str, Any]] = (b"", _KEEPALIVE_BODY)


def _body(frame: bytes | None) -> dict[str, Any]:
    """The ASGI message carrying `frame` (None: a keep-alive). A hub pushes the same frame to
    every client in turn, so its message is built once (servers only read messages)."""
    global _last_body
    if frame is None:
        return _KEEPALIVE_BODY
    last, message = _last_body
    if frame is not last:
        message = {"type": "http.response.body", "body": frame, "more_body": True}
        _last_body = (frame, message)
    return message


class FrameWriter:
    """One feed-mode stream's end of the wire, written to by a hub's loop.

    `push()` starts the ASGI send in the caller's task. Nearly always the socket takes the
    bytes and the send completes without waiting, so a frame costs one chain of calls and no
    task switch. When the socket is full the send waits: that write, and the frames pushed
    meanwhile (at most `limit`), are finished by a task of this stream's own, which ends when
    the backlog is empty. A push that would queue more than `limit` ends the stream
    ("overflow"): a client that stopped reading is disconnected, not buffered.
    Held until `release()`, so the stream's opening frames go out before anything pushed.

    Small on purpose (10,000 of them per process): no backlog until one is needed, no task of
    its own while the socket keeps up, and `wait()` watches for the client's disconnect in the
    request's own task, which `end()` interrupts, instead of a second task per stream.
    """

    __slots__ = (
        "_catching_up",
        "_ended",
        "_held",
        "_interrupted",
        "_receive",
        "_send",
        "_waiter",
        "backlog",
        "high_water",
        "last_event_id",
        "limit",
        "reason",
    )

    def __init__(self, send: Send, limit: int, receive: Receive | None = None) -> None:
        self._send = send
        self._receive = receive  # the request's messages: wait() watches them for a disconnect
        self.limit = limit
        self.backlog: deque[bytes | None] | None = None  # created for the first frame that has to wait
        self.high_water = 0  # the longest backlog so far
        self.reason: EndReason | None = None
        self.last_event_id: str | None = None
        self._held = True
        self._catching_up: asyncio.Task[None] | None = None
        self._waiter: asyncio.Task[Any] | None = None  # the task in wait(), interrupted by end()
        self._interrupted = False
        self._ended: asyncio.Future[None] | None = None  # wait() without `receive`

    @property
    def ended(self) -> bool:
        return self.reason is not None

    async def write(self, frame: bytes) -> None:
        """Write an opening frame, before `release()`, waiting for the socket if need be."""
        await self._send(_body(frame))

    def release(self) -> None:
        """Opening frames written: what was pushed meanwhile goes out, later pushes at once."""
        self._held = False
        if self.backlog and self._catching_up is None and not self.ended:
            self._catching_up = asyncio.create_task(self._catch_up(None))

    def push(self, frame: bytes | None) -> bool:
        """Send `frame` (None: a keep-alive) now, or queue it behind a write that waits for the
        socket. False when that queue is full: the stream has then ended ("overflow")."""
        if self.reason is not None:
            return True  # ended: whoever holds the writer lets it go shortly
        if self._held or self._catching_up is not None:
            backlog = self.backlog
            if backlog is None:
                backlog = self.backlog = deque()
            if len(backlog) >= self.limit:
                self.end("overflow")
                return False
            backlog.append(frame)
            if len(backlog) > self.high_water:
                self.high_water = len(backlog)
            return True
        send = self._send(_body(frame))
        if not isinstance(send, Coroutine):  # an ASGI server's send may be any awaitable
            self._catching_up = asyncio.create_task(self._catch_up(send))
            return True
        try:
            waiting_for = send.send(None)
        except StopIteration:
            return True
        except Exception:
            # the connection is gone (an OSError) or the server refuses the write: this stream
            # ends, and the hub's loop goes on with the others
            log.debug("a pushed frame could not be written", exc_info=True)
            self.end("gone")
            return True
        self._catching_up = asyncio.create_task(self._catch_up(_Resume(send, waiting_for)))
        return True

    async def _catch_up(self, started: Awaitable[None] | None) -> None:
        try:
            if started is not None:
                await started
            backlog = self.backlog
            while backlog:
                await self._send(_body(backlog.popleft()))
        except Exception:
            log.debug("a queued frame could not be written", exc_info=True)
            self.end("gone")
        self._catching_up = None  # no await between the empty backlog and this: no push is lost

    def end(self, reason: EndReason) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        if self.backlog:
            self.backlog.clear()
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)
        waiter = self._waiter
        if waiter is not None and waiter is not asyncio.current_task():
            self._interrupted = True
            waiter.cancel()  # out of its read of the request's messages; wait() returns

    async def wait(self) -> None:
        """Until the stream ends: the client left, the hub dropped it, or shutdown began.
        Reads the request's messages meanwhile (a disconnect ends the stream)."""
        if self.reason is not None:
            return
        receive = self._receive
        if receive is None:
            self._ended = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._ended)
            return
        task = self._waiter = asyncio.current_task()
        assert task is not None
        try:
            while self.reason is None:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.end("gone")
        except asyncio.CancelledError:
            # end() interrupted the read: swallow that one cancellation, not anyone else's
            if not self._interrupted or task.uncancel() > 0:
                raise
        finally:
            self._waiter = None

    async def stop(self) -> None:
        """Cancel a write still waiting for the socket (the stream has ended)."""
        task, self._catching_up = self._catching_up, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task


class _Resume:
    """Awaits the rest of a coroutine already started by hand (`FrameWriter.push` ran it up
    to its first wait): hands what it waits for to the awaiting task and passes the results
    and exceptions (a cancellation) back into it, as `await` would have."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_for: Any) -> None:
        self.coroutine = coroutine
        self.waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, None]:
        waiting_for = self.waiting_for
        while True:
            try:
                value = yield waiting_for
            except GeneratorExit:
                self.coroutine.close()
                raise
            except BaseException as exc:  # thrown into the coroutine, as await would
                try:
                    waiting_for = self.coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_for = self.coroutine.send(value)
                except StopIteration:
                    return


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
