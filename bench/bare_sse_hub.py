"""The baseline for bench_market_stream: the least a process can do to fan the market
channel out as Server-Sent Events, and still send what Sage sends.

One Valkey subscription; the latest ticker per (exchange, symbol) coalesced per flush (the
same interval as Sage's); each flush's frame encoded once, with its HTTP/1.1 chunk header,
and written with `transport.write` to every connection. No framework, no ASGI, no per-client
anything: a raw asyncio protocol on uvloop (as uvicorn runs Sage). A connection whose
unsent bytes pass a bound is closed, as Sage disconnects a slow client.

    python -m bench.bare_sse_hub PORT VALKEY_URL CHANNEL FLUSH_SECONDS
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import orjson
import uvloop
import valkey.asyncio as valkey

HEADERS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache, no-transform\r\nx-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n"
)
OPENING = b": keepalive\nretry: 3000\n\n"
HEALTH = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
MAX_UNSENT = 4 * 1024 * 1024


def chunk(body: bytes) -> bytes:
    return b"%x\r\n" % len(body) + body + b"\r\n"


class Hub:
    def __init__(self) -> None:
        self.clients: set[asyncio.Transport] = set()
        self.pending: dict[tuple[str, str], bytes] = {}
        self.dropped = 0

    def dispatch(self, payload: bytes) -> None:
        for wire in orjson.loads(payload)["tickers"]:
            key = (wire["exchange"], wire["symbol"])
            self.pending.pop(key, None)
            self.pending[key] = b"event: ticker\ndata: " + orjson.dumps(wire) + b"\n\n"

    def flush(self) -> None:
        if not self.pending:
            return
        data = chunk(b"".join(self.pending.values()))
        self.pending = {}
        for transport in list(self.clients):
            if transport.get_write_buffer_size() > MAX_UNSENT:
                self.dropped += 1
                self.clients.discard(transport)
                transport.close()
            else:
                transport.write(data)


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport in self.hub.clients:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        if self.buffer.startswith(b"GET /health"):
            self.transport.write(HEALTH)
            self.transport.close()
            return
        self.transport.write(HEADERS + chunk(OPENING))
        self.hub.clients.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.clients.discard(self.transport)


async def main(port: int, valkey_url: str, channel: str, flush_seconds: float) -> None:
    hub = Hub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(hub), "127.0.0.1", port, backlog=2048)
    client = valkey.Valkey.from_url(valkey_url, socket_timeout=None)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                hub.dispatch(message["data"])

    async def flush_forever() -> None:
        due = loop.time()
        while True:
            due += flush_seconds
            await asyncio.sleep(max(0.0, due - loop.time()))
            hub.flush()

    async with server:
        await asyncio.gather(listen(), flush_forever())


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])))
