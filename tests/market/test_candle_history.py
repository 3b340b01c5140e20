"""CandleHistory.candles_between: the candle range the chat's get_candles tool reads."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sage.market.history import CandleHistory
from sage.store.market_tables import CandleRow

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def bar(exchange: str, interval: str, start: datetime, price: str, volume: str) -> CandleRow:
    p = Decimal(price)
    return CandleRow(
        exchange=exchange,
        symbol="BTC/USDT",
        interval=interval,
        start=start,
        open=p,
        high=p + 1,
        low=p - 1,
        close=p,
        volume=Decimal(volume),
        ticks=1,
    )


async def add(db, rows: list[CandleRow]) -> None:
    async with db.session() as session:
        session.add_all(rows)
        await session.commit()


async def test_a_backfilled_hour_bar_is_not_counted_again_with_the_minute_bars_under_it(db):
    minutes = [bar("binance", "1m", T0 + timedelta(minutes=m), str(100 + m), "1") for m in range(120)]
    await add(db, [*minutes, bar("binance", "1h", T0, "100", "60")])
    history = CandleHistory(db, ("binance",))

    first, second = await history.candles_between(
        "BTC/USDT", interval="1h", start=T0, end=T0 + timedelta(hours=2), limit=200
    )

    # 12:00 is the stored hour bar alone; 13:00 (no stored bar) is built from its 60 minutes
    assert (first.start, first.open, first.close, first.volume) == (T0, 100, 100, 60)
    assert (second.start, second.open, second.high, second.low, second.close, second.volume) == (
        T0 + timedelta(hours=1),
        160,
        220,
        159,
        219,
        60,
    )


async def test_the_first_exchange_in_preference_order_with_bars_in_the_range_answers(db):
    await add(
        db,
        [
            bar("gateio", "1m", T0, "101", "2"),
            bar("upbit", "1m", T0, "102", "3"),
            bar("binance", "1m", T0 - timedelta(days=1), "100", "1"),  # outside the range
        ],
    )
    history = CandleHistory(db, ("binance", "upbit", "gateio"))

    (found,) = await history.candles_between(
        "BTC/USDT", interval="5m", start=T0, end=T0 + timedelta(minutes=5), limit=200
    )

    assert (found.exchange, found.start, found.open, found.volume) == ("upbit", T0, 102, 3)


async def test_a_range_with_no_bars_anywhere_is_empty(db):
    history = CandleHistory(db, ("binance", "upbit"))

    assert (
        await history.candles_between("BTC/USDT", interval="1m", start=T0, end=T0 + timedelta(hours=1), limit=10) == []
    )
