"""The one event-stream response: what chat answers and the market stream both get."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sage.api.sse import KEEPALIVE, OPENING, SSE_HEADERS, EventStreamResponse, Frames, StreamDrain
from tests.chat.support import new_chat, register, start_live_server


class _Wire:
    """An ASGI server's side of one response: what was sent, and a way to hang up."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.hang_up = asyncio.Event()
        self.body_arrived = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.body_arrived.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def finished(self) -> bool:
        return any(m["type"] == "http.response.body" and not m.get("more_body", False) for m in self.sent)


async def _frames(items: list[bytes | None], closed: asyncio.Event, hold: asyncio.Event | None = None) -> Frames:
    try:
        for item in items:
            yield item
        if hold is not None:
            await hold.wait()
    finally:
        closed.set()


async def _serve(response: EventStreamResponse, wire: _Wire) -> asyncio.Task[None]:
    return asyncio.create_task(response({"type": "http"}, wire.receive, wire.send))


async def test_headers_and_the_opening_retry_comment_go_out_before_the_first_frame() -> None:
    wire, closed, hold = _Wire(), asyncio.Event(), asyncio.Event()
    task = await _serve(EventStreamResponse(_frames([], closed, hold)), wire)
    await asyncio.wait_for(wire.body_arrived.wait(), 10)
    start = wire.sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert {k.lower(): v for k, v in SSE_HEADERS.items()}.items() <= headers.items()
    assert wire.body == OPENING and b"retry: 3000\n" in OPENING
    hold.set()
    await asyncio.wait_for(task, 10)


async def test_an_idle_tick_is_a_keepalive_comment_and_frames_pass_through() -> None:
    wire, closed = _Wire(), asyncio.Event()
    task = await _serve(EventStreamResponse(_frames([b"event: a\ndata: 1\n\n", None], closed)), wire)
    await asyncio.wait_for(task, 10)
    assert wire.body == OPENING + b"event: a\ndata: 1\n\n" + KEEPALIVE
    assert wire.finished and closed.is_set()


async def test_a_disconnect_closes_the_stream_while_it_is_quiet() -> None:
    wire, closed, hold = _Wire(), asyncio.Event(), asyncio.Event()
    task = await _serve(EventStreamResponse(_frames([b"event: a\ndata: 1\n\n"], closed, hold)), wire)
    await asyncio.wait_for(wire.body_arrived.wait(), 10)
    wire.hang_up.set()
    await asyncio.wait_for(task, 10)
    assert closed.is_set()  # the stream's generator was closed, so its producer learns at once


async def test_shutdown_ends_an_open_stream_with_its_farewell() -> None:
    wire, closed, hold, drain = _Wire(), asyncio.Event(), asyncio.Event(), StreamDrain()
    told: list[str] = []
    drain.on_start(lambda: told.append("prepared"))
    response = EventStreamResponse(
        _frames([b"id: 7-3\nevent: a\ndata: 1\n\n", None], closed, hold),
        drain=drain,
        farewell=lambda last: b"event: bye\ndata: " + (last or "none").encode() + b"\n\n",
    )
    task = await _serve(response, wire)
    async with asyncio.timeout(10):
        while not wire.body.endswith(b"data: 1\n\n" + KEEPALIVE):  # both frames are out
            await asyncio.sleep(0.01)
    drain.start()
    await asyncio.wait_for(task, 10)
    assert told == ["prepared"]
    assert closed.is_set() and wire.finished
    assert wire.body.endswith(b"id: 7-3\nevent: a\ndata: 1\n\n" + KEEPALIVE + b"event: bye\ndata: 7-3\n\n")


async def test_shutdown_ends_the_response_before_a_slow_stream_cleanup_has_finished() -> None:
    release, drain, wire = asyncio.Event(), StreamDrain(), _Wire()

    async def frames() -> Frames:
        try:
            yield b"event: a\ndata: 1\n\n"
            await asyncio.Event().wait()
        finally:
            await release.wait()  # e.g. a subscription that is slow to close

    task = await _serve(EventStreamResponse(frames(), drain=drain), wire)
    await asyncio.wait_for(wire.body_arrived.wait(), 10)
    drain.start()
    async with asyncio.timeout(10):
        while not wire.finished:
            await asyncio.sleep(0.01)
    assert not task.done()  # the cleanup still runs, but the client has its whole response
    release.set()
    await asyncio.wait_for(task, 10)


async def test_chat_and_market_streams_share_headers_opening_and_keepalives(make_settings, database_url, valkey_url):
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, sse_keepalive_seconds=0.1)
    server = await start_live_server(settings)
    try:
        await _compare_chat_and_market(server)
    finally:
        await server.stop()


async def _compare_chat_and_market(server: Any) -> None:
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        async with client.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "btc?"}, headers=headers
        ) as chat_response:
            chat_start = await anext(chat_response.aiter_bytes())
            chat_headers = chat_response.headers
        async with client.stream("GET", "/api/v1/market/stream") as market_response:
            chunks: AsyncIterator[bytes] = market_response.aiter_bytes()
            market_start = await anext(chunks)
            while KEEPALIVE not in market_start:
                market_start += await anext(chunks)
            market_headers = market_response.headers
    for name in ("content-type", "cache-control", "x-accel-buffering"):
        assert chat_headers[name] == market_headers[name]
    assert chat_start.startswith(OPENING) and market_start.startswith(OPENING)
