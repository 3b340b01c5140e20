"""From normalized tickers to Valkey: guard, coalesce, publish, aggregate.

`submit()` is synchronous and cheap (it runs inside the WebSocket receive loop):
1. out-of-order guard per (exchange, symbol): an update not newer than the last one
   seen is dropped, so reconnects and replays never duplicate or move a price back;
2. the update goes into a bounded outbox (oldest dropped and counted when Valkey
   falls behind) and replaces the pending latest value of its key;
3. the candle aggregator sees it.

`run()` flushes whenever there is something to flush: one pipelined SET of the latest
ticker per key (TTL = the spec's marketPrice, 300 s) and one PUBLISH per chunk of
updates on the live channel. While a flush is in flight new updates accumulate, so
batches grow with load and latency stays near one Valkey round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import Any

import orjson

from sage.market.candles import CandleAggregator
from sage.market.models import Ticker, datetime_to_ms, ms_to_datetime, ticker_to_wire, ticker_wire
from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

PUBLISH_CHUNK = 500  # tickers per published message


def ticker_key(cache: Cache, exchange: str, symbol: str) -> str:
    return cache.key("market", "ticker", exchange, symbol)


def ticks_channel(cache: Cache) -> str:
    return cache.key("market", "ticks")


class MarketPipeline:
    def __init__(
        self,
        cache: Cache,
        metrics: Metrics,
        *,
        queue_size: int = 10_000,
        candles: CandleAggregator | None = None,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.ttl = cache.ttl.market_price
        self.channel = ticks_channel(cache)
        self.candles = candles
        self.queue_size = queue_size
        self._outbox: deque[Ticker] = deque(maxlen=queue_size)
        self._latest: dict[tuple[str, str], Ticker] = {}
        self._last_seen: dict[tuple[str, str], int] = {}  # event ms
        self._wake = asyncio.Event()
        self._woken = False  # mirrors _wake.is_set(), without a method call per update
        self._accepted: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        # Totals for tests, /metrics and the benchmark.
        self.accepted = 0
        self.rejected_out_of_order = 0
        self.dropped = 0
        self.published = 0
        self._high_water = 0  # the outbox only grows between flushes: measured when one starts
        self.flushes = 0

    # -- hot path ------------------------------------------------------------------------------
    def submit(self, ticker: Ticker) -> bool:
        key = ticker.key
        event_ms = ticker.event_ms
        last_seen = self._last_seen
        last = last_seen.get(key)
        if last is not None and event_ms <= last:
            self.rejected_out_of_order += 1
            self._rejected[ticker.exchange] += 1
            return False
        last_seen[key] = event_ms
        self._latest[key] = ticker
        outbox = self._outbox
        if len(outbox) == self.queue_size:
            self.dropped += 1
            exchange = outbox[0].exchange
            self._dropped[exchange] += 1
            self._accepted[exchange] += 1  # accepted updates are counted per exchange when they leave the outbox
        outbox.append(ticker)
        self.accepted += 1
        candles = self.candles
        if candles is not None:
            candles.add(ticker)
        if not self._woken:
            self._woken = True
            self._wake.set()
        return True

    # -- flushing -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._outbox)

    @property
    def outbox_high_water(self) -> int:
        return max(self._high_water, len(self._outbox))

    def last_seen(self) -> dict[tuple[str, str], datetime]:
        return {key: ms_to_datetime(ms) for key, ms in self._last_seen.items()}

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            await self.flush()

    def _encode(self, outbox: list[Ticker]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Any]]:
        wires: list[dict[str, Any]] = []
        append = wires.append
        newest: dict[tuple[str, str], tuple[Ticker, dict[str, Any]]] = {}
        accepted = self._accepted
        exchange: str | None = None
        run = 0  # consecutive updates of `exchange`, counted in one go
        received: datetime | None = None
        received_ms = 0
        for ticker in outbox:
            if ticker.received_at is not received:  # tickers of one frame batch share it
                received = ticker.received_at
                received_ms = datetime_to_ms(received)
            raw = ticker._text
            if raw is None:
                wire = ticker_wire(ticker, ticker.event_ms, received_ms)
            else:  # ticker_wire, inlined: the exchange's own strings
                wire = {
                    "exchange": ticker.exchange,
                    "symbol": ticker.symbol,
                    "last": raw[0],
                    "bid": raw[1],
                    "ask": raw[2],
                    "change_pct": raw[3],
                    "high": raw[4],
                    "low": raw[5],
                    "base_volume": raw[6],
                    "quote_volume": raw[7],
                    "event_time": ticker.event_ms,
                    "received_at": received_ms,
                }
            append(wire)
            newest[ticker.key] = (ticker, wire)
            if ticker.exchange is not exchange:
                if run:
                    accepted[exchange] += run  # type: ignore[index]
                exchange = ticker.exchange
                run = 0
            run += 1
        if run:
            accepted[exchange] += run  # type: ignore[index]
        return wires, newest

    async def flush(self) -> None:
        outbox = list(self._outbox)
        self._outbox.clear()
        if len(outbox) > self._high_water:
            self._high_water = len(outbox)
        wires, newest = self._encode(outbox)  # also counts the accepted updates per exchange
        self._emit_counts()
        if not outbox and not self._latest:
            return
        latest, self._latest = self._latest, {}
        items: dict[str, bytes] = {}
        for key, ticker in latest.items():
            found = newest.get(key)
            wire = found[1] if found is not None and found[0] is ticker else ticker_to_wire(ticker)
            items[ticker_key(self.cache, *key)] = orjson.dumps(wire)
        backend = self.cache.backend
        calls: list[Awaitable[object]] = [backend.set_many(items, self.ttl)] if items else []
        chunks = [wires[i : i + PUBLISH_CHUNK] for i in range(0, len(wires), PUBLISH_CHUNK)]
        calls.extend(backend.publish(self.channel, orjson.dumps({"tickers": chunk})) for chunk in chunks)
        results = await asyncio.gather(*calls, return_exceptions=True)
        self.flushes += 1
        failed_set = bool(items) and isinstance(results[0], BaseException)
        for result in results:
            if isinstance(result, CacheUnavailable):
                self.cache.report_failure("market flush", result)
            elif isinstance(result, BaseException):
                log.error("market flush failed", exc_info=result)
        published_chunks = results[1:] if items else results
        for chunk, result in zip(chunks, published_chunks, strict=True):
            if not isinstance(result, BaseException):
                self.published += len(chunk)
            else:
                # Not published and not retried (the latest values are, through the set):
                # counted as dropped, so every accepted update is either published or dropped.
                self.dropped += len(chunk)
                for wire in chunk:
                    self._dropped[wire["exchange"]] += 1
        if failed_set:
            # Keep the values for the next flush unless something newer arrived meanwhile.
            for key, ticker in latest.items():
                self._latest.setdefault(key, ticker)
            self._woken = True
            self._wake.set()
            await asyncio.sleep(0.5)  # Valkey is down: don't spin; the cache facade logs the outage

    def _emit_counts(self) -> None:
        for name, counter in (
            ("FeedMessages", self._accepted),
            ("FeedDropped", self._dropped),
            ("FeedOutOfOrder", self._rejected),
        ):
            if counter:
                for exchange, count in counter.items():
                    self.metrics.incr(name, count, exchange=exchange)
                counter.clear()

    def stale_counts(self, now: datetime, stale_after: float, expected: Iterable[tuple[str, str]]) -> Counter[str]:
        """Per exchange: expected symbols with no update for `stale_after` seconds."""
        counts: Counter[str] = Counter()
        now_ms = datetime_to_ms(now)
        for exchange, symbol in expected:
            seen = self._last_seen.get((exchange, symbol))
            counts[exchange] += 0
            if seen is None or now_ms - seen > stale_after * 1000:
                counts[exchange] += 1
        return counts
