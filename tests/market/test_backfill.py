"""Candle backfill from the exchanges' REST APIs (the local fakes): the three spans, merged
with live minute bars without duplicates, resumed after a gap, served at every interval."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sage.market.backfill import CandleBackfill, newest_bar
from sage.market.candles import CandleAggregator, CandleStore
from sage.market.catalog import SymbolCatalog
from sage.market.ingest import Ingestor
from sage.market.rest import ExchangeApis, build_exchange_apis
from sage.store.market_tables import CandleRow
from tests.market.fakes import eventually
from tests.market.fakes_rest import kline_values
from tests.market.helpers import ticker
from tests.market.test_ingest import FAST, start

# A fixed "now" in the past, inside a minute: every count below is exact.
NOW = (int(time.time()) // 3600 - 2) * 3600 + 1830


@pytest.fixture
async def apis(binance_rest, gateio_rest, cache, metrics) -> AsyncIterator[ExchangeApis]:
    built = build_exchange_apis(
        binance_url=binance_rest.url,
        gateio_url=gateio_rest.url,
        cache=cache,
        metrics=metrics,
        timeout=5.0,
        binance_weight_per_minute=6000,
        gateio_per_second=20.0,
        max_wait=10.0,
    )
    yield built
    await built.close()


def backfill(db, apis, metrics) -> CandleBackfill:
    catalog = SymbolCatalog(db, configured=["BTC/USDT", "LINK/USDT"], exchanges=("binance", "gateio"))
    return CandleBackfill(db, apis, catalog, metrics, clock=lambda: NOW)


async def count(db, exchange: str, interval: str, symbol: str = "LINK/USDT") -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(CandleRow)
                .where(CandleRow.exchange == exchange, CandleRow.symbol == symbol, CandleRow.interval == interval)
            )
        )


async def test_a_symbol_gets_24h_of_minutes_90_days_of_hours_and_2_years_of_days_from_both_exchanges(
    db, apis, metrics, binance_rest, gateio_rest
):
    stored = await backfill(db, apis, metrics).backfill("LINK/USDT")
    for exchange in ("binance", "gateio"):
        assert await count(db, exchange, "1m") == 1440
        assert await count(db, exchange, "1h") == 90 * 24
        assert await count(db, exchange, "1d") == 730
    assert stored == 2 * (1440 + 2160 + 730)
    # pages of at most 1000 bars: 1m 2, 1h 3, 1d 1 per exchange
    assert binance_rest.count("/api/v3/klines") == 6 and gateio_rest.count("/api/v4/spot/candlesticks") == 6
    assert binance_rest.total_weight() == 12  # klines weigh 2 each
    day = datetime.fromtimestamp(NOW // 86400 * 86400 - 86400, UTC)
    o, h, lo, c, v = kline_values(int(day.timestamp()) * 1000, 86_400_000)
    async with db.session() as session:
        row = await session.get(CandleRow, ("gateio", "LINK/USDT", "1d", day))
    assert row is not None and (row.open, row.high, row.low, row.close, row.volume) == tuple(
        Decimal(x) for x in (o, h, lo, c, v)
    )


async def test_backfilled_minutes_merge_with_live_ones_without_duplicates(db, apis, metrics):
    minute = datetime.fromtimestamp(NOW // 60 * 60 - 600, UTC)
    agg = CandleAggregator()
    agg.add(ticker("LINK/USDT", "99", at=minute + timedelta(seconds=5)))
    await CandleStore(db, agg, metrics, retention_days=30).flush()
    job = backfill(db, apis, metrics)
    await job.backfill("LINK/USDT")
    await job.backfill("LINK/USDT")  # twice: still one bar per minute
    assert await count(db, "binance", "1m") == 1440
    async with db.session() as session:
        row = await session.get(CandleRow, ("binance", "LINK/USDT", "1m", minute))
    assert row is not None and row.close == Decimal(kline_values(int(minute.timestamp()) * 1000, 60_000)[3])


async def test_after_a_gap_hours_and_days_resume_from_the_newest_stored_bar(db, apis, metrics, binance_rest):
    job = backfill(db, apis, metrics)
    await job.backfill("LINK/USDT")
    newest = await newest_bar(db, "binance", "LINK/USDT", "1h")
    assert newest is not None
    later = NOW + 3600  # an hour later, after a restart (still in the fakes' past)
    job.clock = lambda: later
    binance_rest.requests.clear()
    await job.backfill("LINK/USDT")
    hourly = [p for path, p in binance_rest.requests if path == "/api/v3/klines" and p["interval"] == "1h"]
    assert [int(p["startTime"]) for p in hourly] == [int(newest.timestamp() + 3600) * 1000]
    assert await count(db, "binance", "1h") == 90 * 24 + 1


async def test_every_interval_is_served_from_the_store(db, apis, metrics, app_client):
    await backfill(db, apis, metrics).backfill("BTC/USDT")

    async def closes(interval: str, limit: int) -> list[str]:
        response = await app_client.get(
            "/api/v1/market/candles/BTC", params={"interval": interval, "limit": limit, "exchange": "binance"}
        )
        assert response.status_code == 200, response.text
        return [c["close"] for c in response.json()["candles"]]

    day = NOW // 86400 * 86400 - 86400
    daily = await closes("1d", 3)
    assert daily[-2] == kline_values(day * 1000, 86_400_000)[3]  # yesterday: the exchange's daily bar
    last_minute = NOW // 60 * 60 - 60
    assert daily[-1] == kline_values(last_minute * 1000, 60_000)[3]  # today, in progress: built from minutes
    for interval in ("1m", "5m", "15m", "1h", "4h", "1d", "1w"):
        assert len(await closes(interval, 5)) == 5, interval
    # a 4h bar closes with its last hour's close
    four = (NOW // 14_400 - 1) * 14_400
    bars = (await app_client.get("/api/v1/market/candles/BTC", params={"interval": "4h", "limit": 300})).json()
    by_start = {datetime.fromisoformat(c["start"]).timestamp(): c for c in bars["candles"]}
    assert by_start[four]["close"] == kline_values((four + 3 * 3600) * 1000, 3_600_000)[3]


async def test_a_first_demanded_symbol_is_backfilled_and_fear_greed_history_is_fetched_whole(
    live_settings, binance, cache, db, metrics, fng_server
):
    from sage.market.demand import DemandSet

    ingestor = await start(Ingestor(live_settings(), cache, db, metrics, options=FAST))
    try:
        await eventually(lambda: ingestor.catalog.is_listed("LINK/USDT"))
        await DemandSet(cache, ttl=900).touch(["LINK/USDT"])
        assert ingestor.backfill is not None
        await eventually(lambda: "LINK/USDT" in ingestor.backfill.done, timeout=60)
        assert await count(db, "gateio", "1d") >= 729
        assert fng_server.requests[0] == "/fng/?limit=0"
    finally:
        await ingestor.aclose()


async def test_on_start_the_ingestor_backfills_the_configured_symbols_filling_any_gap(
    live_settings, binance, binance_rest, cache, db, metrics
):
    ingestor = await start(Ingestor(live_settings(), cache, db, metrics, options=FAST))
    try:
        assert ingestor.backfill is not None
        backfill_job = ingestor.backfill
        await eventually(lambda: {"BTC/USDT", "ETH/USDT"} <= set(backfill_job.done), timeout=60)
        assert await count(db, "binance", "1h", symbol="ETH/USDT") == 90 * 24
        asked = {p["symbol"] for path, p in binance_rest.requests if path == "/api/v3/klines"}
        assert asked == {"BTCUSDT", "ETHUSDT"}
    finally:
        await ingestor.aclose()
