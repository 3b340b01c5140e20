"""Persisted performance points (sage.portfolio.points, migration 0016): stored once settled,
dropped by the database when the ledger or the candles they were valued from change, and
never stored from a valuation the ledger or the candles have moved past."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from sqlalchemy import text

from sage.portfolio import points
from sage.portfolio.performance import BENCHMARK, HOUR, Point, ValuedPoint, candle_closes, grid
from sage.portfolio.service import PortfolioService, TradeRequest
from sage.store.db import Database
from tests.portfolio.support import (
    add_closes,
    cold_performance,
    deposit_from_outside,
    ledger_version,
    portfolio_service,
)

D = Decimal
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # in the past: every step boundary is settled
START = NOW - timedelta(days=1)
TIMES = grid(START, NOW, HOUR)
BOUNDARIES = TIMES[1:-1]


async def scalar(db: Database, sql: str, **params: object) -> object:
    async with db.session() as session:
        return await session.scalar(text(sql), params)


async def execute(db: Database, sql: str, **params: object) -> None:
    async with db.session() as session:
        await session.execute(text(sql), params)
        await session.commit()


async def stored_times(db: Database, portfolio_id: uuid.UUID) -> list[datetime]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT at FROM portfolio_points WHERE portfolio_id = :p ORDER BY at"), {"p": portfolio_id}
        )
        return [r[0] for r in rows]


async def epoch(db: Database) -> int:
    return int(await scalar(db, "SELECT epoch FROM market_candle_epoch"))  # type: ignore[arg-type]


async def eth_portfolio(db: Database, user_id: uuid.UUID, now: datetime = NOW) -> tuple[PortfolioService, uuid.UUID]:
    """A portfolio holding 2 ETH over the whole day, with BTC and ETH closes at every point."""
    await add_closes(
        db, BENCHMARK, {t: D(50000) + i * 10 for i, t in enumerate(grid(now - timedelta(days=1), now, HOUR))}
    )
    await add_closes(db, "ETH/USDT", {t: D(2000) + i for i, t in enumerate(grid(now - timedelta(days=1), now, HOUR))})
    sage = portfolio_service(db, now)
    portfolio = await sage.default(user_id)
    assert portfolio is not None
    before = now - timedelta(days=2)
    await sage.book(user_id, portfolio.id, TradeRequest(kind="deposit", quantity=D(10000), executed_at=before))
    await sage.book(
        user_id,
        portfolio.id,
        TradeRequest(kind="buy", symbol="ETH/USDT", quantity=D(2), price=D(2000), executed_at=before),
    )
    return sage, portfolio.id


async def test_a_series_stores_its_step_boundaries_not_its_moving_ends(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    assert await stored_times(db, portfolio_id) == BOUNDARIES


async def test_only_points_ten_minutes_old_by_the_database_clock_are_stored(db, user_id):
    now = datetime.now(UTC) + timedelta(hours=3)  # a clock ahead of the database's
    sage, portfolio_id = await eth_portfolio(db, user_id, now)
    before = await scalar(db, "SELECT now()")
    await sage.performance(user_id, portfolio_id, "1d")
    after = await scalar(db, "SELECT now()")
    boundaries = grid(now - timedelta(days=1), now, HOUR)[1:-1]
    stored = await stored_times(db, portfolio_id)
    assert isinstance(before, datetime) and isinstance(after, datetime)
    assert all(t <= after - points.STORE_AFTER for t in stored)
    assert [t for t in boundaries if t <= before - points.STORE_AFTER] == [
        t for t in stored if t <= before - points.STORE_AFTER
    ]
    assert len(stored) < len(boundaries)  # the last three hours are in the database's future


async def test_a_candle_written_into_a_past_step_shows_at_once_and_drops_only_that_steps_points(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    first = await sage.performance(user_id, portfolio_id, "1d")
    moved = BOUNDARIES[5]
    e = await epoch(db)
    # a later bar in the step before `moved` (starting 30 s before it, after the stored bar's
    # start a minute before: a backfill after an outage): the new close there
    await add_closes(db, "ETH/USDT", {moved + timedelta(seconds=30): D(3000)})
    assert await epoch(db) == e + 1
    assert moved not in await stored_times(db, portfolio_id)
    assert len(await stored_times(db, portfolio_id)) == len(BOUNDARIES) - 1
    after = await portfolio_service(db, NOW).performance(user_id, portfolio_id, "1d")  # another process
    assert first is not None and after is not None
    changed = [a.at for a, b in zip(first.points, after.points, strict=True) if a.value != b.value]
    assert changed == [moved]
    assert next(p for p in after.points if p.at == moved).value == D(10000) - D(4000) - D(4) + 2 * D(3000)  # 0.1 % fee
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)


async def test_after_a_ledger_edit_a_process_probes_only_the_closes_it_has_not_seen(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    first = await sage.performance(user_id, portfolio_id, "1d")
    probed = sage.closes.probed
    # a write from outside Sage: the points from its time on are dropped
    await deposit_from_outside(db, portfolio_id, 7, BOUNDARIES[2])
    after = await sage.performance(user_id, portfolio_id, "1d")
    assert sage.closes.probed - probed == 4  # ETH and BTC at the range's start and end; the rest kept
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)
    assert first is not None and after is not None
    assert [b.value - a.value for a, b in zip(first.points, after.points, strict=True)][3:] == [7] * 22


async def test_kept_closes_are_not_used_once_a_candle_is_written_into_the_past(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    moved = BOUNDARIES[5]
    await add_closes(db, "ETH/USDT", {moved + timedelta(seconds=30): D(3000)})  # epoch + 1
    after = await sage.performance(user_id, portfolio_id, "1d")  # the same process
    assert after is not None and next(p for p in after.points if p.at == moved).value == D(11996)
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)


async def test_closes_of_steps_younger_than_ten_minutes_by_the_database_clock_are_not_kept(db, user_id):
    now = datetime.now(UTC) + timedelta(hours=3)  # a clock ahead of the database's
    sage, portfolio_id = await eth_portfolio(db, user_id, now)
    await sage.performance(user_id, portfolio_id, "1d")
    database_now = await scalar(db, "SELECT now()")
    assert isinstance(database_now, datetime)
    kept = {t for (_, _, t) in sage.closes._kept}
    assert kept and all(t <= database_now - points.STORE_AFTER for t in kept)


async def test_the_live_minutes_bars_drop_nothing_and_leave_the_epoch(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    e = await epoch(db)
    live = (await scalar(db, "SELECT date_trunc('minute', now())")).replace(tzinfo=UTC)  # type: ignore[union-attr]
    for close in (D(1), D(2)):  # an insert, then the upsert's update of the same bar
        await execute(
            db,
            "INSERT INTO market_candles (exchange, symbol, interval, start, open, high, low, close, volume, ticks)"
            " VALUES ('binance', 'ETH/USDT', '1m', :s, :c, :c, :c, :c, 1, 1)"
            " ON CONFLICT (exchange, symbol, interval, start) DO UPDATE SET close = excluded.close",
            s=live,
            c=close,
        )
    assert await epoch(db) == e
    assert await stored_times(db, portfolio_id) == BOUNDARIES


async def test_deleting_old_bars_drops_the_points_they_valued(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    gone = BOUNDARIES[3]
    await execute(
        db, "DELETE FROM market_candles WHERE symbol = 'ETH/USDT' AND start = :s", s=gone - timedelta(minutes=1)
    )
    assert gone not in await stored_times(db, portfolio_id)
    after = await portfolio_service(db, NOW).performance(user_id, portfolio_id, "1d")
    assert (
        after is not None and next(p for p in after.points if p.at == gone).value is None
    )  # no close left in its step
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)


async def test_truncating_the_candles_drops_every_point(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    await execute(db, "TRUNCATE market_candles")
    assert await stored_times(db, portfolio_id) == []


async def test_a_ledger_write_from_outside_sage_drops_the_points_from_its_time_on(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    at = BOUNDARIES[10]
    await deposit_from_outside(db, portfolio_id, 7, at)
    assert await stored_times(db, portfolio_id) == BOUNDARIES[:10]  # a point includes what executed at its time
    after = await portfolio_service(db, NOW).performance(user_id, portfolio_id, "1d")
    assert after == await cold_performance(db, user_id, portfolio_id, "1d", NOW)


def one_point() -> list[ValuedPoint]:
    return [ValuedPoint(Point(BOUNDARIES[0], D(1), D(1), None), (), D(1))]


async def test_points_valued_before_a_candle_write_into_the_past_are_not_stored(db, user_id):
    _, portfolio_id = await eth_portfolio(db, user_id)
    version = await ledger_version(db, portfolio_id)
    closes = await candle_closes(db, [(BENCHMARK, BOUNDARIES[0])], HOUR)
    assert closes.epoch is not None and closes.read_at is not None
    await add_closes(db, BENCHMARK, {START - timedelta(days=3): D(1)})  # a backfill, anywhere in the past
    stored = await points.store(
        db, portfolio_id, HOUR, one_point(), version=version, epoch=closes.epoch, read_at=closes.read_at, now=NOW
    )
    assert stored == 0 and await stored_times(db, portfolio_id) == []


async def test_points_of_a_version_the_ledger_moved_past_are_not_stored(db, user_id):
    _, portfolio_id = await eth_portfolio(db, user_id)
    version = await ledger_version(db, portfolio_id)
    closes = await candle_closes(db, [(BENCHMARK, BOUNDARIES[0])], HOUR)
    assert closes.epoch is not None and closes.read_at is not None
    stored = await points.store(
        db, portfolio_id, HOUR, one_point(), version=version - 1, epoch=closes.epoch, read_at=closes.read_at, now=NOW
    )
    assert stored == 0
    stored = await points.store(
        db, portfolio_id, HOUR, one_point(), version=version, epoch=closes.epoch, read_at=closes.read_at, now=NOW
    )
    assert stored == 1


async def test_points_from_closes_read_over_a_minute_ago_are_not_stored(db, user_id):
    _, portfolio_id = await eth_portfolio(db, user_id)
    version = await ledger_version(db, portfolio_id)
    closes = await candle_closes(db, [(BENCHMARK, BOUNDARIES[0])], HOUR)
    assert closes.epoch is not None and closes.read_at is not None
    stale = closes.read_at - points.STORE_WITHIN - timedelta(seconds=1)
    assert (
        await points.store(
            db, portfolio_id, HOUR, one_point(), version=version, epoch=closes.epoch, read_at=stale, now=NOW
        )
        == 0
    )


async def test_a_candle_write_waits_for_a_reader_storing_points_and_then_drops_them(db, user_id, database_url):
    """The trigger bumps the epoch (waiting for the reader's FOR SHARE) before it deletes, so
    the points a reader stores while a backfill runs are gone once the backfill commits."""
    _, portfolio_id = await eth_portfolio(db, user_id)
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    reader, writer = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        reading = reader.transaction()
        await reading.start()
        await reader.fetchval("SELECT epoch FROM market_candle_epoch FOR SHARE")
        await reader.execute(
            "INSERT INTO portfolio_points (portfolio_id, step_seconds, at, value, net_deposits, benchmark, missing)"
            " VALUES ($1, 3600, $2, 1, 1, 1, '{}')",
            portfolio_id,
            BOUNDARIES[4],
        )
        backfill = asyncio.ensure_future(
            writer.execute(
                "INSERT INTO market_candles (exchange, symbol, interval, start, open, high, low, close, volume, ticks)"
                " VALUES ('binance', 'ETH/USDT', '1m', $1, 1, 1, 1, 1, 1, 1)",
                BOUNDARIES[4] - timedelta(seconds=20),
            )
        )
        async with asyncio.timeout(30):  # a guard against hanging, not a measurement
            while not await waiting_for_lock(db):
                await asyncio.sleep(0.02)
        assert not backfill.done()
        await reading.commit()
        async with asyncio.timeout(30):
            await backfill
        assert await stored_times(db, portfolio_id) == []
    finally:
        await reader.close()
        await writer.close()


async def waiting_for_lock(db: Database) -> bool:
    waiting = await scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    return bool(waiting)


async def test_without_the_epoch_row_series_are_valued_but_nothing_is_stored(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await execute(db, "DELETE FROM market_candle_epoch")
    result = await sage.performance(user_id, portfolio_id, "1d")
    assert result is not None and result.complete
    assert await stored_times(db, portfolio_id) == []


async def test_storing_hourly_points_drops_those_no_range_reads_any_more(db, user_id):
    sage, portfolio_id = await eth_portfolio(db, user_id)
    await sage.performance(user_id, portfolio_id, "1d")
    assert await stored_times(db, portfolio_id) == BOUNDARIES
    now = NOW + timedelta(days=40)
    recent = portfolio_service(db, now)
    await add_closes(db, BENCHMARK, {t: D(1) for t in grid(now - timedelta(days=1), now, HOUR)})
    await recent.performance(user_id, portfolio_id, "1d")
    stored = await stored_times(db, portfolio_id)
    assert stored and all(t > now - timedelta(days=31) for t in stored)  # the old hourly points are gone
