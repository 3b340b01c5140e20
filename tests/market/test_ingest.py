"""The ingestor: feeds from the fake exchanges served by the API; one active ingestor per
feed through Valkey leases, and failover to a standby."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from sage.market.ingest import IngestOptions, Ingestor
from sage.market.live import RunnerOptions
from sage.store.cache import Cache
from sage.store.cache_setup import create_backend
from tests.market.fakes import Scripted, eventually, fng_body
from tests.support.servers import ValkeyProcess

FAST = IngestOptions(
    candle_flush_seconds=0.2,
    stale_check_seconds=0.2,
    runner=RunnerOptions(backoff_initial=0.02, backoff_max=0.2, reset_after=0.5, watchdog=10.0),
)


def now_ms() -> int:
    return int(time.time() * 1000)


async def start(ingestor: Ingestor) -> Ingestor:
    ingestor.start()
    return ingestor


async def crash(ingestor: Ingestor) -> None:
    """Stop without releasing anything, as a killed process would."""
    task = ingestor._task
    assert task is not None
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def test_prices_and_fear_greed_from_the_feeds_are_served_by_the_api(
    live_settings, binance, gateio, fng_server, cache, db, metrics, app_client
):
    fng_server.answer(Scripted(body=fng_body([(63, "Greed", int(time.time()) // 86400 * 86400)])))
    ingestor = await start(Ingestor(live_settings(), cache, db, metrics, options=FAST))
    try:
        await eventually(lambda: len(binance.subscribed_streams()) == 2 and len(gateio.subscribed_pairs()) == 2)
        await binance.push("BTCUSDT", "97000.00000000", now_ms())
        await gateio.push("BTC_USDT", "97010.0", now_ms())
        await binance.push("ETHUSDT", "3400.00000000", now_ms())

        async def btc_from_both() -> bool:
            body = (await app_client.get("/api/v1/market/tickers")).json()
            btc = [t for t in body["tickers"] if t["symbol"] == "BTC/USDT"]
            return bool(btc) and set(btc[0]["exchanges"]) == {"binance", "gateio"}

        await eventually(btc_from_both)
        body = (await app_client.get("/api/v1/market/tickers/BTC")).json()
        assert body["price"] == "97005.00000000"
        assert body["exchanges"]["binance"]["last"] == "97000.00000000"
        assert body["exchanges"]["gateio"]["last"] == "97010.0"
        assert body["stale"] is False and body["diverged"] is False

        async def fear_greed() -> bool:
            current = (await app_client.get("/api/v1/market/fear-greed")).json()["current"]
            return current is not None and current["value"] == 63

        await eventually(fear_greed)
        await eventually(lambda: metrics.value("FeedStaleSymbols", exchange="gateio") == 1)  # ETH never came
        assert metrics.value("FeedStaleSymbols", exchange="binance") == 0
    finally:
        await ingestor.aclose()


async def test_two_ingestors_share_the_work_with_exactly_one_active_per_feed(
    live_settings, binance, gateio, cache, db, metrics
):
    settings = live_settings()
    a = await start(Ingestor(settings, cache, db, metrics, owner="a", options=FAST))
    b = await start(Ingestor(settings, cache, db, metrics, owner="b", options=FAST))
    try:
        await eventually(
            lambda: a.active_feeds | b.active_feeds == {"binance", "gateio", "fear_greed", "catalog", "backfill"}
        )
        # Let the standbys try to take the leases over many times.
        await eventually(lambda: all(lease.attempts >= 6 for lease in (*a.leases, *b.leases)), timeout=60)
        assert not (a.active_feeds & b.active_feeds)
        assert len(binance.live) == 1 and len(gateio.live) == 1
        assert binance.connects == 1 and gateio.connects == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_standby_takes_over_when_the_active_ingestor_dies(live_settings, binance, cache, db, metrics):
    settings = live_settings(symbols="BTC/USDT")
    a = await start(Ingestor(settings, cache, db, metrics, owner="a", options=FAST))
    await eventually(lambda: "binance" in a.active_feeds and binance.subscribed_streams())
    b = await start(Ingestor(settings, cache, db, metrics, owner="b", options=FAST))
    try:
        await eventually(lambda: any(lease.attempts >= 2 for lease in b.leases))
        assert "binance" not in b.active_feeds
        await crash(a)
        await eventually(lambda: "binance" in b.active_feeds and binance.subscribed_streams(), timeout=30)
        assert len(binance.live) == 1
        await binance.push("BTCUSDT", "42.00000000", now_ms())
        key = cache.key("market", "ticker", "binance", "BTC/USDT")
        await eventually(lambda: cache.backend.get(key))
    finally:
        await b.aclose()
        await a.aclose()


async def test_a_clean_shutdown_releases_the_leases_at_once(live_settings, cache, db, metrics):
    ingestor = await start(Ingestor(live_settings(), cache, db, metrics, owner="a", options=FAST))
    await eventually(lambda: ingestor.active_feeds == {"binance", "gateio", "fear_greed", "catalog", "backfill"})
    await ingestor.aclose()
    for name in ("binance", "gateio", "fear_greed", "catalog", "backfill"):
        assert await cache.backend.get(cache.key("market", "lease", name)) is None


async def test_an_ingestor_cut_off_from_valkey_stops_its_feeds_before_its_lease_lapses(
    live_settings, binance, db, metrics
):
    valkey = ValkeyProcess()
    valkey.start()
    cache = Cache(create_backend(valkey.url, timeout=0.3), error_log_interval=0)
    settings = live_settings(valkey_url=valkey.url, feed_lease_seconds=1.5, symbols="BTC/USDT")
    # (a short lease: this test is about the holder letting go in time, not about contention)
    ingestor = await start(Ingestor(settings, cache, db, metrics, owner="a", options=FAST))
    try:
        await eventually(lambda: "binance" in ingestor.active_feeds and binance.live)
        valkey.stop()
        # Another ingestor could take the lease once it lapses; by then this one has let go.
        await eventually(lambda: not ingestor.active_feeds and not binance.live, timeout=20)
    finally:
        await ingestor.aclose()
        await cache.close()
        valkey.destroy()
