"""The event-stream response in feed mode: frames pushed by one loop (the market hub) into many streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sage.api.sse import KEEPALIVE, OPENING, SERVER_CHANNEL, EventStreamResponse, FrameWriter, StreamDrain
from tests.market.fakes import eventually


class _Socket:
    """An ASGI server's send: takes bytes at once, or waits while `full` (its buffer is)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.room = asyncio.Event()
        self.room.set()
        self.hang_up = asyncio.Event()

    @property
    def full(self) -> bool:
        return not self.room.is_set()

    @full.setter
    def full(self, value: bool) -> None:
        if value:
            self.room.clear()
        else:
            self.room.set()

    async def send(self, message: dict[str, Any]) -> None:
        if not self.room.is_set():
            await self.room.wait()
        self.sent.append(message)

    async def receive(self) -> dict[str, Any]:
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def finished(self) -> bool:
        return any(m["type"] == "http.response.body" and not m["more_body"] for m in self.sent)


async def test_a_push_is_written_at_once_without_a_task_switch() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=4)
    writer.release()
    assert writer.push(b"one") and writer.push(None)
    assert wire.bodies == [b"one", KEEPALIVE], "written before this task yielded to the loop"


async def test_pushes_wait_for_the_opening_frames_until_released() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=4)
    writer.push(b"live 1")
    writer.push(b"live 2")
    await writer.write(b"opening")
    assert wire.bodies == [b"opening"]
    writer.release()
    await eventually(lambda: wire.bodies == [b"opening", b"live 1", b"live 2"])
    writer.push(b"live 3")
    assert wire.bodies[-1] == b"live 3"


async def test_a_full_socket_queues_pushes_and_catches_up_in_order() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=4)
    writer.release()
    wire.full = True
    assert all(writer.push(frame) for frame in (b"a", b"b", b"c"))
    await asyncio.sleep(0)
    assert wire.bodies == [] and list(writer.backlog) == [b"b", b"c"]
    wire.full = False
    await eventually(lambda: wire.bodies == [b"a", b"b", b"c"])
    await eventually(lambda: not writer.backlog)
    await asyncio.sleep(0)  # the catch-up task ends after its last write
    writer.push(b"d")
    assert wire.bodies[-1] == b"d", "caught up: written at once again"
    assert writer.high_water == 2 and not writer.ended


async def test_a_stream_past_its_backlog_limit_ends_as_overflow() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=2)
    writer.release()
    wire.full = True
    assert writer.push(b"a") and writer.push(b"b") and writer.push(b"c")
    assert writer.push(b"d") is False
    assert writer.reason == "overflow" and not writer.backlog
    await writer.wait()
    await writer.stop()
    assert writer.push(b"e") is True, "an ended writer takes pushes quietly until it is let go"


def _feed(pushed: list[FrameWriter]) -> Any:
    async def feed(writer: FrameWriter) -> None:
        await writer.write(b"event: ticker\ndata: {}\n\n")
        writer.release()
        pushed.append(writer)
        await writer.wait()

    return feed


async def test_a_feed_stream_opens_runs_and_ends_when_the_client_leaves() -> None:
    wire, writers = _Socket(), []
    response = EventStreamResponse(feed=_feed(writers), overflow=b"event: error\n\n")
    task = asyncio.create_task(response({"type": "http"}, wire.receive, wire.send))
    await eventually(lambda: writers)
    writers[0].push(b"update")
    assert wire.sent[0]["type"] == "http.response.start" and wire.sent[0]["status"] == 200
    assert wire.bodies == [OPENING, b"event: ticker\ndata: {}\n\n", b"update"]
    wire.hang_up.set()
    await asyncio.wait_for(task, 10)
    assert writers[0].reason == "gone" and not wire.finished, "nothing is written to a client that left"


async def test_a_feed_stream_that_overflows_ends_with_the_overflow_frame() -> None:
    wire, writers = _Socket(), []
    response = EventStreamResponse(feed=_feed(writers), backlog=1, overflow=b"event: error\n\n")
    task = asyncio.create_task(response({"type": "http"}, wire.receive, wire.send))
    await eventually(lambda: writers)
    wire.full = True
    writers[0].push(b"a")
    writers[0].push(b"b")
    assert writers[0].push(b"c") is False
    wire.full = False
    await asyncio.wait_for(task, 10)
    assert wire.bodies[-1] == b"event: error\n\n" and wire.finished
    assert b"b" not in wire.bodies and b"c" not in wire.bodies


async def test_a_feed_stream_ends_at_shutdown_with_its_farewell() -> None:
    wire, writers, drain = _Socket(), [], StreamDrain()
    response = EventStreamResponse(feed=_feed(writers), drain=drain, farewell=lambda last_id: b"event: bye\n\n")
    task = asyncio.create_task(response({"type": "http"}, wire.receive, wire.send))
    await eventually(lambda: writers)
    drain.start()
    await asyncio.wait_for(task, 10)
    assert writers[0].reason == "shutdown"
    assert wire.bodies[-1] == b"event: bye\n\n" and wire.finished


async def test_pushed_frames_go_to_the_server_below_the_middleware_and_the_ends_through_it() -> None:
    server, writers = _Socket(), []
    through_middleware: list[dict[str, Any]] = []

    async def middleware_send(message: dict[str, Any]) -> None:
        through_middleware.append(message)
        await server.send(message)

    response = EventStreamResponse(feed=_feed(writers), backlog=1, overflow=b"event: error\n\n")
    scope = {"type": "http", SERVER_CHANNEL: (server.receive, server.send)}
    task = asyncio.create_task(response(scope, server.receive, middleware_send))
    await eventually(lambda: writers)
    writers[0].push(b"update")
    assert server.bodies[-1] == b"update"
    assert [m.get("body") for m in through_middleware] == [None, OPENING], "the start and the opening only"
    server.full = True
    writers[0].push(b"a")
    writers[0].push(b"b")
    writers[0].push(b"c")
    server.full = False
    await asyncio.wait_for(task, 10)
    assert through_middleware[-1] == {"type": "http.response.body", "body": b"event: error\n\n", "more_body": False}


async def test_a_stream_ended_by_the_hub_leaves_the_request_task_uncancelled() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=1, receive=wire.receive)
    waiting = asyncio.create_task(writer.wait())
    await asyncio.sleep(0)
    writer.end("overflow")
    await asyncio.wait_for(waiting, 10)
    assert not waiting.cancelled() and waiting.cancelling() == 0


async def test_a_cancelled_request_task_stays_cancelled_while_its_stream_ends() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=1, receive=wire.receive)
    waiting = asyncio.create_task(writer.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    writer.end("overflow")
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_client_that_leaves_ends_the_wait_as_gone() -> None:
    wire = _Socket()
    writer = FrameWriter(wire.send, limit=1, receive=wire.receive)
    waiting = asyncio.create_task(writer.wait())
    wire.hang_up.set()
    await asyncio.wait_for(waiting, 10)
    assert writer.reason == "gone"


async def test_a_drain_watch_fires_once_and_can_be_withdrawn() -> None:
    drain = StreamDrain()
    fired: list[str] = []
    drain.watch(lambda: fired.append("kept"))
    unwatch = drain.watch(lambda: fired.append("withdrawn"))
    unwatch()
    drain.start()
    drain.start()
    assert fired == ["kept"]
    drain.watch(lambda: fired.append("late"))
    assert fired == ["kept", "late"], "watching a drain that has started fires at once"


def test_an_event_stream_has_frames_or_a_feed() -> None:
    async def frames() -> Any:
        yield b""

    async def feed(writer: FrameWriter) -> None:
        return None

    with pytest.raises(TypeError):
        EventStreamResponse()
    with pytest.raises(TypeError):
        EventStreamResponse(frames(), feed=feed)
