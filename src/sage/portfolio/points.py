"""Persisted performance points (`portfolio_points`, migration 0016_portfolio_points).

A 1-year series of a 50-symbol portfolio is 367 points, each valued at up to 50 candle closes:
~18,000 index probes and the ledger's state at every point, the same answer every time until
the ledger or the candles of a point's step change. So each valued step-boundary point (not
the range's start and end, which move with the clock) is stored, and a series values only
the points nobody has stored yet: in a new process, the range's start and end.

Derived, never truth: what makes a point wrong deletes it, in the writer's own transaction
(the triggers of migration 0016), whoever writes (Sage, a COPY, psql):
- a ledger write deletes the portfolio's points at or after the earliest time it touches;
- a candle statement whose rows include one starting more than `SETTLING` before the writing
  transaction began deletes the points in (earliest start, latest start + step] and bumps
  `market_candle_epoch`.

Why no stored point can miss a candle write, with P the time a reader stores (its
transaction's start) and R the snapshot its closes were read in (at or after `read_at`):
- points are stored only at or before P - `STORE_AFTER` (10 minutes, by the database's clock);
- a reader stores only if the closes were read less than `STORE_WITHIN` (1 minute) before P,
  while holding the epoch row FOR SHARE and seeing the epoch it read with the closes: a
  trigger that fired takes that row first, so either the reader waits for the write and sees
  a new epoch (and stores nothing), or the write waits for the reader and then deletes what
  it stored;
- a trigger that did not fire wrote only bars starting at or after T0 - 5 min (T0: its
  transaction's start), and a bar starting at s changes only points after s. Such a bar in
  a stored point's step means T0 - 5 min <= s < at <= P - 10 min, so T0 < P - 5 min < R - 4
  min: the write happened in a transaction begun more than 4 minutes before the reader's
  snapshot and committed after it (else the reader saw the bar). Sage's candle writers (the
  live flush, the REST backfill, retention) commit at once; a hand-written transaction that
  writes candles and stays open for minutes is the one case not covered.
A ledger write is ordered the same way by the portfolio's row (FOR SHARE and its
ledger_version, as checkpoints are: sage.portfolio.checkpoints).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sage.portfolio.performance import DAY, HOUR, HOURLY_UP_TO, Point, ValuedPoint
from sage.store.db import Database

STORE_AFTER = timedelta(minutes=10)  # a point is stored this long after its time, not before
STORE_WITHIN = timedelta(minutes=1)  # closes read longer ago than this are not stored from

_READ_SQL = """SELECT at, value, net_deposits, benchmark, missing FROM portfolio_points
WHERE portfolio_id = $1 AND step_seconds = $2 AND at >= $3 AND at <= $4"""
_LOCK_PORTFOLIO_SQL = "SELECT ledger_version FROM portfolios WHERE id = $1 FOR SHARE"
_LOCK_EPOCH_SQL = "SELECT epoch FROM market_candle_epoch FOR SHARE"
_INSERT_SQL = f"""INSERT INTO portfolio_points (portfolio_id, step_seconds, at, value, net_deposits, benchmark, missing)
SELECT $1, $2, p.at, p.value, p.net_deposits, p.benchmark, string_to_array(p.missing, ' ')
FROM unnest($3::timestamptz[], $4::numeric[], $5::numeric[], $6::numeric[], $7::text[])
     AS p(at, value, net_deposits, benchmark, missing)
WHERE p.at <= now() - interval '{int(STORE_AFTER.total_seconds())} seconds'
  AND clock_timestamp() - $8::timestamptz < interval '{int(STORE_WITHIN.total_seconds())} seconds'
ON CONFLICT DO NOTHING"""
# hourly points serve ranges of at most 30 days (sage.portfolio.performance.HOURLY_UP_TO): those
# older than that (and a day) before the series' own time are never read again, so a store of
# hourly points drops them
_PRUNE_SQL = (
    f"DELETE FROM portfolio_points WHERE portfolio_id = $1 AND step_seconds = {int(HOUR.total_seconds())} AND at < $2"
)


def step_seconds(step: timedelta) -> int:
    return int(step.total_seconds())


async def read(
    raw: Any, portfolio_id: uuid.UUID, step: timedelta, times: Sequence[datetime]
) -> dict[datetime, ValuedPoint]:
    """The stored points among `times` (ascending), through an asyncpg connection."""
    wanted = set(times)
    rows = await raw.fetch(_READ_SQL, portfolio_id, step_seconds(step), times[0], times[-1])
    return {
        at: ValuedPoint(Point(at, value, net, None), tuple(missing), benchmark)
        for at, value, net, benchmark, missing in rows
        if at in wanted
    }


async def store(
    db: Database,
    portfolio_id: uuid.UUID,
    step: timedelta,
    valued: Sequence[ValuedPoint],
    *,
    version: int,
    epoch: int,
    read_at: datetime,
    now: datetime,
) -> int:
    """Store `valued` (of the ledger at `version`, at closes read at `read_at` under `epoch`),
    the settled ones only; nothing when the ledger or the candles moved on since. `now`: the
    series' time (hourly points too old for any range from it are dropped). Returns how many
    rows were inserted."""
    if not valued:
        return 0
    async with db.session() as session:
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        if await raw.fetchval(_LOCK_PORTFOLIO_SQL, portfolio_id) != version:  # type: ignore[union-attr]
            await session.rollback()
            return 0
        if await raw.fetchval(_LOCK_EPOCH_SQL) != epoch:  # type: ignore[union-attr]
            await session.rollback()
            return 0
        status = await raw.execute(  # type: ignore[union-attr]
            _INSERT_SQL,
            portfolio_id,
            step_seconds(step),
            [v.point.at for v in valued],
            [v.point.value for v in valued],
            [v.point.net_deposits for v in valued],
            [v.benchmark for v in valued],
            [" ".join(v.missing) for v in valued],
            read_at,
        )
        if step == HOUR:
            await raw.execute(_PRUNE_SQL, portfolio_id, now - HOURLY_UP_TO - DAY)  # type: ignore[union-attr]
        await session.commit()
    return int(status.rsplit(" ", 1)[-1])
