"""Live ticker fan-out inside one API process.

One Valkey subscription per process, however many clients (`sage.store.pubsub.ChannelListener`):
opened when the first client arrives, closed when the last leaves. Updates are coalesced:
every `flush_interval` the hub takes the latest ticker of each (exchange, symbol) published
since the last flush, so a symbol that ticked three times in that interval is sent once, at
its newest price; no symbol's latest state is ever skipped. Clients are grouped by what
they watch (everything, or one set of symbols); each group's frame is encoded once per
flush, and the same bytes are pushed to every client of the group from this one loop (no
per-client JSON, no per-client task woken per update).

A client's pushes that its socket cannot take yet wait in a bounded backlog (the frames of
SAGE_MARKET_STREAM_QUEUE_SIZE flushes); past that the client is disconnected and counted
(`SSESlowClientsDropped`) instead of making the process buffer without limit. Every stream's
end is counted by cause (`MarketStreamsEnded`, reason gone / overflow / shutdown / done). Several API
processes behind the load balancer each run their own hub on the same Valkey channel, so
every client sees every update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Protocol

import orjson

from sage.observability.metrics import Metrics
from sage.store.cache import Cache
from sage.store.pubsub import ChannelListener

log = logging.getLogger(__name__)

Symbols = frozenset[str] | None  # None: every symbol


def ticker_frame(wire: bytes) -> bytes:
    """One ticker (its wire JSON) as a Server-Sent Event."""
    return b"event: ticker\ndata: " + wire + b"\n\n"


class FrameSink(Protocol):
    """Where a client's frames go (the API's `FrameWriter`)."""

    @property
    def reason(self) -> str | None:
        """Why the stream ended (None while it runs): "gone" (the client left), "overflow"
        (dropped as a slow client), "shutdown", "done"."""
        ...

    def push(self, frame: bytes | None) -> bool:
        """Write `frame` (None: a keep-alive comment) or queue it; False when the client's
        backlog was full, which ends its stream."""
        ...


class _Group:
    """The clients watching the same symbols: one frame per flush serves them all."""

    __slots__ = ("last_sent", "sinks", "symbols")

    def __init__(self, symbols: Symbols, now: float) -> None:
        self.symbols = symbols
        self.sinks: dict[FrameSink, None] = {}  # insertion-ordered set
        self.last_sent = now


class TickerStreamHub:
    def __init__(
        self,
        cache: Cache,
        channel: str,
        metrics: Metrics,
        *,
        flush_interval: float = 0.25,
        keepalive: float = 15.0,
    ) -> None:
        self.metrics = metrics
        self.flush_interval = flush_interval
        self.keepalive = keepalive
        self.listener = ChannelListener(cache, channel, self.dispatch, name="market-stream-hub")
        self.subscribed = self.listener.subscribed  # set while the Valkey subscription is open
        self.groups: dict[Symbols, _Group] = {}
        self.clients = 0
        # (exchange, symbol) -> (symbol, frame): the latest update of each since the last flush
        self._pending: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Totals for tests, /metrics and the benchmark.
        self.received = 0  # ticker updates read from the channel
        self.sent = 0  # ticker updates put in frames (after coalescing), once per group
        self.flushes = 0
        self.dropped_clients = 0

    @asynccontextmanager
    async def subscribe(self, sink: FrameSink, symbols: Symbols = None) -> AsyncIterator[None]:
        """Push this process's live updates for `symbols` into `sink` while the block runs."""
        loop = asyncio.get_running_loop()
        group = self.groups.get(symbols)
        if group is None:
            group = self.groups[symbols] = _Group(symbols, loop.time())
        group.sinks[sink] = None
        self.clients += 1
        self.metrics.gauge("SSEClients", self.clients)
        self.listener.start()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever(), name="market-stream-flush")
        try:
            yield
        finally:
            group.sinks.pop(sink, None)
            if not group.sinks and self.groups.get(symbols) is group:
                del self.groups[symbols]
            self.clients -= 1
            self.metrics.gauge("SSEClients", self.clients)
            # every stream's end, by cause: the bench and operators see who closed what
            self.metrics.incr("MarketStreamsEnded", reason=sink.reason or "done")
            if not self.clients:
                await self.close()

    async def close(self) -> None:
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await self.listener.stop()
        self._pending.clear()

    def dispatch(self, payload: bytes) -> None:
        """One published message: its tickers replace the pending ones of their (exchange, symbol)."""
        try:
            tickers = orjson.loads(payload)["tickers"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            tickers = None
        if type(tickers) is not list:
            log.warning("unreadable message on the market channel")
            return
        pending = self._pending
        for wire in tickers:
            if type(wire) is not dict:
                log.warning("unreadable ticker on the market channel")
                continue
            exchange, symbol = wire.get("exchange"), wire.get("symbol")
            if type(exchange) is not str or type(symbol) is not str:
                log.warning("a ticker without exchange or symbol on the market channel")
                continue
            # Encoded here, once per update, whoever will receive it. Popping first moves a
            # symbol that ticks again to the end, so a frame lists updates in arrival order.
            pending.pop((exchange, symbol), None)
            pending[(exchange, symbol)] = (symbol, ticker_frame(orjson.dumps(wire)))
        self.received += len(tickers)

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.flush_interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                self.flush()
            except Exception:
                log.exception("market stream flush failed")
            due = max(due, loop.time() - self.flush_interval)  # after a stall, no burst of flushes

    def flush(self) -> None:
        """Send each group what arrived since the last flush (or a keep-alive when it is due)."""
        pending, self._pending = self._pending, {}
        now = asyncio.get_running_loop().time()
        self.flushes += 1
        for group in list(self.groups.values()):
            frame: bytes | None
            if group.symbols is None:
                frame = b"".join([f for _, f in pending.values()])
                count = len(pending)
            else:
                wanted = group.symbols
                parts = [f for s, f in pending.values() if s in wanted]
                frame, count = b"".join(parts), len(parts)
            if frame:
                self.sent += count
            elif now - group.last_sent >= self.keepalive:
                frame = None
            else:
                continue
            group.last_sent = now
            overflowed = [sink for sink in group.sinks if not sink.push(frame)]
            for sink in overflowed:
                group.sinks.pop(sink, None)
                self.dropped_clients += 1
                self.metrics.incr("SSESlowClientsDropped")
            if overflowed:
                log.warning("dropped slow market stream clients", extra={"count": len(overflowed)})
