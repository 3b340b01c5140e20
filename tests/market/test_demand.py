"""On-demand live prices: demand recorded in Valkey, the ingestor subscribing and
unsubscribing at runtime on the running connections (the fakes enforce Binance's
5 messages/s), bounded by SAGE_MAX_LIVE_SYMBOLS."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sage.market.demand import DemandSet
from sage.market.ingest import Ingestor
from sage.market.models import ticker_from_json
from tests.market.fakes import FakeBinance, FakeGateio, eventually
from tests.market.test_ingest import FAST, now_ms, start


async def live_ingestor(live_settings, cache, db, metrics, **overrides) -> Ingestor:
    ingestor = await start(Ingestor(live_settings(**overrides), cache, db, metrics, options=FAST))
    # the catalog feed has read the fakes' market lists
    await eventually(lambda: ingestor.catalog.is_listed("LINK/USDT"))
    return ingestor


async def test_a_demanded_symbol_is_subscribed_on_the_running_connections_and_its_ticks_arrive(
    live_settings, binance: FakeBinance, gateio: FakeGateio, cache, db, metrics
):
    ingestor = await live_ingestor(live_settings, cache, db, metrics)
    try:
        await eventually(lambda: len(binance.subscribed_streams()) == 2 and len(gateio.subscribed_pairs()) == 2)
        await DemandSet(cache, ttl=900).touch(["LINK/USDT"])
        await eventually(
            lambda: "linkusdt@ticker" in binance.subscribed_streams() and "LINK_USDT" in gateio.subscribed_pairs()
        )
        assert binance.connects == 1 and gateio.connects == 1  # nothing reconnected
        runtime_requests = [m for m in binance.live[0].received if m.get("params") == ["linkusdt@ticker"]]
        assert [m["method"] for m in runtime_requests] == ["SUBSCRIBE"]
        await binance.push("LINKUSDT", "14.50000000", now_ms())
        key = cache.key("market", "ticker", "binance", "LINK/USDT")
        raw = await eventually(lambda: cache.backend.get(key))
        assert ticker_from_json(raw).last == Decimal("14.50000000")
        assert metrics.value("FeedMalformed", exchange="binance") == 0
    finally:
        await ingestor.aclose()


async def test_a_symbol_no_longer_demanded_is_unsubscribed_and_the_others_stay(
    live_settings, binance, gateio, cache, db, metrics
):
    ingestor = await live_ingestor(live_settings, cache, db, metrics)
    try:
        demand = DemandSet(cache, ttl=900)
        await demand.touch(["LINK/USDT", "ADA/USDT"])
        await eventually(lambda: {"linkusdt@ticker", "adausdt@ticker"} <= set(binance.subscribed_streams()))
        # LINK's demand lapses (as after SAGE_DEMAND_TTL_SECONDS without use)
        await cache.backend.zadd(demand.key, {"LINK/USDT": time.time() - 1000})
        await eventually(lambda: "linkusdt@ticker" not in binance.subscribed_streams())
        await eventually(lambda: "LINK_USDT" not in gateio.subscribed_pairs())
        assert set(binance.subscribed_streams()) == {"btcusdt@ticker", "ethusdt@ticker", "adausdt@ticker"}
        assert binance.connects == 1 and gateio.connects == 1
    finally:
        await ingestor.aclose()


async def test_beyond_max_live_symbols_the_least_recently_demanded_is_dropped(
    live_settings, binance, cache, db, metrics
):
    ingestor = await live_ingestor(live_settings, cache, db, metrics, max_live_symbols=2)
    try:
        demand = DemandSet(cache, ttl=900)
        now = time.time()
        await cache.backend.zadd(demand.key, {"LINK/USDT": now - 30, "ADA/USDT": now - 20, "DOT/USDT": now - 10})
        await eventually(lambda: {"adausdt@ticker", "dotusdt@ticker"} <= set(binance.subscribed_streams()))
        subscriptions = ingestor.subscriptions
        assert subscriptions is not None
        await eventually(lambda: subscriptions.live == ["DOT/USDT", "ADA/USDT"])  # most recent first
        assert "linkusdt@ticker" not in binance.subscribed_streams()
    finally:
        await ingestor.aclose()


async def test_unlisted_and_configured_symbols_in_the_demand_set_are_ignored(
    live_settings, binance, cache, db, metrics
):
    ingestor = await live_ingestor(live_settings, cache, db, metrics)
    try:
        await cache.backend.zadd(cache.key("market", "demand"), {"NOPE/USDT": time.time(), "BTC/USDT": time.time()})
        assert ingestor.subscriptions is not None
        syncs = ingestor.subscriptions.syncs
        await eventually(lambda: ingestor.subscriptions is not None and ingestor.subscriptions.syncs > syncs + 1)
        assert sorted(binance.subscribed_streams()) == ["btcusdt@ticker", "ethusdt@ticker"]
    finally:
        await ingestor.aclose()


async def test_many_runtime_subscriptions_stay_within_binances_control_message_limit(
    live_settings, binance, binance_rest, gateio_rest, cache, db, metrics
):
    from tests.market.fakes_rest import Market

    extra = [Market(f"C{n}", "USDT", "1.0") for n in range(12)]
    binance_rest.markets.extend(extra)
    gateio_rest.markets.extend(extra)
    ingestor = await live_ingestor(live_settings, cache, db, metrics)
    try:
        await eventually(lambda: ingestor.catalog.is_listed("C11/USDT"))
        demand = DemandSet(cache, ttl=900)
        for m in extra:  # one at a time: a burst of separate SUBSCRIBE requests
            await demand.touch([f"{m.base}/USDT"])
        wanted = {f"c{n}usdt@ticker" for n in range(12)}
        await eventually(lambda: wanted <= set(binance.subscribed_streams()))
        assert binance.rate_closes == 0 and binance.connects == 1
    finally:
        await ingestor.aclose()


async def test_the_binance_fake_closes_a_connection_sending_more_than_5_messages_a_second(binance):
    async with connect(binance.url + "/stream") as ws:
        with pytest.raises(ConnectionClosed):
            for n in range(20):
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n}).decode())
            await asyncio.wait_for(ws.recv(), 5)
            async for _ in ws:
                pass
    assert binance.rate_closes == 1


async def test_a_symbol_in_use_stays_demanded_and_lapses_after_the_ttl(cache):
    now = [1_000_000.0]
    demand = DemandSet(cache, ttl=900, clock=lambda: now[0])
    assert await demand.touch(["LINK/USDT"]) == ["LINK/USDT"]
    now[0] += 50
    assert await demand.touch(["LINK/USDT"]) == []  # within ttl/10: no write at all
    now[0] += 100
    await demand.touch(["LINK/USDT"])  # still in use: refreshed
    now[0] += 850
    assert await demand.current(10) == ["LINK/USDT"]  # 1000 s after the first use, 850 after the last
    now[0] += 60
    assert await demand.current(10) == []  # 910 s unused: lapsed and pruned
    assert await cache.backend.zrange_desc(demand.key, 0, 10) == []


async def test_the_subscription_loop_cancelled_inside_a_valkey_call_ends_cancelled_not_failed(cache, db, monkeypatch):
    """valkey-py turns a cancellation that lands in a socket read into its read TimeoutError
    (the cache's CacheUnavailable). The loop must end as cancelled: ending with that error
    instead made the ingestor's TaskGroup raise and `aclose()` fail at shutdown under load."""
    from sage.market.catalog import SymbolCatalog
    from sage.market.subscriptions import LiveSubscriptions
    from sage.store.cache import CacheUnavailable

    entered = asyncio.Event()

    async def read_cut_by_cancellation(*args: object, **kwargs: object) -> list[tuple[str, float]]:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            raise CacheUnavailable("TimeoutError: Timeout reading from 127.0.0.1") from exc
        return []

    monkeypatch.setattr(cache.backend, "zrange_desc", read_cut_by_cancellation)
    catalog = SymbolCatalog(db, configured=["BTC/USDT"], exchanges=("binance",))
    loop = asyncio.create_task(
        LiveSubscriptions(DemandSet(cache, ttl=900), catalog, dict, configured=["BTC/USDT"], max_live=5).run()
    )
    await asyncio.wait_for(entered.wait(), 10)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
