"""Each exchange end to end: fake exchange -> runner -> parser -> pipeline -> Valkey."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from sage.market.feeds.binance import BinanceFeed
from sage.market.feeds.gateio import GateioFeed
from sage.market.live import ExchangeFeedRunner, RunnerOptions
from sage.market.models import ticker_from_json
from sage.market.pipeline import MarketPipeline, ticker_key, ticks_channel
from sage.store.cache import Cache
from tests.market.fakes import FakeBinance, FakeGateio, binance_ticker, eventually, gate_ticker
from tests.market.helpers import background

FAST = RunnerOptions(backoff_initial=0.02, backoff_max=0.2, reset_after=0.5, watchdog=10.0)
NOW_MS = int(time.time() * 1000)


async def stored(cache: Cache, exchange: str, symbol: str) -> str | None:
    raw = await cache.backend.get(ticker_key(cache, exchange, symbol))
    return str(ticker_from_json(raw).last) if raw else None


async def price_is(cache: Cache, exchange: str, symbol: str, expected: str) -> bool:
    return await stored(cache, exchange, symbol) == expected


def binance_runner(server: FakeBinance, cache: Cache, metrics, symbols=("BTC/USDT", "ETH/USDT"), **kw: Any):
    pipeline = MarketPipeline(cache, metrics)
    feed = BinanceFeed(list(symbols), base_url=server.url, **kw)
    return pipeline, ExchangeFeedRunner(feed, pipeline, metrics, FAST)


def gate_runner(server: FakeGateio, cache: Cache, metrics, symbols=("BTC/USDT", "ETH/USDT"), ping: float = 15.0):
    pipeline = MarketPipeline(cache, metrics)
    feed = GateioFeed(list(symbols), url=server.url, ping_seconds=ping)
    return pipeline, ExchangeFeedRunner(feed, pipeline, metrics, FAST)


async def test_binance_prices_arrive_in_valkey(binance, cache, metrics):
    pipeline, runner = binance_runner(binance, cache, metrics)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: sorted(binance.subscribed_streams()) == ["btcusdt@ticker", "ethusdt@ticker"])
        await binance.push("BTCUSDT", "97012.12000000", NOW_MS)
        await binance.push("ETHUSDT", "3400.55000000", NOW_MS)
        await eventually(lambda: price_is(cache, "binance", "BTC/USDT", "97012.12000000"))
        await eventually(lambda: price_is(cache, "binance", "ETH/USDT", "3400.55000000"))
    assert runner.handler.acks == 1


async def test_gate_prices_arrive_in_valkey(gateio, cache, metrics):
    pipeline, runner = gate_runner(gateio, cache, metrics)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: sorted(gateio.subscribed_pairs()) == ["BTC_USDT", "ETH_USDT"])
        await gateio.push("BTC_USDT", "97010.1", NOW_MS)
        await eventually(lambda: price_is(cache, "gateio", "BTC/USDT", "97010.1"))
    assert runner.handler.acks == 2


async def test_binance_symbols_beyond_the_per_connection_limit_are_sharded(binance, cache, metrics):
    symbols = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT")
    pipeline, runner = binance_runner(binance, cache, metrics, symbols, streams_per_connection=2)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: len(binance.subscribed_streams()) == 5)
        assert sorted(len(c.subscriptions) for c in binance.live) == [1, 2, 2]
        await binance.push("BNBUSDT", "688.50000000", NOW_MS)
        await eventually(lambda: price_is(cache, "binance", "BNB/USDT", "688.50000000"))


async def test_a_rejected_binance_subscription_is_counted_and_the_rest_keeps_flowing(binance, cache, metrics):
    binance.reject_streams = {"xrpusdt@ticker"}
    pipeline, runner = binance_runner(binance, cache, metrics, ("BTC/USDT", "XRP/USDT"))
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: runner.handler.errors == 1)
        await eventually(lambda: binance.subscribed_streams() == ["btcusdt@ticker"])
        await binance.push("BTCUSDT", "1.50000000", NOW_MS)
        await eventually(lambda: price_is(cache, "binance", "BTC/USDT", "1.50000000"))
    assert metrics.value("FeedErrors", exchange="binance") == 1
    assert runner.runners[0].stats.connects == 1, "an error answer does not cause a reconnect storm"


async def test_a_gate_subscription_error_is_checked_and_counted(gateio, cache, metrics):
    gateio.known_pairs = {"BTC_USDT"}
    pipeline, runner = gate_runner(gateio, cache, metrics, ("FOO/USDT", "BTC/USDT"))
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: runner.handler.errors == 1 and runner.handler.acks == 1)
        await gateio.push("BTC_USDT", "97000.1", NOW_MS)
        await eventually(lambda: price_is(cache, "gateio", "BTC/USDT", "97000.1"))
    assert metrics.value("FeedErrors", exchange="gateio") == 1
    assert runner.runners[0].stats.connects == 1


async def test_gate_gets_application_pings_and_their_pongs_count_as_liveness(gateio, cache, metrics):
    pipeline = MarketPipeline(cache, metrics)
    feed = GateioFeed(["BTC/USDT"], url=gateio.url, ping_seconds=0.2)
    runner = ExchangeFeedRunner(feed, pipeline, metrics, RunnerOptions(watchdog=2.0, backoff_initial=0.02))
    async with background(runner.run()):
        # No market data at all, for several watchdog periods: only pongs keep it satisfied.
        await eventually(lambda: gateio.app_pings >= 30, timeout=60)
    assert runner.runners[0].stats.connects == 1
    assert runner.handler.malformed == 0


async def test_gate_upgrade_notice_moves_to_a_new_connection(gateio, cache, metrics):
    pipeline, runner = gate_runner(gateio, cache, metrics)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: len(gateio.subscribed_pairs()) == 2)
        await gateio.upgrade_notice()
        await eventually(lambda: runner.runners[0].stats.connects == 2 and len(gateio.subscribed_pairs()) == 2)
        await gateio.push("ETH_USDT", "3401.2", NOW_MS)
        await eventually(lambda: price_is(cache, "gateio", "ETH/USDT", "3401.2"))
    assert "upgrade" in runner.runners[0].stats.reasons[0]


async def test_malformed_frames_are_counted_and_never_stop_the_binance_feed(binance, cache, metrics):
    pipeline, runner = binance_runner(binance, cache, metrics)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        for frame in (
            b"garbage",
            b"[]",
            orjson.dumps({"stream": "btcusdt@ticker", "data": binance_ticker("BTCUSDT", "oops", NOW_MS)}),
            orjson.dumps({"stream": "btcusdt@ticker", "data": {"e": "24hrTicker", "s": "BTCUSDT"}}),
            orjson.dumps({"stream": "dogeusdt@ticker", "data": binance_ticker("DOGEUSDT", "0.3", NOW_MS)}),
            orjson.dumps({"e": "somethingNew", "E": NOW_MS}),
        ):
            await binance.broadcast(frame)
        await binance.push("BTCUSDT", "97000.00000000", NOW_MS)
        await eventually(lambda: price_is(cache, "binance", "BTC/USDT", "97000.00000000"))
    assert runner.handler.malformed == 6
    assert metrics.value("FeedMalformed", exchange="binance") == 6
    assert runner.runners[0].stats.connects == 1


async def test_malformed_frames_are_counted_and_never_stop_the_gate_feed(gateio, cache, metrics):
    pipeline, runner = gate_runner(gateio, cache, metrics)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: gateio.subscribed_pairs())
        for frame in (b"{", orjson.dumps(gate_ticker("BTC_USDT", "NaN", NOW_MS)), b'{"channel":"x","event":"y"}'):
            await gateio.broadcast(frame)
        await gateio.push("BTC_USDT", "97011.3", NOW_MS)
        await eventually(lambda: price_is(cache, "gateio", "BTC/USDT", "97011.3"))
    assert runner.handler.malformed == 3
    assert runner.runners[0].stats.connects == 1


async def test_no_duplicates_or_regressions_across_a_reconnect(binance, cache, metrics):
    published: list[tuple[str, int]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with cache.backend.subscribe(ticks_channel(cache)) as sub:
            ready.set()
            async for _, payload in sub:
                published.extend((w["last"], w["event_time"]) for w in orjson.loads(payload)["tickers"])

    pipeline, runner = binance_runner(binance, cache, metrics, ("BTC/USDT",))
    async with background(listen()), background(pipeline.run()), background(runner.run()):
        await ready.wait()
        await eventually(lambda: binance.subscribed_streams())
        await binance.push("BTCUSDT", "100.00000000", NOW_MS + 1000)
        await binance.push("BTCUSDT", "101.00000000", NOW_MS + 2000)
        await eventually(lambda: published[-1:] == [("101.00000000", NOW_MS + 2000)])
        await binance.drop_all()
        await eventually(lambda: runner.runners[0].stats.connects == 2 and binance.subscribed_streams())
        # After the reconnect the server repeats what we already have, then an older update, then news.
        await binance.push("BTCUSDT", "101.00000000", NOW_MS + 2000)
        await binance.push("BTCUSDT", "99.00000000", NOW_MS + 1500)
        await binance.push("BTCUSDT", "102.00000000", NOW_MS + 3000)
        await eventually(lambda: published[-1:] == [("102.00000000", NOW_MS + 3000)])
        await eventually(lambda: price_is(cache, "binance", "BTC/USDT", "102.00000000"))
    # Updates pushed back to back may be coalesced into the newer one; none is published twice
    # and nothing older than what was published follows it.
    times = [at for _, at in published]
    assert times == sorted(set(times))
    assert set(published) <= {
        ("100.00000000", NOW_MS + 1000),
        ("101.00000000", NOW_MS + 2000),
        ("102.00000000", NOW_MS + 3000),
    }
    assert pipeline.rejected_out_of_order == 2


async def test_a_flood_from_the_exchange_keeps_the_feed_alive_and_memory_bounded(binance, cache, metrics):
    pipeline = MarketPipeline(cache, metrics, queue_size=500)
    feed = BinanceFeed(["BTC/USDT"], base_url=binance.url)
    runner = ExchangeFeedRunner(feed, pipeline, metrics, FAST)
    async with background(pipeline.run()), background(runner.run()):
        await eventually(lambda: binance.subscribed_streams())
        total = 30_000
        for n in range(total):
            await binance.push("BTCUSDT", f"{n}.5", NOW_MS + n)
        await eventually(lambda: price_is(cache, "binance", "BTC/USDT", f"{total - 1}.5"), timeout=60)
        # The value is set and the last chunk published concurrently: the count may trail the value.
        await eventually(lambda: pipeline.published + pipeline.coalesced + pipeline.dropped == total, timeout=60)
    assert pipeline.outbox_high_water <= 500
    assert pipeline.accepted == total
    assert runner.runners[0].stats.connects == 1
