"""Live fan-out: the per-process hub, and SSE through real HTTP servers sharing one Valkey."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from sage.api.sse import FrameWriter
from sage.app import create_app
from sage.market.pipeline import MarketPipeline, ticks_channel
from sage.market.stream import TickerStreamHub
from tests.market.fakes import eventually
from tests.market.helpers import background, ticker


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), timeout=60)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_sse(url: str, out: list[tuple[str, Any]]) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=60.0)) as client,
        client.stream("GET", url) as response,
    ):
        out.append(("status", response.status_code))
        out.append(("content-type", response.headers["content-type"]))
        event = None
        async for line in response.aiter_lines():
            if line.startswith(":"):
                out.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                out.append((event or "message", orjson.loads(line.split(":", 1)[1])))
            elif not line:
                event = None


def prices(events: list[tuple[str, Any]]) -> list[str]:
    return [data["last"] for kind, data in events if kind == "ticker"]


# --- the hub -------------------------------------------------------------------------------------


class Recorder:
    """A client's end as the hub sees it: what was pushed, and a full backlog on demand."""

    def __init__(self, *, full: bool = False) -> None:
        self.frames: list[bytes | None] = []
        self.full = full
        self.reason: str | None = None

    def push(self, frame: bytes | None) -> bool:
        if self.full:
            self.reason = "overflow"
            return False
        self.frames.append(frame)
        return True

    def tickers(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(event.split(b"data: ", 1)[1])
            for frame in self.frames
            if frame
            for event in frame.split(b"\n\n")
            if event
        ]


def manual_hub(cache, metrics, *, keepalive: float = 3600.0) -> TickerStreamHub:
    """A hub whose flushes the test makes (the timed loop waits an hour)."""
    return TickerStreamHub(cache, ticks_channel(cache), metrics, flush_interval=3600.0, keepalive=keepalive)


async def publish(pipeline: MarketPipeline, hub: TickerStreamHub, *tickers: Any) -> None:
    before = hub.received
    for t in tickers:
        pipeline.submit(t)
    await pipeline.flush()
    await eventually(lambda: hub.received >= before + len(tickers))


async def test_the_hub_delivers_only_the_symbols_a_client_asked_for(cache, metrics):
    hub = manual_hub(cache, metrics)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    btc, everything = Recorder(), Recorder()
    async with hub.subscribe(btc, frozenset({"BTC/USDT"})), hub.subscribe(everything):
        assert metrics.value("SSEClients") == 2
        await eventually(hub.subscribed.is_set)
        await publish(pipeline, hub, ticker("ETH/USDT", "3400", at=start), ticker("BTC/USDT", "97000", at=start))
        hub.flush()
        assert [t["symbol"] for t in btc.tickers()] == ["BTC/USDT"]
        assert [t["symbol"] for t in everything.tickers()] == ["ETH/USDT", "BTC/USDT"]
        hub.flush()  # nothing new, and no keep-alive due yet: nothing is sent
        assert len(btc.frames) == len(everything.frames) == 1
    assert metrics.value("SSEClients") == 0
    assert not hub.subscribed.is_set(), "the last client leaving closes the Valkey subscription"


async def test_updates_are_coalesced_to_the_latest_of_each_symbol_per_flush(cache, metrics):
    hub = manual_hub(cache, metrics)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    client = Recorder()
    async with hub.subscribe(client):
        await eventually(hub.subscribed.is_set)
        for n in range(5):  # five messages, each with BTC; ETH once, in the middle
            at = start + timedelta(seconds=n)
            await publish(pipeline, hub, ticker("BTC/USDT", str(90_000 + n), at=at))
            if n == 2:
                await publish(pipeline, hub, ticker("ETH/USDT", "3400", at=at))
        hub.flush()
        assert [(t["symbol"], t["last"]) for t in client.tickers()] == [("ETH/USDT", "3400"), ("BTC/USDT", "90004")]
        await publish(pipeline, hub, ticker("BTC/USDT", "90005", at=start + timedelta(seconds=9)))
        hub.flush()
    assert [t["last"] for t in client.tickers()][-1] == "90005", "every later update still arrives"
    assert (hub.received, hub.sent, hub.flushes) == (7, 3, 2)


async def test_each_flush_is_encoded_once_for_every_client_watching_the_same_symbols(cache, metrics):
    hub = manual_hub(cache, metrics)
    pipeline = MarketPipeline(cache, metrics)
    clients = [Recorder() for _ in range(3)]
    btc = [Recorder() for _ in range(2)]
    async with AsyncExitStack() as stack:
        for c in clients:
            await stack.enter_async_context(hub.subscribe(c))
        for c in btc:
            await stack.enter_async_context(hub.subscribe(c, frozenset({"BTC/USDT"})))
        assert len(hub.groups) == 2
        await eventually(hub.subscribed.is_set)
        await publish(pipeline, hub, ticker("BTC/USDT", "1"), ticker("SOL/USDT", "2"))
        hub.flush()
    first = clients[0].frames[0]
    assert first is not None and all(c.frames == [first] and c.frames[0] is first for c in clients)
    assert btc[0].frames[0] is btc[1].frames[0] and btc[0].frames[0] != first
    assert first.count(b"event: ticker\n") == 2


async def test_a_quiet_group_gets_keepalives(cache, metrics):
    hub = manual_hub(cache, metrics, keepalive=0.0)
    client = Recorder()
    async with hub.subscribe(client):
        hub.flush()
        hub.flush()
    assert client.frames == [None, None]


async def test_a_client_whose_backlog_is_full_is_dropped_and_counted(cache, metrics):
    hub = manual_hub(cache, metrics)
    pipeline = MarketPipeline(cache, metrics)
    slow, keeping_up = Recorder(full=True), Recorder()
    async with hub.subscribe(slow), hub.subscribe(keeping_up):
        await eventually(hub.subscribed.is_set)
        await publish(pipeline, hub, ticker("BTC/USDT", "1"))
        hub.flush()
        assert slow not in hub.groups[None].sinks
        await publish(pipeline, hub, ticker("BTC/USDT", "2", at=datetime.now(UTC) + timedelta(seconds=1)))
        hub.flush()
    assert [t["last"] for t in keeping_up.tickers()] == ["1", "2"]
    assert hub.dropped_clients == 1
    assert metrics.value("SSESlowClientsDropped") == 1


async def test_every_stream_end_is_counted_by_its_cause(cache, metrics):
    hub = manual_hub(cache, metrics)
    pipeline = MarketPipeline(cache, metrics)
    slow, leaving = Recorder(full=True), Recorder()
    async with hub.subscribe(slow), hub.subscribe(leaving):
        await eventually(hub.subscribed.is_set)
        await publish(pipeline, hub, ticker("BTC/USDT", "1"))
        hub.flush()
        leaving.reason = "gone"
    assert metrics.value("MarketStreamsEnded", reason="overflow") == 1
    assert metrics.value("MarketStreamsEnded", reason="gone") == 1


async def test_unreadable_messages_are_skipped_and_the_rest_delivered(cache, metrics):
    hub = manual_hub(cache, metrics)
    client = Recorder()
    async with hub.subscribe(client):
        hub.dispatch(b"not json")
        hub.dispatch(orjson.dumps({"tickers": [1, {"symbol": "BTC/USDT"}, {"exchange": "binance", "symbol": "X/Y"}]}))
        hub.flush()
    assert client.tickers() == [{"exchange": "binance", "symbol": "X/Y"}]


async def test_the_timed_flush_sends_without_being_asked(cache, metrics):
    hub = TickerStreamHub(cache, ticks_channel(cache), metrics, flush_interval=0.01)
    pipeline = MarketPipeline(cache, metrics)
    client = Recorder()
    async with hub.subscribe(client):
        await eventually(hub.subscribed.is_set)
        await publish(pipeline, hub, ticker("BTC/USDT", "42"))
        await eventually(lambda: client.tickers())
    assert client.tickers()[0]["last"] == "42"


# --- SSE over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def stream_settings(make_settings, database_url, valkey_url):
    return make_settings(
        database_url=database_url,
        valkey_url=valkey_url,
        sse_keepalive_seconds=0.2,
        market_stream_queue_size=8,
        market_stream_flush_seconds=0.05,
    )


async def test_sse_delivers_updates_to_clients_of_two_api_instances(stream_settings, cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    first_events: list[tuple[str, Any]] = []
    second_events: list[tuple[str, Any]] = []
    async with serving(create_app(stream_settings)) as one, serving(create_app(stream_settings)) as two:
        path = "/api/v1/market/stream?symbols=BTC"
        async with background(read_sse(one + path, first_events)), background(read_sse(two + path, second_events)):
            sent = 0

            async def both_streams_have_updates() -> bool:
                nonlocal sent
                sent += 1
                pipeline.submit(ticker("ETH/USDT", str(sent), at=start + timedelta(seconds=sent)))
                pipeline.submit(ticker("BTC/USDT", str(90_000 + sent), at=start + timedelta(seconds=sent)))
                await pipeline.flush()
                return bool(prices(first_events)) and bool(prices(second_events))

            await eventually(both_streams_have_updates, timeout=30, interval=0.1)
            await eventually(lambda: ("comment", "keepalive") in first_events)
    for events in (first_events, second_events):
        assert events[0] == ("status", 200)
        assert events[1][1].startswith("text/event-stream")
        assert all(data["symbol"] == "BTC/USDT" for kind, data in events if kind == "ticker")
        assert prices(events) == sorted(prices(events)), "in order"


async def test_sse_starts_with_the_current_tickers(stream_settings, cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    pipeline.submit(ticker("SOL/USDT", "190.5", at=datetime.now(UTC)))
    await pipeline.flush()
    events: list[tuple[str, Any]] = []
    async with (
        serving(create_app(stream_settings)) as url,
        background(read_sse(url + "/api/v1/market/stream?symbols=SOL", events)),
    ):
        await eventually(lambda: prices(events) == ["190.5"])


async def test_a_stream_gets_its_request_id_cors_and_request_metrics_once(make_settings, database_url, valkey_url):
    origin = "http://app.example"
    app = create_app(make_settings(database_url=database_url, valkey_url=valkey_url, cors_origins=[origin]))
    metrics = app.state.metrics
    headers = {"X-Request-ID": "stream-1", "Origin": origin}
    async with serving(app) as url, httpx.AsyncClient() as client:
        async with client.stream("GET", url + "/api/v1/market/stream", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["x-request-id"] == "stream-1"
            assert response.headers["access-control-allow-origin"] == origin
            await anext(response.aiter_bytes())
        route = "/api/v1/market/stream"
        await eventually(lambda: metrics.value("Requests", route=route) == 1)
    assert len(metrics.samples("StreamDuration", route=route, method="GET")) == 1
    assert metrics.value("MarketStreamsEnded", reason="gone") == 1


async def test_sse_with_something_not_a_symbol_is_a_422_naming_it(stream_settings):
    async with serving(create_app(stream_settings)) as url, httpx.AsyncClient() as client:
        response = await client.get(url + "/api/v1/market/stream", params={"symbols": "BTC,@@"})
    assert response.status_code == 422 and "@@" in response.json()["error"]["message"]


async def test_a_client_that_stops_reading_is_dropped_instead_of_buffered(stream_settings, cache, metrics):
    app = create_app(stream_settings)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    async with serving(app) as url:
        hub = app.state.runtime.services.market.hub
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (host, int(port)))
        request = f"GET /api/v1/market/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        try:
            await eventually(lambda: hub.clients)
            ((writer,),) = [list(g.sinks) for g in hub.groups.values()]
            assert isinstance(writer, FrameWriter)
            sent = 0

            async def dropped() -> bool:
                nonlocal sent
                sent += 1
                # 200 symbols, so each flush's frame is large (one update per symbol survives
                # coalescing); we never read a byte: the server's socket buffers fill up
                for k in range(200):
                    pipeline.submit(ticker(f"S{k}/USDT", str(sent), at=start + timedelta(milliseconds=sent)))
                await pipeline.flush()
                return hub.dropped_clients == 1

            await eventually(dropped, timeout=60, interval=0.005)
            assert writer.reason == "overflow" and not writer.backlog
            assert writer.high_water == 8, "the backlog never grows past SAGE_MARKET_STREAM_QUEUE_SIZE"
        finally:
            sock.close()
