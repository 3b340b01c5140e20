"""Market history in PostgreSQL: candle queries and the Fear & Greed index."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError

from sage.errors import Unavailable
from sage.market.models import Candle, FearGreedReading, fear_greed_to_wire
from sage.store.cache import Cache
from sage.store.db import Database
from sage.store.market_tables import CandleRow, FearGreedRow

log = logging.getLogger(__name__)

INTERVALS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "4h": 14_400,
    "1d": 86_400,
    "1w": 604_800,  # weeks start on Monday 00:00 UTC, as Binance's 1w klines do
}
DB_ERRORS = (OSError, OperationalError, DBAPIError, TimeoutError)


def cancelling() -> bool:
    """True while the current task is being cancelled. A cancellation that lands inside a
    database, Valkey or HTTP call can come out as that library's error (valkey-py turns it
    into a read TimeoutError); a loop that catches those calls `stop_if_cancelled()` first."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled() -> None:
    """Raise CancelledError if the current task is being cancelled: in an `except` for a
    library error (re-raising that error instead would end the task as failed, so its
    TaskGroup raises an ExceptionGroup and `aclose()` a traceback), and in loops before
    they wait again (on Python 3.11 a cancellation can also be lost inside a library
    call, `asyncio.wait_for` returning a result it raced with, but the task's
    `cancelling()` count still shows it)."""
    if cancelling():
        raise asyncio.CancelledError


_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday at 00:00 UTC: bars align to the clock

# Intervals stored as bars (live 1m; REST backfill 1m, 1h, 1d) and, for each served
# interval, the stored one it is built from.
NATIVE: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86_400}
BUILT_FROM: dict[str, str] = {"1m": "1m", "5m": "1m", "15m": "1m", "1h": "1h", "4h": "1h", "1d": "1d", "1w": "1d"}

_BAR = """(array_agg(open ORDER BY start))[1] AS open, max(high) AS high, min(low) AS low,
          (array_agg(close ORDER BY start DESC))[1] AS close, sum(volume) AS volume, sum(ticks) AS ticks"""
_STORED = """SELECT start, open, high, low, close, volume, ticks FROM market_candles
              WHERE exchange = :exchange AND symbol = :symbol AND interval = :base
                AND start >= (SELECT since FROM bounds)"""
# The window ends at the newest bar, not at the clock: a symbol whose data stopped still
# shows its last `limit` bars. Two index-only lookups (one per stored interval).
_BOUNDS = """SELECT GREATEST(
                 (SELECT max(start) FROM market_candles
                   WHERE exchange = :exchange AND symbol = :symbol AND interval = '1m'),
                 (SELECT max(start) FROM market_candles
                   WHERE exchange = :exchange AND symbol = :symbol AND interval = :base)
             ) - CAST(:span AS interval) AS since"""
# Where no stored bar of the base interval exists (hours and days since the last backfill),
# the live minute bars stand in, aggregated to the base interval.
_FROM_MINUTES = f"""SELECT date_bin(:base_step, start, :origin) AS start, {_BAR}
                  FROM market_candles m
                 WHERE exchange = :exchange AND symbol = :symbol AND interval = '1m'
                   AND start >= (SELECT since FROM bounds)
              GROUP BY 1
                HAVING NOT EXISTS (
                       SELECT 1 FROM market_candles n
                        WHERE n.exchange = :exchange AND n.symbol = :symbol AND n.interval = :base
                          AND n.start = date_bin(:base_step, min(m.start), :origin))"""


def _aggregate_sql(base: str) -> str:
    source = _STORED if base == "1m" else f"{_STORED} UNION ALL {_FROM_MINUTES}"
    return f"""
    WITH bounds AS ({_BOUNDS}), base AS ({source})
    SELECT date_bin(:step, start, :origin) AS bucket, {_BAR}
      FROM base
  GROUP BY bucket
  ORDER BY bucket DESC
     LIMIT :limit
    """


def fear_greed_key(cache: Cache) -> str:
    return cache.key("market", "fear_greed")


async def query_candles(db: Database, *, exchange: str, symbol: str, interval: str, limit: int) -> list[Candle]:
    """The newest `limit` bars (ending at the newest stored bar), oldest first."""
    step = INTERVALS[interval]
    async with db.session() as session:
        if step == 60:
            rows = (
                await session.execute(
                    select(CandleRow)
                    .where(CandleRow.exchange == exchange, CandleRow.symbol == symbol, CandleRow.interval == "1m")
                    .order_by(CandleRow.start.desc())
                    .limit(limit)
                )
            ).scalars()
            candles = [
                Candle(r.exchange, r.symbol, r.start, r.open, r.high, r.low, r.close, r.volume, r.ticks) for r in rows
            ]
        else:
            base = BUILT_FROM[interval]
            result = await session.execute(
                text(_aggregate_sql(base)),
                {
                    "base": base,
                    "base_step": timedelta(seconds=NATIVE[base]),
                    "step": timedelta(seconds=step),
                    "origin": _ORIGIN,
                    "exchange": exchange,
                    "symbol": symbol,
                    "span": timedelta(seconds=step * (limit + 1)),
                    "limit": limit,
                },
            )
            candles = [
                Candle(
                    exchange,
                    symbol,
                    row.bucket,
                    Decimal(row.open),
                    Decimal(row.high),
                    Decimal(row.low),
                    Decimal(row.close),
                    Decimal(row.volume),
                    int(row.ticks),
                )
                for row in result
            ]
    candles.reverse()
    return candles


async def save_fear_greed(db: Database, readings: list[FearGreedReading]) -> None:
    if not readings:
        return
    rows = {r.as_of: {"as_of": r.as_of, "value": r.value, "classification": r.classification} for r in readings}
    stmt = insert(FearGreedRow).values(list(rows.values()))
    stmt = stmt.on_conflict_do_update(
        index_elements=[FearGreedRow.as_of],
        set_={"value": stmt.excluded.value, "classification": stmt.excluded.classification},
    )
    async with db.session() as session:
        await session.execute(stmt)
        await session.commit()


# The index starts on 2018-02-01; a stored history reaching back to then is complete.
FEAR_GREED_FIRST_DAY = datetime(2018, 2, 1, tzinfo=UTC)


async def fear_greed_history_complete(db: Database) -> bool:
    async with db.session() as session:
        oldest = (await session.execute(select(func.min(FearGreedRow.as_of)))).scalar_one_or_none()
    return oldest is not None and oldest <= FEAR_GREED_FIRST_DAY + timedelta(days=7)


async def fear_greed_history(db: Database, limit: int) -> list[FearGreedReading]:
    """Newest first."""
    async with db.session() as session:
        rows = (await session.execute(select(FearGreedRow).order_by(FearGreedRow.as_of.desc()).limit(limit))).scalars()
        return [FearGreedReading(r.value, r.classification, r.as_of) for r in rows]


class FearGreedSink:
    """Where the poller's readings go: the newest into the cache (TTL = the spec's
    fearGreed, 1800 s), all of them into the history table."""

    def __init__(self, cache: Cache, db: Database) -> None:
        self.cache = cache
        self.db = db
        self.saved = 0

    async def __call__(self, readings: list[FearGreedReading]) -> None:
        if not readings:
            return
        newest = max(readings, key=lambda r: r.as_of)
        await self.cache.set_json(fear_greed_key(self.cache), fear_greed_to_wire(newest), self.cache.ttl.fear_greed)
        try:
            await save_fear_greed(self.db, readings)
        except DB_ERRORS as exc:
            log.warning("fear & greed history not saved", extra={"error": type(exc).__name__})
            return
        self.saved += len(readings)


# Bars of a time range, in one statement and one round trip: the first exchange (in the
# caller's preference order) with any bar in the range, then the same composition as
# `query_candles` (stored bars of the base interval, live minute bars aggregated where no
# stored one exists; a minute bar and the hour bar backfilled over it are never both
# counted), aggregated to the interval asked for. The interval is part of every lookup, so
# each one is a range of the primary key (exchange, symbol, interval, start).
_RANGE_PICK = """SELECT e.exchange FROM unnest($1::text[]) WITH ORDINALITY AS e(exchange, n)
                   WHERE EXISTS (SELECT 1 FROM market_candles c
                                  WHERE c.exchange = e.exchange AND c.symbol = $2 AND c.interval IN ('1m', $3)
                                    AND c.start >= $4 AND c.start < $5)
                ORDER BY e.n LIMIT 1"""
# (a stored bar's slot: its own start, as stored bars are aligned to their interval; the
# outer bucketing gives the same result either way)
_RANGE_STORED = """SELECT date_bin($6, start, $8) AS start, open, high, low, close, volume, ticks FROM market_candles
                    WHERE exchange = (SELECT exchange FROM pick) AND symbol = $2 AND interval = $3
                      AND start >= $4 AND start < $5"""
_RANGE_FROM_MINUTES = f"""SELECT date_bin($6, start, $8) AS start, {_BAR}
                          FROM market_candles m
                         WHERE exchange = (SELECT exchange FROM pick) AND symbol = $2 AND interval = '1m'
                           AND start >= $4 AND start < $5
                      GROUP BY 1
                        HAVING NOT EXISTS (
                               SELECT 1 FROM market_candles n
                                WHERE n.exchange = (SELECT exchange FROM pick) AND n.symbol = $2 AND n.interval = $3
                                  AND n.start >= $4 AND n.start = date_bin($6, min(m.start), $8))"""


def _range_sql(base: str) -> str:
    source = _RANGE_STORED if base == "1m" else f"{_RANGE_STORED} UNION ALL {_RANGE_FROM_MINUTES}"
    return f"""
    WITH pick AS ({_RANGE_PICK}), base AS ({source})
    SELECT (SELECT exchange FROM pick) AS exchange, date_bin($7, start, $8) AS bucket, {_BAR}
      FROM base
  GROUP BY bucket
  ORDER BY bucket
     LIMIT $9
    """


_RANGE_SQL = {base: _range_sql(base) for base in NATIVE}


async def query_candle_range(
    db: Database,
    *,
    exchanges: tuple[str, ...],
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[Candle]:
    """Bars of `interval` starting in [start, end), oldest first, at most `limit`, from the
    first of `exchanges` with any bar in the range (aggregated with the same clock alignment
    and the same stored/minute composition as `query_candles`)."""
    base = BUILT_FROM[interval]
    # one statement on the pooled driver connection: no BEGIN / ROLLBACK around it, and
    # asyncpg keeps it prepared
    async with db.driver_connection() as conn:
        rows = await conn.fetch(
            _RANGE_SQL[base],
            list(exchanges),
            symbol,
            base,
            start,
            end,
            timedelta(seconds=NATIVE[base]),
            timedelta(seconds=INTERVALS[interval]),
            _ORIGIN,
            limit,
        )
    return [
        Candle(
            row["exchange"],
            symbol,
            row["bucket"],
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
            int(row["ticks"]),
        )
        for row in rows
    ]


class CandleHistory:
    """Candles over a time range from the first exchange (in preference order) that has any."""

    def __init__(self, db: Database, exchanges: tuple[str, ...]) -> None:
        self.db = db
        self.exchanges = exchanges

    async def candles_between(
        self, symbol: str, *, interval: str, start: datetime, end: datetime, limit: int
    ) -> list[Candle]:
        try:
            return await query_candle_range(
                self.db,
                exchanges=self.exchanges,
                symbol=symbol,
                interval=interval,
                start=start,
                end=end,
                limit=limit,
            )
        except (*DB_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError):
            raise Unavailable("Market history is temporarily unavailable", retry_after=5) from None
