"""From normalized tickers to Valkey: guard, coalesce, publish, aggregate.

`submit()` is synchronous and cheap (it runs inside the WebSocket receive loop), one dict
look-up per update:
1. out-of-order guard per (exchange, symbol): an update not newer than the last one
   seen is dropped, so reconnects and replays never duplicate or move a price back;
2. the update becomes the pending latest value of its key, replacing (coalescing) one that
   arrived since the last flush; at most `queue_size` keys wait (beyond it the key waiting
   longest is dropped and counted, which takes more keys than any configuration subscribes);
3. the candle aggregator sees every accepted update.

`run()` flushes whenever there is something to flush: one pipelined SET of the latest
ticker per key (TTL = the spec's marketPrice, 300 s) and one PUBLISH per chunk of those
tickers on the live channel. While a flush is in flight new updates accumulate, so batches
grow with load and latency stays near one Valkey round trip. What is published is the
latest ticker per key per flush: both consumers keep only that (the SSE hub coalesces per
`SAGE_MARKET_STREAM_FLUSH_SECONDS`, the alert checker reads the symbols), so an update
superseded before its flush is counted (`coalesced`, `FeedCoalesced`) and not encoded.
Every accepted update is published, coalesced, dropped or still pending.
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


class _KeyState:
    """One (exchange, symbol): the newest event time accepted, and the update waiting for
    the next flush with the number of accepted updates it stands for."""

    __slots__ = ("count", "exchange", "last_ms", "pending")

    def __init__(self, exchange: str, last_ms: int) -> None:
        self.exchange = exchange
        self.last_ms = last_ms
        self.pending: Ticker | None = None
        self.count = 0


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
        self._keys: dict[tuple[str, str], _KeyState] = {}
        self._waiting: deque[_KeyState] = deque()  # keys with a pending update, first come first
        self._wake = asyncio.Event()
        self._woken = False  # mirrors _wake.is_set(), without a method call per update
        self._retry: dict[tuple[str, str], Ticker] = {}  # values whose SET failed, stored by the next flush
        self._accepted: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._coalesced: Counter[str] = Counter()
        # Totals for tests, /metrics and the benchmark.
        self.accepted = 0
        self.rejected_out_of_order = 0
        self.coalesced = 0
        self.dropped = 0
        self.published = 0
        self._high_water = 0  # keys waiting, measured when a flush starts
        self.flushes = 0

    # -- hot path ------------------------------------------------------------------------------
    def submit(self, ticker: Ticker) -> bool:
        event_ms = ticker.event_ms
        state = self._keys.get(ticker.key)
        if state is None:
            state = self._keys[ticker.key] = _KeyState(ticker.exchange, event_ms)
        elif event_ms <= state.last_ms:
            self.rejected_out_of_order += 1
            self._rejected[ticker.exchange] += 1
            return False
        else:
            state.last_ms = event_ms
        if state.pending is None:
            waiting = self._waiting
            if len(waiting) == self.queue_size:
                self._drop(waiting.popleft())
            waiting.append(state)
        state.pending = ticker
        state.count += 1
        self.accepted += 1
        candles = self.candles
        if candles is not None:
            candles.add(ticker)
        if not self._woken:
            self._woken = True
            self._wake.set()
        return True

    def _drop(self, state: _KeyState) -> None:
        """The key waiting longest loses its pending update (more keys than `queue_size`)."""
        self._accepted[state.exchange] += state.count
        self.dropped += 1
        self._dropped[state.exchange] += 1
        if state.count > 1:
            self.coalesced += state.count - 1
            self._coalesced[state.exchange] += state.count - 1
        state.pending = None
        state.count = 0

    # -- flushing -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Keys with an update waiting for the next flush."""
        return len(self._waiting)

    @property
    def outbox_high_water(self) -> int:
        return max(self._high_water, len(self._waiting))

    def last_seen(self) -> dict[tuple[str, str], datetime]:
        return {key: ms_to_datetime(state.last_ms) for key, state in self._keys.items()}

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            await self.flush()

    def _take(self) -> tuple[list[Ticker], list[dict[str, Any]]]:
        """The pending updates (one per key) and their wire forms; counts what they stand for."""
        waiting, self._waiting = self._waiting, deque()
        if len(waiting) > self._high_water:
            self._high_water = len(waiting)
        tickers: list[Ticker] = []
        wires: list[dict[str, Any]] = []
        accepted = self._accepted
        received: datetime | None = None
        received_ms = 0
        for state in waiting:
            ticker = state.pending
            assert ticker is not None
            count = state.count
            if count != 1:
                accepted[state.exchange] += count
                if count > 1:
                    self.coalesced += count - 1
                    self._coalesced[state.exchange] += count - 1
            else:
                accepted[state.exchange] += 1
            state.pending = None
            state.count = 0
            if ticker.received_at is not received:  # tickers of one frame batch share it
                received = ticker.received_at
                received_ms = datetime_to_ms(received)
            tickers.append(ticker)
            wires.append(ticker_wire(ticker, ticker.event_ms, received_ms))
        return tickers, wires

    async def flush(self) -> None:
        retry, self._retry = self._retry, {}
        tickers, wires = self._take()
        self._emit_counts()
        if not tickers and not retry:
            return
        items = {ticker_key(self.cache, *key): orjson.dumps(ticker_to_wire(t)) for key, t in retry.items()}
        for ticker, wire in zip(tickers, wires, strict=True):
            retry[ticker.key] = ticker
            items[ticker_key(self.cache, *ticker.key)] = orjson.dumps(wire)
        backend = self.cache.backend
        calls: list[Awaitable[object]] = [backend.set_many(items, self.ttl)]
        chunks = [wires[i : i + PUBLISH_CHUNK] for i in range(0, len(wires), PUBLISH_CHUNK)]
        calls.extend(backend.publish(self.channel, orjson.dumps({"tickers": chunk})) for chunk in chunks)
        results = await asyncio.gather(*calls, return_exceptions=True)
        self.flushes += 1
        for result in results:
            if isinstance(result, CacheUnavailable):
                self.cache.report_failure("market flush", result)
            elif isinstance(result, BaseException):
                log.error("market flush failed", exc_info=result)
        for chunk, result in zip(chunks, results[1:], strict=True):
            if not isinstance(result, BaseException):
                self.published += len(chunk)
            else:
                # Not published and not retried (the latest values are, through the set):
                # counted as dropped, so every accepted update is published, coalesced or dropped.
                self.dropped += len(chunk)
                for wire in chunk:
                    self._dropped[wire["exchange"]] += 1
        if isinstance(results[0], BaseException):
            # Keep the values for the next flush's SET (not published again) unless something
            # newer arrived meanwhile.
            keys = self._keys
            self._retry = {key: t for key, t in retry.items() if keys[key].pending is None}
            self._woken = True
            self._wake.set()
            await asyncio.sleep(0.5)  # Valkey is down: don't spin; the cache facade logs the outage

    def _emit_counts(self) -> None:
        for name, counter in (
            ("FeedMessages", self._accepted),
            ("FeedCoalesced", self._coalesced),
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
        keys = self._keys
        for exchange, symbol in expected:
            state = keys.get((exchange, symbol))
            counts[exchange] += 0
            if state is None or now_ms - state.last_ms > stale_after * 1000:
                counts[exchange] += 1
        return counts
