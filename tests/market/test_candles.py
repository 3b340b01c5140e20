from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from sage.market.candles import CandleAggregator, CandleStore
from sage.market.history import query_candles
from sage.store.market_tables import CandleRow
from tests.market.helpers import ticker

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def feed(agg, *points):
    for seconds, price, volume in points:
        agg.add(ticker(last=price, at=T0 + timedelta(seconds=seconds), base_volume=volume))


def test_updates_within_a_minute_make_one_ohlc_bar():
    agg = CandleAggregator()
    feed(agg, (1, "100", "1000"), (10, "105", "1002"), (20, "98", "1003.5"), (59, "101", "1004"))
    (bar,) = agg.drain()
    assert (bar.start, bar.open, bar.high, bar.low, bar.close) == (T0, 100, 105, 98, 101)
    assert bar.volume == Decimal("4.0") and bar.ticks == 4


def test_the_first_update_of_a_new_minute_closes_the_previous_bar():
    agg = CandleAggregator()
    feed(agg, (1, "100", "1000"), (61, "102", "1001"))
    closed, current = agg.drain()
    assert closed.start == T0 and closed.close == 100
    assert current.start == T0 + timedelta(minutes=1) and current.open == 102
    assert current.volume == 1


def test_a_shrinking_rolling_volume_never_makes_negative_volume():
    agg = CandleAggregator()
    feed(agg, (1, "100", "1000"), (2, "100", "900"), (3, "100", "905"))
    (bar,) = agg.drain()
    assert bar.volume == 5


def test_closed_bars_waiting_for_the_database_are_bounded():
    agg = CandleAggregator(max_closed=3)
    feed(agg, *((60 * n, "100", "1") for n in range(10)))
    assert len(agg.drain()) == 3 + 1  # three closed bars kept, plus the open one
    assert agg.dropped == 6


async def test_bars_are_upserted_and_merge_with_what_is_stored(db, metrics):
    agg = CandleAggregator()
    store = CandleStore(db, agg, metrics, retention_days=30)
    feed(agg, (1, "100", "1000"), (10, "110", "1001"))
    assert await store.flush() == 1
    # The same minute again, as a second ingestor after a failover would see it.
    other = CandleAggregator()
    feed(other, (30, "95", "2000"), (40, "99", "2000.5"))
    await CandleStore(db, other, metrics, retention_days=30).flush()
    (bar,) = await query_candles(db, exchange="binance", symbol="BTC/USDT", interval="1m", limit=10)
    assert (bar.open, bar.high, bar.low, bar.close) == (100, 110, 95, 99)


async def test_longer_intervals_are_aggregated_from_minute_bars(db, metrics):
    agg = CandleAggregator()
    store = CandleStore(db, agg, metrics, retention_days=30)
    for minute, price in enumerate(["100", "104", "97", "101", "103", "99"]):
        feed(agg, (minute * 60, price, str(1000 + minute)))
    await store.flush()
    bars = await query_candles(db, exchange="binance", symbol="BTC/USDT", interval="5m", limit=10)
    assert [(b.start, b.open, b.high, b.low, b.close) for b in bars] == [
        (T0, 100, 104, 97, 103),
        (T0 + timedelta(minutes=5), 99, 99, 99, 99),
    ]


async def test_bars_older_than_the_retention_period_are_deleted(db, metrics):
    agg = CandleAggregator()
    store = CandleStore(db, agg, metrics, retention_days=1)
    feed(agg, (0, "100", "1"), (60, "100", "1"))
    agg.add(ticker(last="100", at=T0 + timedelta(days=2)))
    await store.flush()
    removed = await store.prune(now=T0 + timedelta(days=2, minutes=5))
    assert removed == 2
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(CandleRow)) == 1
