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
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from sage.market.candles import CandleAggregator, OpenBar
from sage.market.models import Ticker, datetime_to_ms, ms_to_datetime, texts_wire, ticker_texts
from sage.observability.metrics import Metrics
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

PUBLISH_CHUNK = 500  # tickers per published message


def ticker_key(cache: Cache, exchange: str, symbol: str) -> str:
    return cache.key("market", "ticker", exchange, symbol)


def ticks_channel(cache: Cache) -> str:
    return cache.key("market", "ticks")


class KeyState:
    """One (exchange, symbol): the newest event time accepted, the update waiting for the next
    flush with the number of accepted updates it stands for, and the symbol's candle bar in
    progress. The frame hot path (sage.market.hot_path) holds these per exchange symbol, so one
    look-up per frame reaches all three."""

    __slots__ = ("bar", "count", "exchange", "key", "last_ms", "pending", "pending_rx_ms")

    def __init__(self, key: tuple[str, str], last_ms: int) -> None:
        self.key = key
        self.exchange = key[0]
        self.last_ms = last_ms
        # The pending update as what the flush encodes: its eight decimal texts (`ticker_texts`)
        # and receive time in epoch milliseconds (its event time is `last_ms`: it is the newest
        # accepted); no Ticker is built per update.
        self.pending: tuple[str, ...] | None = None
        self.pending_rx_ms = 0
        self.count = 0
        self.bar: OpenBar | None = None  # the candle aggregator's open bar of this key


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
        self._keys: dict[tuple[str, str], KeyState] = {}
        self._waiting: deque[KeyState] = deque()  # keys with a pending update, first come first
        self._wake = asyncio.Event()
        self._woken = False  # mirrors _wake.is_set(), without a method call per enqueue
        self._retry: dict[tuple[str, str], bytes] = {}  # encoded values whose SET failed, stored by the next flush
        self._accepted: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._coalesced: Counter[str] = Counter()
        # Totals for tests, /metrics and the benchmark.
        self._counted = 0  # accepted updates no longer pending (see `accepted`)
        self.rejected_out_of_order = 0
        self.coalesced = 0
        self.dropped = 0
        self.published = 0
        self._high_water = 0  # keys waiting, measured when a flush starts
        self.flushes = 0

    # -- hot path ------------------------------------------------------------------------------
    def submit(self, ticker: Ticker) -> bool:
        """Guard, coalesce, aggregate one update. The common ticker frame takes the same steps
        inline (sage.market.hot_path), through `enqueue` and `reject` below."""
        event_ms = ticker.event_ms
        state = self._keys.get(ticker.key)
        if state is None:
            state = self._keys[ticker.key] = KeyState(ticker.key, event_ms)
        elif event_ms <= state.last_ms:
            self.reject(state)
            return False
        else:
            state.last_ms = event_ms
        if state.pending is None:
            self.enqueue(state)
        texts = state.pending = ticker_texts(ticker)
        state.pending_rx_ms = datetime_to_ms(ticker.received_at)
        state.count += 1
        candles = self.candles
        if candles is not None:
            state.bar = candles.update(ticker.key, event_ms, texts[0], texts[6], ticker._candle_class)
        return True

    def key_state(self, key: tuple[str, str]) -> KeyState | None:
        """The state of a key that has had an update accepted."""
        return self._keys.get(key)

    def enqueue(self, state: KeyState) -> None:
        """`state` has an update pending now: it waits for the next flush (at most `queue_size`
        keys wait; beyond that the one waiting longest is dropped)."""
        waiting = self._waiting
        if len(waiting) == self.queue_size:
            self._drop(waiting.popleft())
        waiting.append(state)
        # Wakes the flush: a key with an update pending is always in `waiting`, and got there
        # through here, so nothing else needs to check.
        if not self._woken:
            self.wake()

    def reject(self, state: KeyState) -> None:
        """An update not newer than the key's last one: dropped, counted."""
        self.rejected_out_of_order += 1
        self._rejected[state.exchange] += 1

    def wake(self) -> None:
        self._woken = True
        self._wake.set()

    @property
    def accepted(self) -> int:
        """Updates accepted so far: the flushed or dropped ones and those still pending."""
        return self._counted + sum(state.count for state in self._waiting)

    def _drop(self, state: KeyState) -> None:
        """The key waiting longest loses its pending update (more keys than `queue_size`)."""
        self._accepted[state.exchange] += state.count
        self._counted += state.count
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

    def _take(self) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        """The pending updates (one per key) in wire form; counts what they stand for."""
        # Emptied in place: the hot path holds this deque.
        waiting = list(self._waiting)
        self._waiting.clear()
        if len(waiting) > self._high_water:
            self._high_water = len(waiting)
        taken: list[tuple[tuple[str, str], dict[str, Any]]] = []
        accepted = self._accepted
        for state in waiting:
            texts = state.pending
            assert texts is not None
            count = state.count
            self._counted += count
            if count != 1:
                accepted[state.exchange] += count
                if count > 1:
                    self.coalesced += count - 1
                    self._coalesced[state.exchange] += count - 1
            else:
                accepted[state.exchange] += 1
            state.pending = None
            state.count = 0
            key = state.key
            taken.append((key, texts_wire(key[0], key[1], texts, state.last_ms, state.pending_rx_ms)))
        return taken

    async def flush(self) -> None:
        retry, self._retry = self._retry, {}
        taken = self._take()
        self._emit_counts()
        if not taken and not retry:
            return
        for key, wire in taken:
            retry[key] = orjson.dumps(wire)
        items = {ticker_key(self.cache, *key): value for key, value in retry.items()}
        wires = [wire for _, wire in taken]
        chunks = [wires[i : i + PUBLISH_CHUNK] for i in range(0, len(wires), PUBLISH_CHUNK)]
        messages = [orjson.dumps({"tickers": chunk}) for chunk in chunks]
        try:  # one round trip for the values and the messages
            results = await self.cache.backend.set_many_and_publish(items, self.ttl, self.channel, messages)
        except Exception as exc:  # a backend bug: every part counts as failed, and is logged below
            results = [exc] * (1 + len(messages))
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
            self._retry = {key: value for key, value in retry.items() if keys[key].pending is None}
            self.wake()
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
