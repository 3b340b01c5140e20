"""Live fan-out: the per-process hub, and SSE through real HTTP servers sharing one Valkey."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from sage.app import create_app
from sage.market.pipeline import PUBLISH_CHUNK, MarketPipeline, ticks_channel
from sage.market.stream import SlowConsumer, TickerStreamHub
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


async def test_the_hub_delivers_only_the_symbols_a_client_asked_for(cache, metrics):
    hub = TickerStreamHub(cache, ticks_channel(cache), metrics)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    async with hub.subscribe(frozenset({"BTC/USDT"})) as btc, hub.subscribe(None) as everything:
        assert metrics.value("SSEClients") == 2
        await eventually(hub.subscribed.is_set)
        pipeline.submit(ticker("ETH/USDT", "3400", at=start))
        pipeline.submit(ticker("BTC/USDT", "97000", at=start))
        await pipeline.flush()
        first = orjson.loads(await btc.next(5))
        assert first["symbol"] == "BTC/USDT"
        seen = [orjson.loads(await everything.next(5))["symbol"] for _ in range(2)]
        assert seen == ["ETH/USDT", "BTC/USDT"]
        assert await btc.next(0.05) is None  # nothing else for BTC: a keep-alive is due
    assert metrics.value("SSEClients") == 0
    assert not hub.subscribed.is_set(), "the last client leaving closes the Valkey subscription"


async def test_a_client_that_falls_behind_is_dropped_and_its_backlog_freed(cache, metrics):
    hub = TickerStreamHub(cache, ticks_channel(cache), metrics, queue_size=5)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    async with hub.subscribe(None) as slow, hub.subscribe(None) as keeping_up:
        await eventually(hub.subscribed.is_set)
        for n in range(20):
            pipeline.submit(ticker(last=str(n + 1), at=start + timedelta(seconds=n)))
            await pipeline.flush()
            await eventually(lambda n=n: keeping_up.delivered == n + 1)
            await keeping_up.next(1)
        assert slow.dropped and slow.queue.qsize() == 0
        assert slow.high_water == 5
        with pytest.raises(SlowConsumer):
            await slow.next(1)
        assert not keeping_up.dropped
    assert hub.dropped_clients == 1
    assert metrics.value("SSESlowClientsDropped") == 1


async def test_a_burst_larger_than_the_limit_does_not_drop_a_client_that_keeps_up(cache, metrics):
    hub = TickerStreamHub(cache, ticks_channel(cache), metrics, queue_size=5)
    pipeline = MarketPipeline(cache, metrics)
    start = datetime.now(UTC)
    async with hub.subscribe(None) as client:
        await eventually(hub.subscribed.is_set)
        for n in range(40):  # one published message carrying 40 updates
            pipeline.submit(ticker(last=str(n + 1), at=start + timedelta(seconds=n)))
        await pipeline.flush()
        received = [orjson.loads(await client.next(5))["last"] for _ in range(40)]
    assert received == [str(n + 1) for n in range(40)]
    assert not client.dropped


# --- SSE over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def stream_settings(make_settings, database_url, valkey_url):
    return make_settings(
        database_url=database_url, valkey_url=valkey_url, sse_keepalive_seconds=0.2, market_stream_queue_size=8
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
            (client,) = hub.clients
            sent = 0

            async def dropped() -> bool:
                nonlocal sent
                for _ in range(20):  # we never read a byte: the server's socket buffers fill up
                    sent += 1
                    pipeline.submit(ticker("BTC/USDT", str(sent), at=start + timedelta(milliseconds=sent)))
                await pipeline.flush()
                return hub.dropped_clients == 1

            await eventually(dropped, timeout=60, interval=0.005)
            assert client.dropped and client.queue.qsize() == 0
            assert client.high_water < 8 + PUBLISH_CHUNK
        finally:
            sock.close()
