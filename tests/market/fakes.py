"""Local stand-ins for Binance, Gate.io and Alternative.me on 127.0.0.1.

They speak the documented wire protocols (message shapes from the exchanges' docs):
subscription requests, acks and errors, application pings, server pings, shutdown and
upgrade notices, server-initiated closes. Tests drive them: push a ticker, drop every
connection, refuse the next N connections, send raw (malformed) frames, flood.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def eventually(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.01) -> Any:
    """Wait until `condition()` is truthy (or an awaitable of it); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        await asyncio.sleep(interval)


@dataclass
class Conn:
    ws: ServerConnection
    subscriptions: list[str] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=64))  # monotonic, per message


class FakeExchange:
    """Shared server plumbing; subclasses implement `handle(conn, message)`."""

    def __init__(self, *, ping_interval: float | None = None) -> None:
        self.ping_interval = ping_interval
        self.server: Server | None = None
        self.conns: list[Conn] = []
        self.connects = 0
        self.refuse_next = 0  # accept the handshake, then close at once (the "accept and drop" storm)
        self.silent = False  # acknowledge nothing, answer nothing
        self.paths: list[str] = []
        # Binance: "WebSocket connections have a limit of 5 incoming messages per second";
        # a connection that goes beyond is disconnected. None: no limit (Gate.io).
        self.max_messages_per_second: int | None = None
        self.rate_closes = 0

    async def start(self) -> FakeExchange:
        self.server = await serve(self._handler, "127.0.0.1", 0, ping_interval=self.ping_interval)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(next(iter(self.server.sockets)).getsockname()[1])

    @property
    def live(self) -> list[Conn]:
        return [c for c in self.conns if c.ws.state.name == "OPEN"]

    async def _handler(self, ws: ServerConnection) -> None:
        self.connects += 1
        self.paths.append(ws.request.path if ws.request else "")
        if self.refuse_next > 0:
            self.refuse_next -= 1
            await ws.close(1013, "try again later")
            return
        conn = Conn(ws)
        self.conns.append(conn)
        try:
            async for raw in ws:
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    message = None
                conn.received.append(message)
                if self._over_rate(conn):
                    self.rate_closes += 1
                    await ws.close(1008, "Too many messages")
                    return
                if not self.silent:
                    await self.handle(conn, message)
        except ConnectionClosed:
            pass

    def _over_rate(self, conn: Conn) -> bool:
        if self.max_messages_per_second is None:
            return False
        now = time.monotonic()
        conn.arrivals.append(now)
        return sum(1 for t in conn.arrivals if now - t < 1.0) > self.max_messages_per_second

    async def handle(self, conn: Conn, message: Any) -> None:
        raise NotImplementedError

    async def broadcast(self, frame: str | bytes, *, only: Callable[[Conn], bool] | None = None) -> int:
        sent = 0
        for conn in self.live:
            if only is not None and not only(conn):
                continue
            try:
                await conn.ws.send(frame)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    async def drop_all(self) -> None:
        """An abrupt disconnect: no close handshake, like a network failure."""
        for conn in self.live:
            conn.ws.transport.abort()

    async def close_all(self, code: int = 1001, reason: str = "going away") -> None:
        for conn in self.live:
            await conn.ws.close(code, reason)

    async def ping_clients(self, timeout: float = 5.0) -> list[float]:
        """Server pings (Binance pings every 20 s); returns each client's round trip."""
        latencies = []
        for conn in self.live:
            waiter = await conn.ws.ping()
            latencies.append(await asyncio.wait_for(waiter, timeout))
        return latencies


# --- Binance -----------------------------------------------------------------------------------


def binance_ticker(symbol: str, price: str, event_ms: int, **overrides: Any) -> dict[str, Any]:
    """A `<symbol>@ticker` payload exactly as Binance documents it."""
    payload: dict[str, Any] = {
        "e": "24hrTicker",
        "E": event_ms,
        "s": symbol,
        "p": "120.50000000",
        "P": "0.125",
        "w": "96800.12000000",
        "x": "96900.00000000",
        "c": price,
        "Q": "0.00150000",
        "b": price,
        "B": "1.25000000",
        "a": price,
        "A": "0.75000000",
        "o": "96900.00000000",
        "h": "98000.00000000",
        "l": "95000.00000000",
        "v": "18500.12345000",
        "q": "1790000000.12000000",
        "O": event_ms - 86_400_000,
        "C": event_ms,
        "F": 3_100_000_000,
        "L": 3_106_000_000,
        "n": 6_000_001,
    }
    payload.update(overrides)
    return payload


class FakeBinance(FakeExchange):
    def __init__(self, *, ping_interval: float | None = None, answer_list: bool = True) -> None:
        super().__init__(ping_interval=ping_interval)
        self.max_messages_per_second = 5
        self.reject_streams: set[str] = set()
        self.answer_list = answer_list
        self.list_requests = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def handle(self, conn: Conn, message: Any) -> None:
        if not isinstance(message, dict):
            await conn.ws.send(orjson.dumps({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}))
            return
        method = message.get("method")
        request_id = message.get("id")
        if method == "SUBSCRIBE":
            params = list(message.get("params", []))
            bad = [p for p in params if p in self.reject_streams]
            if bad:
                await conn.ws.send(
                    orjson.dumps({"code": 2, "msg": f"Invalid request: invalid stream {bad[0]}", "id": request_id})
                )
                params = [p for p in params if p not in bad]
            else:
                await conn.ws.send(orjson.dumps({"result": None, "id": request_id}))
            conn.subscriptions.extend(p for p in params if p not in conn.subscriptions)
        elif method == "UNSUBSCRIBE":
            params = list(message.get("params", []))
            conn.subscriptions[:] = [s for s in conn.subscriptions if s not in params]
            await conn.ws.send(orjson.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            self.list_requests += 1
            if self.answer_list:
                await conn.ws.send(orjson.dumps({"result": conn.subscriptions, "id": request_id}))
        else:
            await conn.ws.send(
                orjson.dumps(
                    {
                        "code": 2,
                        "msg": f"Invalid request: unknown variant {method}, expected one of SUBSCRIBE, "
                        "UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY",
                        "id": request_id,
                    }
                )
            )

    async def push(self, symbol: str, price: str, event_ms: int, **overrides: Any) -> int:
        """Send a combined-stream ticker to every connection subscribed to it."""
        stream = symbol.lower() + "@ticker"
        frame = orjson.dumps({"stream": stream, "data": binance_ticker(symbol, price, event_ms, **overrides)})
        return await self.broadcast(frame, only=lambda c: stream in c.subscriptions)

    async def server_shutdown(self, wrapped: bool = False) -> int:
        event = {"e": "serverShutdown", "E": int(time.time() * 1000)}
        return await self.broadcast(orjson.dumps({"event": event} if wrapped else event))

    def subscribed_streams(self) -> list[str]:
        return [s for c in self.live for s in c.subscriptions]


# --- Gate.io -------------------------------------------------------------------------------------


def gate_ticker(pair: str, last: str, time_ms: int, **overrides: Any) -> dict[str, Any]:
    """A `spot.tickers` update exactly as Gate.io documents it."""
    result: dict[str, Any] = {
        "currency_pair": pair,
        "last": last,
        "lowest_ask": last,
        "highest_bid": last,
        "change_percentage": "-1.8254",
        "base_volume": "9110.473081735",
        "quote_volume": "145082083.2535",
        "high_24h": "98280.9",
        "low_24h": "95468.5",
    }
    result.update(overrides)
    return {
        "time": time_ms // 1000,
        "time_ms": time_ms,
        "channel": "spot.tickers",
        "event": "update",
        "result": result,
    }


class FakeGateio(FakeExchange):
    def __init__(self, *, ping_interval: float | None = None) -> None:
        super().__init__(ping_interval=ping_interval)
        self.known_pairs: set[str] | None = None  # None: every pair exists
        self.app_pings = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v4/"

    def _envelope(self, channel: str, event: str, **extra: Any) -> bytes:
        now = time.time()
        return orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": channel, "event": event, **extra})

    async def handle(self, conn: Conn, message: Any) -> None:
        if not isinstance(message, dict):
            await conn.ws.send(
                self._envelope("", "", error={"code": 1, "message": "Invalid request body format"}, result=None)
            )
            return
        channel = message.get("channel")
        event = message.get("event")
        if channel == "spot.ping":
            self.app_pings += 1
            await conn.ws.send(self._envelope("spot.pong", "", error=None, result=None))
            return
        if channel == "spot.tickers" and event == "subscribe":
            pairs = list(message.get("payload") or [])
            unknown = [p for p in pairs if self.known_pairs is not None and p not in self.known_pairs]
            if unknown:
                await conn.ws.send(
                    self._envelope(
                        channel,
                        event,
                        id=message.get("id"),
                        error={"code": 2, "message": f"unknown currency pair: {unknown[0]}"},
                        result=None,
                    )
                )
            else:
                await conn.ws.send(
                    self._envelope(channel, event, id=message.get("id"), error=None, result={"status": "success"})
                )
            conn.subscriptions.extend(p for p in pairs if p not in unknown and p not in conn.subscriptions)
            return
        if channel == "spot.tickers" and event == "unsubscribe":
            pairs = list(message.get("payload") or [])
            conn.subscriptions[:] = [p for p in conn.subscriptions if p not in pairs]
            await conn.ws.send(
                self._envelope(channel, event, id=message.get("id"), error=None, result={"status": "success"})
            )
            return
        await conn.ws.send(
            self._envelope(channel or "", event or "", error={"code": 2, "message": "Invalid argument provided"})
        )

    async def push(self, pair: str, last: str, time_ms: int, **overrides: Any) -> int:
        frame = orjson.dumps(gate_ticker(pair, last, time_ms, **overrides))
        return await self.broadcast(frame, only=lambda c: pair in c.subscriptions)

    async def upgrade_notice(self) -> int:
        return await self.broadcast(orjson.dumps({"type": "upgrade"}))

    def subscribed_pairs(self) -> list[str]:
        return [p for c in self.live for p in c.subscriptions]


# --- Alternative.me Fear & Greed ----------------------------------------------------------------


def fng_body(values: list[tuple[int, str, int]]) -> bytes:
    """values: (value, classification, unix timestamp), newest first; every value a string."""
    data = [
        {
            "value": str(v),
            "value_classification": c,
            "timestamp": str(ts),
            **({"time_until_update": "3600"} if i == 0 else {}),
        }
        for i, (v, c, ts) in enumerate(values)
    ]
    return orjson.dumps({"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}})


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    hang: bool = False  # never answer (a timeout)


class FakeFearGreed:
    """A tiny HTTP/1.1 server answering from a script (then repeating the last entry)."""

    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> FakeFearGreed:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/fng/"

    def answer(self, *entries: Scripted) -> None:
        self.script.extend(entries)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                self.requests.append(request_line.decode().split(" ")[1])
                entry = self.script.pop(0) if len(self.script) > 1 else (self.script[0] if self.script else Scripted())
                if entry.hang:
                    await asyncio.sleep(3600)
                reason = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
                head = (
                    f"HTTP/1.1 {entry.status} {reason.get(entry.status, 'Status')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(entry.body)}\r\n\r\n"
                )
                writer.write(head.encode() + entry.body)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
