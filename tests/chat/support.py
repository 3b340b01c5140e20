"""Test helpers for chat: a fake market, an SSE reader, a real uvicorn server in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from sage.app import create_app
from sage.observability.metrics import Metrics
from sage.runtime import Runtime
from sage.settings import Settings
from tests.support.servers import free_port

NOW = datetime(2026, 11, 22, 9, 59, 58, tzinfo=UTC)


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    change_pct_24h: Decimal | None
    as_of: datetime = NOW
    stale: bool = False
    diverged: bool = False


@dataclass(frozen=True)
class Reading:
    value: int
    classification: str
    as_of: datetime = NOW


@dataclass
class FakeMarket:
    """Satisfies sage.portfolio.prices.MarketReader with fixed figures."""

    quotes: dict[str, Quote] = field(
        default_factory=lambda: {
            "BTC/USDT": Quote("BTC/USDT", Decimal("97250.50"), Decimal("2.31")),
            "ETH/USDT": Quote("ETH/USDT", Decimal("3456.78"), Decimal("-1.25")),
            "SOL/USDT": Quote("SOL/USDT", Decimal("187.65"), Decimal("5.20")),
        }
    )
    reading: Reading | None = field(default_factory=lambda: Reading(72, "Greed"))
    configured: tuple[str, ...] = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    fail: bool = False
    calls: list[list[str] | None] = field(default_factory=list)

    async def consolidated(self, symbols: Sequence[str] | None = None) -> list[Quote]:
        self.calls.append(None if symbols is None else list(symbols))
        if self.fail:
            raise RuntimeError("market down")
        wanted = list(symbols) if symbols is not None else list(self.configured)
        return [self.quotes[s] for s in wanted if s in self.quotes]

    async def fear_greed(self) -> Reading | None:
        if self.fail:
            raise RuntimeError("market down")
        return self.reading


@dataclass
class SSEEvent:
    event: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class SSEStream:
    """What a client saw: events and comments, in order."""

    items: list[SSEEvent | str] = field(default_factory=list)

    @property
    def events(self) -> list[SSEEvent]:
        return [i for i in self.items if isinstance(i, SSEEvent)]

    def named(self, name: str) -> list[SSEEvent]:
        return [e for e in self.events if e.event == name]

    @property
    def text(self) -> str:
        return "".join(e.data["text"] for e in self.named("delta"))

    @property
    def last(self) -> SSEEvent:
        return self.events[-1]


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEEvent | str]:
    """Parse text/event-stream: yields events, and comments as strings (": keepalive")."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield SSEEvent(fields.get("event", "message"), orjson.loads(fields["data"]), fields.get("id"))
            fields = {}
            continue
        if line.startswith(":"):
            yield line
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


async def read_all(response: httpx.Response) -> SSEStream:
    stream = SSEStream()
    async for item in iter_sse(response):
        stream.items.append(item)
        if isinstance(item, SSEEvent) and item.event in ("done", "error"):
            break
    return stream


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test runner owns the signals


@dataclass
class LiveServer:
    app: FastAPI
    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime  # type: ignore[no-any-return]

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30, **kwargs)

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await self.task


async def start_live_server(settings: Settings, *, market: Any = None, metrics: Metrics | None = None) -> LiveServer:
    """The real app under uvicorn on 127.0.0.1, in this event loop (so tests can reach its runtime)."""
    app = create_app(settings, metrics=metrics or Metrics(), market_reader=market)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    server = _InProcessServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(90):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    return LiveServer(app, port, server, task)


async def register(client: httpx.AsyncClient) -> dict[str, str]:
    from tests.support.api import register_and_login

    tokens = await register_and_login(client)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def new_chat(client: httpx.AsyncClient, headers: dict[str, str], title: str | None = None) -> str:
    response = await client.post("/api/v1/chats", json={"title": title} if title else {}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def ask(client: httpx.AsyncClient, headers: dict[str, str], chat_id: str, text: str) -> SSEStream:
    async with client.stream("POST", f"/api/v1/chats/{chat_id}/messages", json={"content": text}, headers=headers) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        return await read_all(r)


async def eventually(check: Any, *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll an async check until it returns a truthy value (a guard, not a timing assertion)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(interval)
