"""A ledger's final state without replaying its whole history: persisted checkpoints.

A summary needs only the final `Ledger`. A process that has not read the portfolio yet (a
new worker, a restart) or that reads it after a back-dated write would replay every
transaction; instead it reads, in one statement (one snapshot), the portfolio's
`ledger_version`, its latest checkpoint in `portfolio_checkpoints` and the transactions
after it, and replays only those. Checkpoints are derived, never truth:

- They are written by readers, after every `PERSIST_EVERY`-th transaction and after the last
  one read when at least `PERSIST_TAIL` were replayed, in a transaction that holds the
  portfolio's row `FOR SHARE` and writes only if `ledger_version` is still the version it
  replayed (a writer's trigger takes that row first, so it waits for the reader or the reader
  sees the new version and writes nothing).
- The transaction triggers (migration 0015) delete every checkpoint at or after the earliest
  time a write touches, so one that exists was derived from the history as it still is up to
  it: a back-dated edit costs the replay from the latest checkpoint before it, not from the
  start.

Amounts are kept as the Decimal's string (exact, exponent included: a ledger read from a
checkpoint prints exactly as one replayed), times as ISO 8601 with their offset.
"""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sage.errors import NotFound
from sage.portfolio.ledger import PRECISION, Entry, Holding, Ledger
from sage.portfolio.performance import Holdings
from sage.store.db import Database

PERSIST_EVERY = 1_000  # transactions between two kept checkpoints of a history
PERSIST_TAIL = 64  # a read that replayed at least this many transactions stores where it ended

# version, latest checkpoint (part 0), then the transactions after it (part 1): one statement
_READ_SQL = """
WITH c AS (
    SELECT executed_at, seq, position, state::text AS state FROM portfolio_checkpoints
    WHERE portfolio_id = $1 ORDER BY executed_at DESC, seq DESC LIMIT 1
)
SELECT 0 AS part, p.ledger_version, c.position, c.state, c.executed_at AS last_at,
       NULL::uuid AS id, NULL::text AS kind, NULL::text AS symbol, NULL::numeric AS quantity,
       NULL::numeric AS price, NULL::numeric AS fee, NULL::timestamptz AS executed_at, NULL::bigint AS seq
FROM portfolios p LEFT JOIN c ON true WHERE p.id = $1
UNION ALL
SELECT 1, NULL, NULL, NULL, NULL, t.id, t.kind, t.symbol, t.quantity, t.price, t.fee, t.executed_at, t.seq
FROM portfolio_transactions t
WHERE t.portfolio_id = $1
  AND (NOT EXISTS (SELECT 1 FROM c) OR (t.executed_at, t.seq) > (SELECT c.executed_at, c.seq FROM c))
ORDER BY part, executed_at, seq
"""

# For each time asked for, the latest checkpoint at or before it; times sharing one form a
# group (part 0: the checkpoint's state, the latest time of the group), then each group's
# transactions after its checkpoint up to that time (part 1). Groups never overlap: a time
# after a later checkpoint belongs to that one's group.
_STATES_SQL = """
WITH want AS (SELECT DISTINCT w.t FROM unnest($2::timestamptz[]) AS w(t)),
base AS (
    SELECT w.t, c.executed_at, c.seq, c.position, c.state
    FROM want w LEFT JOIN LATERAL (
        SELECT executed_at, seq, position, state FROM portfolio_checkpoints
        WHERE portfolio_id = $1 AND executed_at <= w.t ORDER BY executed_at DESC, seq DESC LIMIT 1
    ) c ON true
),
grp AS (
    SELECT executed_at, seq, min(position) AS position, min(state::text) AS state, max(t) AS upto
    FROM base GROUP BY executed_at, seq
)
SELECT 0 AS part, g.executed_at AS from_at, g.seq AS from_seq, g.position, g.state,
       NULL::uuid AS id, NULL::text AS kind, NULL::text AS symbol, NULL::numeric AS quantity,
       NULL::numeric AS price, NULL::numeric AS fee, NULL::timestamptz AS executed_at, NULL::bigint AS seq
FROM grp g
UNION ALL
SELECT 1, g.executed_at, g.seq, NULL, NULL, t.id, t.kind, t.symbol, t.quantity, t.price, t.fee, t.executed_at, t.seq
FROM grp g JOIN portfolio_transactions t
  ON t.portfolio_id = $1 AND t.executed_at <= g.upto
 AND (g.executed_at IS NULL OR (t.executed_at, t.seq) > (g.executed_at, g.seq))
ORDER BY part, executed_at, seq
"""

_LOCK_SQL = "SELECT ledger_version FROM portfolios WHERE id = $1 FOR SHARE"
_INSERT_SQL = (
    "INSERT INTO portfolio_checkpoints (portfolio_id, ledger_version, executed_at, seq, position, state)"
    " SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::bigint[], $5::bigint[], $6::text[]::jsonb[])"
    " ON CONFLICT DO NOTHING"
)
# the last-read checkpoints before the newest one are superseded (the PERSIST_EVERY-th stay)
_PRUNE_SQL = "DELETE FROM portfolio_checkpoints WHERE portfolio_id = $1 AND position < $2 AND position % $3 <> 0"


@dataclass(frozen=True)
class Checkpoint:
    entry: Entry  # the last transaction included
    position: int  # how many transactions are included
    ledger: Ledger


@dataclass(frozen=True)
class Start:
    """What one read gives: the current version, the latest checkpoint (or the empty ledger
    before any transaction) and the transactions after it."""

    version: int
    position: int  # transactions the checkpoint includes
    ledger: Ledger  # the state after them (a fresh object: the caller may apply to it)
    last_at: datetime | None  # the time of the checkpoint's last transaction
    tail: tuple[Entry, ...]  # the transactions after it, in execution order


@dataclass(frozen=True)
class Replayed:
    version: int
    ledger: Ledger
    position: int  # transactions in the history
    started_at: int  # of them, how many the checkpoint it started from included
    last_at: datetime | None  # the time of the last transaction (None: none)
    checkpoints: tuple[Checkpoint, ...]  # to persist (PERSIST_EVERY-th, and the last when worth it)


async def read_start(session: AsyncSession, portfolio_id: uuid.UUID) -> Start:
    """The latest checkpoint and the transactions after it, in one statement (one snapshot)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    rows = await raw.driver_connection.fetch(_READ_SQL, portfolio_id)  # type: ignore[union-attr]
    if not rows or rows[0][0] != 0:
        raise NotFound("No such portfolio")
    head = rows[0]
    return Start(
        int(head[1]),
        int(head[2] or 0),
        Ledger() if head[3] is None else from_json(json.loads(head[3])),
        head[4],
        tuple(Entry(r[6], r[7], r[8], r[9], r[10], r[11], r[5], r[12]) for r in rows[1:]),
    )


async def read_ledger(session: AsyncSession, portfolio_id: uuid.UUID) -> Replayed:
    """The final ledger: the latest checkpoint and the transactions after it, replayed."""
    start = await read_start(session, portfolio_id)
    ledger = start.ledger
    keep: list[Checkpoint] = []
    position = start.position
    with decimal.localcontext(prec=PRECISION):
        for entry in start.tail:
            ledger.apply_exact(entry)
            position += 1
            if position % PERSIST_EVERY == 0:
                keep.append(Checkpoint(entry, position, _copy(ledger)))
    if start.tail and len(start.tail) >= PERSIST_TAIL and position % PERSIST_EVERY != 0:
        keep.append(Checkpoint(start.tail[-1], position, _copy(ledger)))
    last_at = start.tail[-1].executed_at if start.tail else start.last_at
    return Replayed(start.version, ledger, position, start.position, last_at, tuple(keep))


async def states_at(
    raw: Any, portfolio_id: uuid.UUID, times: Sequence[datetime]
) -> tuple[list[Holdings], list[Checkpoint]]:
    """The ledger's state at each of `times` (ascending) without reading the whole history:
    for each time the latest checkpoint at or before it and the transactions from there up to
    it, in one statement through an asyncpg connection (whose transaction gives the snapshot
    the caller read the version in). Also the checkpoints worth storing that the replay
    passed (every PERSIST_EVERY-th transaction)."""
    rows = await raw.fetch(_STATES_SQL, portfolio_id, list(times))
    groups: dict[tuple[datetime | None, int | None], tuple[int, Ledger]] = {}
    tails: dict[tuple[datetime | None, int | None], list[Entry]] = {}
    for r in rows:
        key = (r[1], r[2])
        if r[0] == 0:
            groups[key] = (int(r[3] or 0), Ledger() if r[4] is None else from_json(json.loads(r[4])))
            tails[key] = []
        else:
            tails[key].append(Entry(r[6], r[7], r[8], r[9], r[10], r[11], r[5], r[12]))
    # each time's group: the latest checkpoint at or before it (as the statement chose it)
    origin = [k for k in groups if k[0] is None]  # the times before any checkpoint
    starts = origin + sorted((k for k in groups if k[0] is not None), key=lambda k: (k[0], k[1]))
    out: list[Holdings] = []
    keep: list[Checkpoint] = []
    with decimal.localcontext(prec=PRECISION):
        g = -1
        ledger = Ledger()
        position = 0
        pending: list[Entry] = []
        for t in times:
            while g + 1 < len(starts) and _starts_by(starts[g + 1][0], t):
                g += 1
                position, base = groups[starts[g]]
                ledger, pending = _copy(base), list(reversed(tails[starts[g]]))
            while pending and pending[-1].executed_at <= t:
                entry = pending.pop()
                ledger.apply_exact(entry)
                position += 1
                if position % PERSIST_EVERY == 0:
                    keep.append(Checkpoint(entry, position, _copy(ledger)))
            out.append(Holdings(ledger.cash, ledger.net_deposits, ledger.quantities()))
    return out, keep


def _starts_by(checkpoint_at: datetime | None, t: datetime) -> bool:
    return checkpoint_at is None or checkpoint_at <= t


def of_snapshots(
    entries: Sequence[Entry], snapshots: Sequence[tuple[int, Ledger]], replayed_from: int
) -> tuple[Checkpoint, ...]:
    """The checkpoints worth storing of a replay of `entries` from position `replayed_from`
    (`snapshots`: (position, ledger) after every PERSIST_EVERY-th transaction and the last,
    from `sage.portfolio.state.derive`)."""
    return tuple(
        Checkpoint(entries[position - 1], position, ledger)
        for position, ledger in snapshots
        if position > replayed_from and (position % PERSIST_EVERY == 0 or position - replayed_from >= PERSIST_TAIL)
    )


async def store(db: Database, portfolio_id: uuid.UUID, version: int, checkpoints: tuple[Checkpoint, ...]) -> bool:
    """Persist `checkpoints` derived from `version`, unless the ledger has moved on since
    (then nothing is written: they may describe a history that no longer is)."""
    if not checkpoints:
        return False
    async with db.session() as session:
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        current = await raw.fetchval(_LOCK_SQL, portfolio_id)  # type: ignore[union-attr]
        if current != version:
            await session.rollback()
            return False
        await insert(raw, portfolio_id, version, checkpoints)
        await session.commit()
    return True


async def insert(raw: Any, portfolio_id: uuid.UUID, version: int, checkpoints: Sequence[Checkpoint]) -> None:
    """Insert `checkpoints` of `version` through an asyncpg connection whose transaction holds
    the portfolio's row (FOR SHARE after checking the version, or FOR UPDATE as a writer
    after its write: then `version` is the one its write made)."""
    if not checkpoints:
        return
    await raw.execute(
        _INSERT_SQL,
        portfolio_id,
        version,
        [c.entry.executed_at for c in checkpoints],
        [c.entry.seq for c in checkpoints],
        [c.position for c in checkpoints],
        [json.dumps(to_json(c.ledger)) for c in checkpoints],
    )
    newest = max(c.position for c in checkpoints)
    await raw.execute(_PRUNE_SQL, portfolio_id, newest, PERSIST_EVERY)


def to_json(ledger: Ledger) -> dict[str, Any]:
    return {
        "cash": str(ledger.cash),
        "deposits": str(ledger.deposits),
        "withdrawals": str(ledger.withdrawals),
        "realized_pnl": str(ledger.realized_pnl),
        "buy_fees": str(ledger.buy_fees),
        "sell_fees": str(ledger.sell_fees),
        "trades": ledger.trades,
        # in the ledger's order (a new position last): the summary and the timeline rely on it
        "holdings": [
            [h.symbol, str(h.quantity), str(h.cost), h.first_at.isoformat(), h.last_at.isoformat()]
            for h in ledger.holdings.values()
        ],
    }


def from_json(data: dict[str, Any]) -> Ledger:
    return Ledger(
        cash=Decimal(data["cash"]),
        deposits=Decimal(data["deposits"]),
        withdrawals=Decimal(data["withdrawals"]),
        realized_pnl=Decimal(data["realized_pnl"]),
        buy_fees=Decimal(data["buy_fees"]),
        sell_fees=Decimal(data["sell_fees"]),
        trades=int(data["trades"]),
        holdings={
            symbol: Holding(
                symbol, Decimal(quantity), Decimal(cost), datetime.fromisoformat(first), datetime.fromisoformat(last)
            )
            for symbol, quantity, cost, first, last in data["holdings"]
        },
    )


def _copy(ledger: Ledger) -> Ledger:
    return Ledger(
        ledger.cash,
        ledger.deposits,
        ledger.withdrawals,
        ledger.realized_pnl,
        ledger.buy_fees,
        ledger.sell_fees,
        ledger.trades,
        dict(ledger.holdings),
    )
