"""The pipeline against a real Valkey: guard, coalescing per flush, publishing, bounded memory."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sage.market.feeds.binance import BinanceFeed
from sage.market.hot_path import MAX_AHEAD_MS
from sage.market.live import FeedFrameHandler
from sage.market.models import ticker_from_json
from sage.market.pipeline import MarketPipeline, ticker_key, ticks_channel
from sage.store.cache import Cache, CacheUnavailable
from sage.store.cache_setup import create_backend
from tests.market.fakes import binance_ticker, eventually
from tests.market.helpers import background, ticker
from tests.support.servers import ValkeyProcess

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class GatedBackend:
    """The real Valkey backend behind a gate the test opens and closes (a slow Valkey)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await self.gate.wait()
        await self.inner.set_many(items, ttl)

    async def publish(self, channel: str, message: bytes) -> int:
        await self.gate.wait()
        return int(await self.inner.publish(channel, message))

    async def set_many_and_publish(
        self, items: Mapping[str, bytes], ttl: float | None, channel: str, messages: Sequence[bytes]
    ) -> list[BaseException | None]:
        await self.gate.wait()
        return list(await self.inner.set_many_and_publish(items, ttl, channel, messages))


async def collect(cache: Cache, out: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with cache.backend.subscribe(ticks_channel(cache)) as sub:
        ready.set()
        async for _, payload in sub:
            out.extend(orjson.loads(payload)["tickers"])


async def test_the_latest_ticker_is_stored_with_the_market_price_ttl(cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    pipeline.submit(ticker(last="97000.5", at=T0))
    await pipeline.flush()
    key = ticker_key(cache, "binance", "BTC/USDT")
    stored = ticker_from_json(await cache.backend.get(key))
    assert stored.last == ticker(last="97000.5", at=T0).last
    ttl = await cache.backend.ttl(key)
    assert ttl is not None and 290 < ttl <= 300


async def test_updates_superseded_before_a_flush_are_coalesced_into_the_latest(cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    async with background(collect(cache, seen, ready)):
        await ready.wait()
        for n, price in enumerate(["1.0", "2.0", "3.0"]):
            pipeline.submit(ticker(last=price, at=T0 + timedelta(seconds=n)))
        await pipeline.flush()
        await eventually(lambda: len(seen) == 1)
    assert [w["last"] for w in seen] == ["3.0"]
    stored = ticker_from_json(await cache.backend.get(ticker_key(cache, "binance", "BTC/USDT")))
    assert str(stored.last) == "3.0"
    assert (pipeline.accepted, pipeline.published, pipeline.coalesced) == (3, 1, 2)
    await pipeline.flush()  # counters reach the metrics at the start of a flush
    assert metrics.value("FeedMessages", exchange="binance") == 3
    assert metrics.value("FeedCoalesced", exchange="binance") == 2


async def test_each_flush_publishes_the_latest_update_of_every_key_that_changed(cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    async with background(collect(cache, seen, ready)):
        await ready.wait()
        pipeline.submit(ticker(last="1.0", at=T0))
        pipeline.submit(ticker("ETH/USDT", last="5.0", at=T0))
        await pipeline.flush()
        pipeline.submit(ticker(last="2.0", at=T0 + timedelta(seconds=1)))
        await pipeline.flush()
        await pipeline.flush()  # nothing changed: nothing published
        await eventually(lambda: len(seen) == 3)
    assert [(w["symbol"], w["last"]) for w in seen] == [("BTC/USDT", "1.0"), ("ETH/USDT", "5.0"), ("BTC/USDT", "2.0")]
    assert (pipeline.published, pipeline.coalesced, pipeline.flushes) == (3, 0, 2)


async def test_older_and_duplicate_updates_are_ignored_per_exchange_and_symbol(cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    accepted = [
        pipeline.submit(ticker(last="2", at=T0 + timedelta(seconds=2))),
        pipeline.submit(ticker(last="1", at=T0 + timedelta(seconds=1))),  # older
        pipeline.submit(ticker(last="2", at=T0 + timedelta(seconds=2))),  # duplicate
        pipeline.submit(ticker(last="9", at=T0 + timedelta(seconds=1), exchange="gateio")),  # other exchange
        pipeline.submit(ticker(last="3", at=T0 + timedelta(seconds=3))),
    ]
    assert accepted == [True, False, False, True, True]
    await pipeline.flush()
    assert metrics.value("FeedOutOfOrder", exchange="binance") == 2


async def test_a_flood_while_valkey_stalls_holds_one_update_per_key(valkey_url, metrics):
    backend = GatedBackend(create_backend(valkey_url))
    cache = Cache(backend)  # type: ignore[arg-type]
    pipeline = MarketPipeline(cache, metrics, queue_size=100)
    handler = FeedFrameHandler(BinanceFeed(["BTC/USDT", "ETH/USDT"], base_url="ws://x"), pipeline, metrics)
    frames = [
        orjson.dumps({"stream": "x", "data": binance_ticker(("BTCUSDT", "ETHUSDT")[n % 2], f"{90000 + n}.5", n + 1)})
        for n in range(20_000)
    ]
    backend.gate.clear()  # Valkey stalls: nothing drains
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            handler.handle(frame, 1.0)
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert pipeline.pending == 2
    assert (pipeline.accepted, pipeline.dropped) == (20_000, 0)
    # 20 000 parsed tickers would be tens of megabytes; one per key is waiting.
    assert retained < 200_000, retained
    backend.gate.set()
    await pipeline.flush()
    assert (pipeline.published, pipeline.coalesced) == (2, 19_998)
    stored = ticker_from_json(await cache.backend.get(ticker_key(cache, "binance", "ETH/USDT")))
    assert str(stored.last) == "109999.5", "the newest update survives the flood"
    await cache.close()


async def test_beyond_queue_size_waiting_keys_the_one_waiting_longest_is_dropped(cache, metrics):
    pipeline = MarketPipeline(cache, metrics, queue_size=3)
    for n in range(5):
        pipeline.submit(ticker(f"C{n}/USDT", last="1.5", at=T0))
    pipeline.submit(ticker("C4/USDT", last="2.5", at=T0 + timedelta(seconds=1)))
    assert (pipeline.pending, pipeline.dropped, pipeline.outbox_high_water) == (3, 2, 3)
    await pipeline.flush()
    await pipeline.flush()
    assert metrics.value("FeedDropped", exchange="binance") == 2
    assert metrics.value("FeedMessages", exchange="binance") == 6
    assert await cache.backend.get(ticker_key(cache, "binance", "C0/USDT")) is None
    stored = ticker_from_json(await cache.backend.get(ticker_key(cache, "binance", "C4/USDT")))
    assert str(stored.last) == "2.5"


async def test_updates_written_while_valkey_is_down_arrive_once_it_is_back(metrics):
    server = ValkeyProcess()
    server.start()
    cache = Cache(create_backend(server.url, timeout=0.5), error_log_interval=0)
    try:
        pipeline = MarketPipeline(cache, metrics)
        async with background(pipeline.run()):
            pipeline.submit(ticker(last="1", at=T0))
            key = ticker_key(cache, "binance", "BTC/USDT")
            await eventually(lambda: cache.backend.get(key))
            server.stop()
            pipeline.submit(ticker(last="2", at=T0 + timedelta(seconds=1)))
            await eventually(lambda: cache.errors > 0)
            server.start()

            async def stored_price() -> str | None:
                raw = await cache.get_bytes(key)
                return str(ticker_from_json(raw).last) if raw else None

            await eventually(lambda: _equals(stored_price(), "2"), timeout=30)
    finally:
        await cache.close()
        server.destroy()


async def _equals(value: Any, expected: Any) -> bool:
    return (await value) == expected


class FailingPublish(GatedBackend):
    """Valkey that stores values but refuses every publish (a server refusing the command)."""

    async def set_many_and_publish(
        self, items: Mapping[str, bytes], ttl: float | None, channel: str, messages: Sequence[bytes]
    ) -> list[BaseException | None]:
        await self.inner.set_many(items, ttl)
        return [None, *(CacheUnavailable("publish refused") for _ in messages)]


async def test_updates_whose_publish_fails_are_counted_as_dropped_not_lost_from_the_counts(cache, metrics):
    cache.backend = FailingPublish(cache.backend)
    pipeline = MarketPipeline(cache, metrics)
    for n in range(3):
        pipeline.submit(ticker(last=f"{n}.5", at=T0 + timedelta(seconds=n)))
        await pipeline.flush()
    assert (pipeline.accepted, pipeline.published, pipeline.dropped) == (3, 0, 3)
    await pipeline.flush()  # counters reach the metrics at the start of a flush
    assert metrics.value("FeedDropped", exchange="binance") == 3


async def test_an_update_from_the_future_is_refused_and_does_not_hold_the_symbol(cache, metrics):
    """An event time more than MAX_AHEAD_MS past the receive time would make the out-of-order
    guard drop every real update until the clock caught up with it."""
    pipeline = MarketPipeline(cache, metrics)
    handler = FeedFrameHandler(BinanceFeed(["BTC/USDT"], base_url="ws://x"), pipeline, metrics)
    rx = 1_800_000_000.0
    rx_ms = int(rx * 1000)

    def frame(last: str, event_ms: int) -> bytes:
        return orjson.dumps({"stream": "x", "data": binance_ticker("BTCUSDT", last, event_ms)})

    handler.handle(frame("1", rx_ms + MAX_AHEAD_MS + 1), rx)
    assert (handler.malformed, pipeline.accepted) == (1, 0)
    assert metrics.value("FeedMalformed", exchange="binance") == 1
    handler.handle(frame("2", rx_ms - 5), rx)  # the real updates that follow are taken
    handler.handle(frame("3", rx_ms + MAX_AHEAD_MS), rx)  # at the bound: within the allowed skew
    assert (handler.malformed, pipeline.accepted) == (1, 2)
